"""scs_django.signals: each one sent once, at the right moment, with its arguments."""

from contextlib import contextmanager

import pytest
import time_machine
from asgiref.sync import async_to_sync
from django.conf import settings as django_settings
from django.test import AsyncClient

from scs_django import sessions, tokens
from scs_django.backends.db import SessionStore
from scs_django.signals import (
    session_created,
    session_expired,
    session_renewed,
    session_revoked,
)
from tests.utils import hash_of, logged_in, post_login, token_of

pytestmark = pytest.mark.django_db(databases="__all__")

COOKIE = django_settings.SESSION_COOKIE_NAME


@contextmanager
def capture(signal):
    calls = []

    def receiver(**kwargs):
        calls.append(kwargs)

    signal.connect(receiver)
    try:
        yield calls
    finally:
        signal.disconnect(receiver)


def test_session_created_names_the_session_and_the_request(client, db_alias):
    with capture(session_created) as calls:
        client.get("/write/")
        client.get("/write/", {"value": "again"})  # an update, not a creation
    [call] = calls
    assert call["sender"] is SessionStore
    assert call["session"].key_hash == hash_of(client)
    assert call["request"].path == "/write/"


def test_session_created_outside_a_request_has_no_request(db_alias):
    with capture(session_created) as calls:
        store = SessionStore()
        store["value"] = 1
        store.save()
    [call] = calls
    assert call["session"] is store
    assert call["request"] is None


def test_session_renewed_at_login_names_the_previous_hash(
    client, db_alias, user_factory
):
    user = user_factory()
    client.get("/write/")
    anonymous = hash_of(client)
    with capture(session_renewed) as calls:
        post_login(client, user)
    [call] = calls
    assert call["sender"] is SessionStore
    assert call["previous_key_hash"] == anonymous
    assert call["session"].key_hash == hash_of(client) != anonymous
    assert call["request"].path == "/accounts/login/"


def test_session_expired_when_a_stored_session_is_past_its_deadline(
    client, db_alias, settings
):
    with time_machine.travel("2031-05-01 08:00:00+00:00", tick=False) as clock:
        client.get("/write/")
        key_hash = hash_of(client)
        # The stored row still says live; the lowered timeout ends it at load.
        settings.SCS = {"ABSOLUTE_TIMEOUT": 60}
        clock.shift(120)
        with capture(session_expired) as calls:
            assert client.get("/read/").json()["value"] is None
    [call] = calls
    assert call["sender"] is SessionStore
    assert call["key_hash"] == key_hash
    assert call["request"].path == "/read/"


@pytest.mark.parametrize(
    ("engine", "timeouts", "wait"),
    [
        ("db-postgresql", {"IDLE_TIMEOUT": 600}, 601),
        ("db-sqlite", {"IDLE_TIMEOUT": 600}, 601),
        ("db-postgresql", {"ABSOLUTE_TIMEOUT": 3600}, 3600),
        ("cached_db-redis", {"IDLE_TIMEOUT": 600}, 601),
        ("cached_db-redis", {"ABSOLUTE_TIMEOUT": 3600}, 3601),
    ],
    indirect=["engine"],
)
def test_session_expired_when_a_stored_session_passes_its_expiry(
    client, engine, settings, timeouts, wait
):
    # The row is still stored (cleanup has not run): a returning visitor's
    # session is reported as expired, not as an unknown token.
    settings.SCS = timeouts
    with time_machine.travel("2031-05-01 08:00:00+00:00", tick=False) as clock:
        client.get("/write/")
        key_hash = hash_of(client)
        clock.shift(wait - 2)
        with capture(session_expired) as calls:
            assert client.get("/read/").json()["value"] == "written"
        assert calls == []
        clock.shift(wait)
        with capture(session_expired) as calls:
            response = client.get("/read/")
            assert response.json()["value"] is None
            assert (
                response.cookies[django_settings.SESSION_COOKIE_NAME].value == ""
            )  # cleared
            client.get("/read/")
    assert [(c["sender"], c["key_hash"]) for c in calls] == [
        (engine.store_class, key_hash),
    ]
    assert calls[0]["request"].path == "/read/"


@pytest.mark.parametrize("engine", ["db-postgresql"], indirect=True)
def test_no_session_expired_for_an_unknown_token_or_after_exists(client, engine):
    client.cookies[COOKIE] = tokens.new_token()
    with time_machine.travel("2031-05-01 08:00:00+00:00", tick=False) as clock:
        store = engine.store_class()
        store["value"] = "x"
        store.save()
        clock.shift(django_settings.SESSION_COOKIE_AGE + 1)
        with capture(session_expired) as calls:
            assert client.get("/read/").json()["value"] is None
            # exists() does not report; a later load of another session does not
            # report the one exists() saw.
            assert not engine.store_class().exists(store.session_key)
            other = engine.store_class(tokens.new_token())
            assert other.exists(store.session_key) is False
            assert other.load() == {}
    assert calls == []


def test_session_revoked_names_the_user_and_the_sessions(db_alias, user_factory):
    user = user_factory()
    kept, first, second = logged_in(user), logged_in(user), logged_in(user)
    with capture(session_revoked) as calls:
        store = SessionStore(token_of(kept))
        assert sessions.revoke(user, keep=store) == 2
        assert sessions.revoke(user, keep=store) == 0  # nothing ended: no signal
        assert sessions.revoke_session(hash_of(kept)[:8], user=user) == 1
    assert [(c["sender"], c["user"], c["count"]) for c in calls] == [
        (SessionStore, user, 2),
        (SessionStore, user, 1),
    ]
    assert set(calls[0]["key_hashes"]) == {hash_of(first), hash_of(second)}
    assert calls[1]["key_hashes"] == (hash_of(kept),)


def test_async_receivers_are_awaited_on_the_async_path(db_alias):
    received = []

    async def receiver(sender, session, request, **kwargs):
        received.append((session.key_hash, request.path))

    session_created.connect(receiver)
    try:

        async def scenario():
            client = AsyncClient()
            await client.get("/async/write/")
            return client.cookies[COOKIE].value

        token = async_to_sync(scenario)()
    finally:
        session_created.disconnect(receiver)
    assert received == [(tokens.hash_token(token), "/async/write/")]


def test_async_twins_await_async_receivers(db_alias, user_factory):
    received = []

    async def receiver(sender, **kwargs):
        received.append(sorted(kwargs))

    store = SessionStore()
    store["value"] = 1
    session_created.connect(receiver)
    session_renewed.connect(receiver)
    try:
        async_to_sync(store.asave)()
        async_to_sync(store.arenew_token)()
    finally:
        session_created.disconnect(receiver)
        session_renewed.disconnect(receiver)
    assert received == [
        ["request", "session", "signal"],
        ["previous_key_hash", "request", "session", "signal"],
    ]
