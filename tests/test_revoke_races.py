""" "Log out everywhere" ends every session the user had, whatever renews meanwhile.

DESIGN §8. ``sessions.revoke(user)`` lists the user's sessions and ends them;
a session renewed in between used to survive under its new token on the cache
and cached_db engines (over HTTP, 31 of 40 renewed sessions stayed logged in
on the cache engine). Written twice: with the renewal forced at the dangerous
point (after the listing, before the sessions are ended), and with real
renewals over a real server racing a revoke.
"""

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from unittest import mock

import pytest
from django.contrib.auth import SESSION_KEY
from django.db import connections

from scs_django import sessions
from tests.realserver import COOKIE, gunicorn
from tests.utils import stored_logins

pytestmark = pytest.mark.django_db(databases="__all__", transaction=True)

SESSIONS = 40


def stored_tokens(engine, user, count):
    """The tokens of ``count`` stored sessions of ``user``."""
    return [session.session_key for session in stored_logins(engine, user, count)]


def session_user(engine, token):
    """The user id the session of ``token`` holds, read through the store."""
    return engine.store_class(token).get(SESSION_KEY)


def renew(engine, token):
    """Renew the session of ``token`` as another request would; its new token."""
    session = engine.store_class(token)
    session.load()
    session.renew_token()
    return session.session_key


# -- the renewal forced between the listing and the ending -------------------------


@pytest.mark.parametrize("engine", ["cache-redis"], indirect=True)
def test_a_session_renewed_after_the_listing_is_ended_too_on_redis(
    engine, user_factory
):
    user = user_factory()
    old = stored_tokens(engine, user, 3)
    renewed = []
    client = engine.redis()
    real_zrange = type(client).zrange

    def zrange(self, *args, **kwargs):
        # The listing is done: renew one of the listed sessions right now.
        listed = real_zrange(self, *args, **kwargs)
        if not renewed:
            renewed.append(renew(engine, old[0]))
        return listed

    with mock.patch.object(type(client), "zrange", zrange):
        assert sessions.revoke(user) == 3
    assert renewed and renewed[0] != old[0]
    assert session_user(engine, renewed[0]) is None
    assert [session_user(engine, token) for token in old] == [None] * 3


def _blocked_on_a_lock(alias, thread):
    """Wait until ``thread`` ends (False) or some backend of the test database
    waits for a lock (True): the renewal reached the row the revoke locked."""
    connection = connections[alias]
    watcher = connection.get_new_connection(connection.get_connection_params())
    watcher.autocommit = True  # pg_stat_activity is a snapshot per transaction
    try:
        with watcher.cursor() as cursor:
            while thread.is_alive():
                cursor.execute(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE wait_event_type = 'Lock' AND datname = current_database()"
                )
                if cursor.fetchone()[0]:
                    return True
                time.sleep(0.005)
        return False
    finally:
        watcher.close()


@pytest.mark.parametrize("engine", ["cached_db-redis"], indirect=True)
def test_a_session_renewed_after_the_listing_is_ended_too_on_cached_db(
    engine, user_factory
):
    # The listing locks the rows: a renewal that comes after it waits for the
    # revoke to commit, then finds its session gone; one that came before was
    # listed under its new hash.
    user = user_factory()
    old = stored_tokens(engine, user, 3)
    outcome = {}
    ops = type(engine.store_class()._cache_ops)
    real_bury = ops.bury

    def renew_elsewhere():
        try:
            outcome["token"] = renew(engine, old[0])
        except Exception as exc:  # noqa: BLE001 - reported below
            outcome["error"] = exc
        finally:
            connections.close_all()

    def bury(self, key_hashes, seconds):
        key_hashes = list(key_hashes)
        if "thread" not in outcome and len(key_hashes) > 1:
            # The listing is done (this is the revoke's tombstoning): a request
            # renews one of the listed sessions now.
            thread = threading.Thread(target=renew_elsewhere)
            outcome["thread"] = thread
            thread.start()
            outcome["blocked"] = _blocked_on_a_lock(engine.alias, thread)
        return real_bury(self, key_hashes, seconds)

    with mock.patch.object(ops, "bury", bury):
        assert sessions.revoke(user) == 3
    outcome["thread"].join(timeout=30)
    assert outcome.get("blocked"), "the renewal should have waited for the revoke"
    assert "error" not in outcome, outcome.get("error")
    # The renewal found its session ended: no new token carries the user.
    assert outcome["token"] is None or session_user(engine, outcome["token"]) is None
    assert [session_user(engine, token) for token in old] == [None] * 3
    assert sessions.for_user(user) == []


# -- real renewals over a real server racing the revoke -----------------------------


@pytest.mark.parametrize(
    "engine", ["cache-redis", "cached_db-redis", "db-postgresql"], indirect=True
)
def test_revoke_racing_renewals_over_http_leaves_no_session_alive(engine, user_factory):
    user = user_factory()
    with gunicorn(engine.id, workers=4, threads=10) as server:
        for _round in range(3):
            tokens = stored_tokens(engine, user, SESSIONS)
            barrier = threading.Barrier(SESSIONS + 1)

            def renew_over_http(token, barrier=barrier):
                barrier.wait()
                response = server.get("/renew/", token)
                return response.cookies.get(COOKIE)

            with ThreadPoolExecutor(SESSIONS) as pool:
                renewals = [pool.submit(renew_over_http, t) for t in tokens]
                barrier.wait()
                sessions.revoke(user)
                new_tokens = [r.result() for r in renewals]
            alive = [
                token
                for token in [*tokens, *filter(None, new_tokens)]
                if server.get("/read/", token).json()["user"] is not None
            ]
            assert alive == [], f"{len(alive)} sessions survived the revoke"
            assert sessions.for_user(user) == []
