"""A request that ends a session wins over one that was already in flight, on
every engine."""

from unittest import mock

import pytest
import time_machine
from django.conf import settings as django_settings

from scs_django import tokens
from scs_django.backends.cache_api import CacheSessions
from tests.factories import PASSWORD
from tests.utils import client_with, start_session

pytestmark = pytest.mark.django_db(databases="__all__")

COOKIE = django_settings.SESSION_COOKIE_NAME


def test_logout_during_slow_write_does_not_resurrect(client, engine, in_flight):
    token = start_session(client)
    in_flight(lambda: client_with(token).get("/logout-session/"))
    response = client.get("/slow/write/")
    assert response.status_code == 400  # SessionInterrupted
    assert COOKIE not in response.cookies
    assert engine.stored.hashes() == set()
    assert client_with(token).get("/read/").json()["value"] is None


def test_logout_during_slow_touch_does_not_resurrect(
    client, engine, in_flight, settings
):
    settings.SCS = {"IDLE_TIMEOUT": 600, "TOUCH_INTERVAL": 60}
    with time_machine.travel("2026-03-01 12:00:00+00:00", tick=False) as clock:
        token = start_session(client)
        clock.shift(120)  # the next read is due to touch
        in_flight(lambda: client_with(token).get("/logout-session/"))
        response = client.get("/slow/read/")
        assert engine.stored.hashes() == set()  # expiry judged on this clock
    assert response.status_code == 400
    assert COOKIE not in response.cookies


def test_renew_during_slow_write_keeps_the_old_token_dead(client, engine, in_flight):
    token = start_session(client)
    renewed = {}

    def renew_elsewhere():
        response = client_with(token).get("/renew/")
        renewed["token"] = response.cookies[COOKIE].value

    in_flight(renew_elsewhere)
    response = client.get("/slow/write/")
    assert response.status_code == 400
    assert COOKIE not in response.cookies
    assert client_with(token).get("/read/").json()["value"] is None
    assert client_with(renewed["token"]).get("/read/").json()["value"] == "cart"
    assert engine.stored.hashes() == {tokens.hash_token(renewed["token"])}


def test_login_elsewhere_during_slow_write_does_not_revive_the_anonymous_token(
    client, engine, in_flight, user_factory
):
    user = user_factory()
    token = start_session(client)
    in_flight(
        lambda: client_with(token).post(
            "/accounts/login/", {"username": user.username, "password": PASSWORD}
        )
    )
    response = client.get("/slow/write/")
    assert response.status_code == 400
    (logged_in,) = engine.stored.hashes()
    assert logged_in != tokens.hash_token(token)
    assert str(engine.stored.get(logged_in)["user_id"]) == str(user.pk)


def test_cleanup_during_slow_write_does_not_resurrect(
    client, engine, in_flight, settings
):
    settings.SCS = {"ABSOLUTE_TIMEOUT": 60}
    with time_machine.travel("2026-03-01 12:00:00+00:00", tick=False) as clock:
        start_session(client)
        clock.shift(59)

        def expire_and_clean():
            clock.shift(1)
            engine.store_class.clear_expired()  # a cache forgets by TTL itself

        in_flight(expire_and_clean)
        response = client.get("/slow/write/")
        assert engine.stored.hashes() == set()
    assert response.status_code == 400
    assert COOKIE not in response.cookies


def test_logout_as_late_as_possible_before_a_write(client, engine, in_flight):
    """The logout lands at the last moment before the in-flight write.

    Where the write is one atomic operation (an UPDATE ... WHERE, a Lua
    script), that moment is just before it, and the write finds nothing. The
    generic cache path (LocMem) checks and writes in two calls, so a logout
    between them is undone: the documented weaker guarantee of scs_django.W010.
    """
    token = start_session(client)
    store_class = engine.store_class
    in_flight(lambda: None)

    def logout():
        assert client_with(token).get("/logout-session/").status_code == 200

    if engine.id == "cache-locmem":
        update = CacheSessions.update

        def check_then_logout_then_write(self, *args):
            live = self._live

            def check_then_logout(*check_args):
                found = live(*check_args)
                logout()
                return found

            self._live = check_then_logout
            try:
                return update(self, *args)
            finally:
                del self._live

        late = mock.patch.object(CacheSessions, "update", check_then_logout_then_write)
    else:
        update = store_class._update

        def logout_then_update(self, *args, **kwargs):
            logout()
            return update(self, *args, **kwargs)

        late = mock.patch.object(store_class, "_update", logout_then_update)
    with late:
        response = client.get("/slow/write/")
    if engine.id == "cache-locmem":
        assert response.status_code == 200
        assert client_with(token).get("/read/").json()["value"] == (
            "written by the slow request"
        )
        return
    assert response.status_code == 400
    assert COOKIE not in response.cookies
    assert engine.stored.hashes() == set()
    assert client_with(token).get("/read/").json()["value"] is None
