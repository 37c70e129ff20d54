"""Idle and absolute deadlines, to the exact boundary, with USE_TZ on and off,
on every engine."""

from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

import pytest
import time_machine
from django.conf import settings as django_settings
from django.utils import timezone

from scs_django import tokens

pytestmark = pytest.mark.django_db(databases="__all__")

COOKIE = django_settings.SESSION_COOKIE_NAME
START = "2026-03-01 12:00:00+00:00"
TICK = timedelta(microseconds=1)


@pytest.fixture(params=[True, False], ids=["use_tz", "no_tz"])
def use_tz(request, settings):
    settings.USE_TZ = request.param
    settings.TIME_ZONE = "Europe/Paris"
    return request.param


@pytest.fixture
def new_session(store_class):
    def save(**data):
        store = store_class()
        store.update(data or {"value": "x"})
        store.save()
        return store.session_key

    return save


@pytest.fixture
def alive(store_class):
    return lambda token: store_class(token).get("value") is not None


def test_absolute_deadline_is_exact(new_session, alive, use_tz, settings):
    settings.SCS = {"ABSOLUTE_TIMEOUT": 3600}
    with time_machine.travel(START, tick=False) as clock:
        token = new_session()
        clock.shift(timedelta(seconds=3600) - TICK)
        assert alive(token)
        clock.shift(TICK)
        assert not alive(token)


def test_activity_never_extends_the_absolute_deadline(
    store_class, new_session, alive, use_tz, settings
):
    settings.SCS = {"ABSOLUTE_TIMEOUT": 3600, "IDLE_TIMEOUT": 600, "TOUCH_INTERVAL": 60}
    with time_machine.travel(START, tick=False) as clock:
        token = new_session()
        for _ in range(11):  # a request every 5 minutes, with writes and touches
            clock.shift(300)
            store = store_class(token)
            store["value"] = "still here"
            store.save()
        assert timezone.now() - store.created_at == timedelta(seconds=3300)
        clock.shift(299)
        assert alive(token)
        clock.shift(1)
        assert not alive(token)


def test_idle_deadline_is_exact(new_session, alive, use_tz, settings):
    settings.SCS = {"IDLE_TIMEOUT": 600, "TOUCH_INTERVAL": 60}
    with time_machine.travel(START, tick=False) as clock:
        token = new_session()
        clock.shift(timedelta(seconds=600) - TICK)
        assert alive(token)  # a read inside the idle window...
        clock.shift(TICK)
        assert not alive(token)  # ...is not a touch unless the middleware sends one


def test_touch_moves_the_idle_deadline_once_per_interval(
    client, engine, use_tz, settings
):
    settings.SCS = {"IDLE_TIMEOUT": 600, "TOUCH_INTERVAL": 60}
    with time_machine.travel(START, tick=False) as clock:
        client.get("/write/", {"value": "x"})
        key_hash = tokens.hash_token(client.cookies[COOKIE].value)
        created = engine.stored.get(key_hash)["last_seen"]
        clock.shift(59)
        client.get("/read/")
        # inside the interval
        assert engine.stored.get(key_hash)["last_seen"] == created
        clock.shift(1)
        client.get("/read/")
        touched = engine.stored.get(key_hash)
        assert touched["last_seen"] == created + timedelta(seconds=60)
        assert touched["expiry"] == touched["last_seen"] + timedelta(seconds=600)
        clock.shift(timedelta(seconds=600) - TICK)
        assert client.get("/read/").json()["value"] == "x"
        clock.shift(timedelta(seconds=600) + TICK)
        assert client.get("/read/").json()["value"] is None


def test_per_session_idle_timeout_from_set_expiry(store_class, alive, use_tz, settings):
    settings.SCS = {"TOUCH_INTERVAL": 10}
    with time_machine.travel(START, tick=False) as clock:
        store = store_class()
        store["value"] = "x"
        store.set_expiry(120)
        store.save()
        assert store.idle_expiry == timezone.now() + timedelta(seconds=120)
        clock.shift(timedelta(seconds=120) - TICK)
        assert alive(store.session_key)
        clock.shift(TICK)
        assert not alive(store.session_key)


def test_fixed_deadline_never_goes_past_the_absolute_one(
    store_class, alive, use_tz, settings
):
    settings.SCS = {"ABSOLUTE_TIMEOUT": 3600}
    with time_machine.travel(START, tick=False) as clock:
        store = store_class()
        store["value"] = "x"
        store.set_expiry(timezone.now() + timedelta(days=30))
        store.save()
        assert store.get_expiry_date() == store.absolute_expiry
        clock.shift(3600)
        assert not alive(store.session_key)


def test_fixed_deadline_before_the_absolute_one_ends_the_session(
    store_class, alive, use_tz, settings
):
    with time_machine.travel(START, tick=False) as clock:
        store = store_class()
        store["value"] = "x"
        store.set_expiry(timedelta(minutes=5))
        store.save()
        clock.shift(timedelta(minutes=5) - TICK)
        assert alive(store.session_key)
        clock.shift(TICK)
        assert not alive(store.session_key)


@pytest.mark.parametrize(
    "engine",
    ["db-postgresql", "db-sqlite", "cache-redis", "cached_db-redis"],
    indirect=True,
)
def test_editing_the_stored_deadlines_cannot_extend_a_session(
    engine, new_session, alive, settings
):
    # The absolute deadline also lives in the encoded payload. (LocMem keeps
    # its entries in this process only: nobody else can edit them.)
    settings.SCS = {"ABSOLUTE_TIMEOUT": 3600}
    with time_machine.travel(START, tick=False) as clock:
        token = new_session()
        far = timezone.now() + timedelta(days=365)
        if engine.kind != "cache":
            engine.store_class.get_model_class().objects.update(
                expiry=far, absolute_expiry=far
            )
        if engine.on_redis:
            view = engine.stored if engine.kind == "cache" else engine.cached()
            key = view.key(tokens.hash_token(token))
            micros = (far - datetime(1970, 1, 1, tzinfo=dt_timezone.utc)) // TICK
            # The expiry and absolute expiry fields of the value's header.
            engine.redis().setrange(key, 1, b"%016d" % micros)
            engine.redis().setrange(key, 65, b"%016d" % micros)
            engine.redis().persist(key)
        clock.shift(3600)
        assert not alive(token)


def test_lowering_absolute_timeout_shortens_existing_sessions(
    new_session, alive, settings
):
    settings.SCS = {"ABSOLUTE_TIMEOUT": 7200}
    with time_machine.travel(START, tick=False) as clock:
        token = new_session()
        clock.shift(3600)
        assert alive(token)
        settings.SCS = {"ABSOLUTE_TIMEOUT": 3600}
        assert not alive(token)


def test_expired_session_is_replaced_not_revived(client, engine, settings):
    settings.SCS = {"ABSOLUTE_TIMEOUT": 60}
    with time_machine.travel(START, tick=False) as clock:
        client.get("/write/", {"value": "old"})
        old = client.cookies[COOKIE].value
        clock.shift(60)
        assert client.get("/read/").json()["value"] is None
        response = client.get("/write/", {"value": "new"})
        new = response.cookies[COOKIE].value
        assert new != old
        assert engine.stored.get(tokens.hash_token(new)) is not None
        old_entry = engine.stored.get(tokens.hash_token(old))
    if engine.kind == "cache":
        assert old_entry is None  # forgotten at the end of its TTL
    else:
        # untouched, left for cleanup
        assert old_entry["expiry"] <= old_entry["last_seen"] + timedelta(seconds=60)


def test_a_request_that_is_not_activity_never_moves_the_idle_deadline(
    client, engine, settings
):
    settings.SCS = {"IDLE_TIMEOUT": 600, "TOUCH_INTERVAL": 60}
    with time_machine.travel(START, tick=False) as clock:
        client.get("/write/", {"value": "x"})
        cookie = client.cookies[COOKIE].value
        for _ in range(9):  # a poll every 65 s, each one past the touch interval
            clock.shift(65)
            assert client.get("/peek/").json()["value"] == "x"
            assert client.cookies[COOKIE].value == cookie  # not re-sealed either
        clock.shift(600 - 9 * 65 - 1)
        assert client.get("/peek/").json()["value"] == "x"
        clock.shift(1)
        assert client.get("/peek/").json()["value"] is None
