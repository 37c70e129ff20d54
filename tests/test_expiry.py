"""Idle and absolute deadlines, to the exact boundary, with USE_TZ on and off."""

from datetime import timedelta

import pytest
import time_machine
from django.conf import settings as django_settings
from django.utils import timezone

from scs_django import tokens
from scs_django.backends.db import SessionStore
from scs_django.models import Session

pytestmark = pytest.mark.django_db(databases="__all__")

COOKIE = django_settings.SESSION_COOKIE_NAME
START = "2026-03-01 12:00:00+00:00"
TICK = timedelta(microseconds=1)


@pytest.fixture(params=[True, False], ids=["use_tz", "no_tz"])
def use_tz(request, settings):
    settings.USE_TZ = request.param
    settings.TIME_ZONE = "Europe/Paris"
    return request.param


def new_session(**data):
    store = SessionStore()
    store.update(data or {"value": "x"})
    store.save()
    return store.session_key


def alive(token):
    return SessionStore(token).get("value") is not None


def test_absolute_deadline_is_exact(db_alias, use_tz, settings):
    settings.SCS = {"ABSOLUTE_TIMEOUT": 3600}
    with time_machine.travel(START, tick=False) as clock:
        token = new_session()
        clock.shift(timedelta(seconds=3600) - TICK)
        assert alive(token)
        clock.shift(TICK)
        assert not alive(token)


def test_activity_never_extends_the_absolute_deadline(db_alias, use_tz, settings):
    settings.SCS = {"ABSOLUTE_TIMEOUT": 3600, "IDLE_TIMEOUT": 600, "TOUCH_INTERVAL": 60}
    with time_machine.travel(START, tick=False) as clock:
        token = new_session()
        for _ in range(11):  # a request every 5 minutes, with writes and touches
            clock.shift(300)
            store = SessionStore(token)
            store["value"] = "still here"
            store.save()
        assert timezone.now() - store.created_at == timedelta(seconds=3300)
        clock.shift(299)
        assert alive(token)
        clock.shift(1)
        assert not alive(token)


def test_idle_deadline_is_exact(db_alias, use_tz, settings):
    settings.SCS = {"IDLE_TIMEOUT": 600, "TOUCH_INTERVAL": 60}
    with time_machine.travel(START, tick=False) as clock:
        token = new_session()
        clock.shift(timedelta(seconds=600) - TICK)
        assert alive(token)  # a read inside the idle window...
        clock.shift(TICK)
        assert not alive(token)  # ...is not a touch unless the middleware sends one


def test_touch_moves_the_idle_deadline_once_per_interval(
    client, db_alias, use_tz, settings
):
    settings.SCS = {"IDLE_TIMEOUT": 600, "TOUCH_INTERVAL": 60}
    with time_machine.travel(START, tick=False) as clock:
        client.get("/write/", {"value": "x"})
        created = Session.objects.get().last_seen
        clock.shift(59)
        client.get("/read/")
        assert Session.objects.get().last_seen == created  # inside the interval
        clock.shift(1)
        client.get("/read/")
        touched = Session.objects.get()
        assert touched.last_seen == created + timedelta(seconds=60)
        assert touched.expiry == touched.last_seen + timedelta(seconds=600)
        clock.shift(timedelta(seconds=600) - TICK)
        assert client.get("/read/").json()["value"] == "x"
        clock.shift(timedelta(seconds=600) + TICK)
        assert client.get("/read/").json()["value"] is None


def test_per_session_idle_timeout_from_set_expiry(db_alias, use_tz, settings):
    settings.SCS = {"TOUCH_INTERVAL": 10}
    with time_machine.travel(START, tick=False) as clock:
        store = SessionStore()
        store["value"] = "x"
        store.set_expiry(120)
        store.save()
        assert store.idle_expiry == timezone.now() + timedelta(seconds=120)
        clock.shift(timedelta(seconds=120) - TICK)
        assert alive(store.session_key)
        clock.shift(TICK)
        assert not alive(store.session_key)


def test_fixed_deadline_never_goes_past_the_absolute_one(db_alias, use_tz, settings):
    settings.SCS = {"ABSOLUTE_TIMEOUT": 3600}
    with time_machine.travel(START, tick=False) as clock:
        store = SessionStore()
        store["value"] = "x"
        store.set_expiry(timezone.now() + timedelta(days=30))
        store.save()
        assert store.get_expiry_date() == store.absolute_expiry
        clock.shift(3600)
        assert not alive(store.session_key)


def test_fixed_deadline_before_the_absolute_one_ends_the_session(
    db_alias, use_tz, settings
):
    with time_machine.travel(START, tick=False) as clock:
        store = SessionStore()
        store["value"] = "x"
        store.set_expiry(timedelta(minutes=5))
        store.save()
        clock.shift(timedelta(minutes=5) - TICK)
        assert alive(store.session_key)
        clock.shift(TICK)
        assert not alive(store.session_key)


def test_editing_the_database_columns_cannot_extend_a_session(db_alias, settings):
    settings.SCS = {"ABSOLUTE_TIMEOUT": 3600}
    with time_machine.travel(START, tick=False) as clock:
        token = new_session()
        far = timezone.now() + timedelta(days=365)
        Session.objects.update(expiry=far, absolute_expiry=far)
        clock.shift(3600)
        assert not alive(token)


def test_lowering_absolute_timeout_shortens_existing_sessions(db_alias, settings):
    settings.SCS = {"ABSOLUTE_TIMEOUT": 7200}
    with time_machine.travel(START, tick=False) as clock:
        token = new_session()
        clock.shift(3600)
        assert alive(token)
        settings.SCS = {"ABSOLUTE_TIMEOUT": 3600}
        assert not alive(token)


def test_expired_session_is_replaced_not_revived(client, db_alias, settings):
    settings.SCS = {"ABSOLUTE_TIMEOUT": 60}
    with time_machine.travel(START, tick=False) as clock:
        client.get("/write/", {"value": "old"})
        old = client.cookies[COOKIE].value
        clock.shift(60)
        assert client.get("/read/").json()["value"] is None
        response = client.get("/write/", {"value": "new"})
    new = response.cookies[COOKIE].value
    assert new != old
    row = Session.objects.get(key_hash=tokens.hash_token(old))
    assert row.expiry <= row.last_seen + timedelta(
        seconds=60
    )  # untouched, left for cleanup
