"""Stores that really fail: 503 (or anonymous when failing open), no cookie change.

DESIGN §3.7 and §9. tests/test_failures.py simulates failures by patching the
engine; here nothing of scs_django is patched:

* the database is down: every query goes to a database alias whose server
  refuses connections (a closed port) or whose file cannot be opened, from the
  start of a request or from the middle of it, between load and save;
* PostgreSQL kills the request's connection (``pg_terminate_backend``) between
  load and save, served by Django's real WSGI handler, whose end-of-request
  signal then drops the dead connection as it would in production;
* Redis cannot be reached (its connection pool pointed at a closed port, while
  the server and its data stay up) or has evicted the session's key.

Each time the response is 503 (or the view's, failing open), carries no
``Set-Cookie`` at all (no new cookie, no delete-cookie), and once the store
is back the browser's cookie finds its session as it was.
"""

import socket
import tempfile
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.db import connections
from django.db.utils import load_backend

from scs_django import codec, tokens
from tests.engines import DB_ENGINES, REDIS_ENGINES
from tests.routers import use_database
from tests.security.transport import (
    Transport,
    json_body,
    session_cookie,
    wsgi_environ,
)
from tests.servers import HOST
from tests.utils import cookie, read

pytestmark = pytest.mark.django_db(databases="__all__")

DOWN = "scs-security-down"


def stored_value(engine, token):
    row = engine.stored.get(tokens.hash_token(token))
    return codec.decode(row["data"], tokens.hash_token(token)).data["value"]


def assert_unavailable(response):
    assert response.status_code == 503, response.content
    assert response["Retry-After"]
    assert "no-store" in response["Cache-Control"]
    assert not response.cookies, response.cookies.output()


@contextmanager
def closed_port():
    """A local port that refuses connections: bound, never listening, so no
    other process can start a server on it meanwhile."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        yield sock.getsockname()[1]


@contextmanager
def database_down(alias):
    """Send every query to a copy of ``alias`` that cannot be reached."""
    template = connections[alias].settings_dict
    with ExitStack() as stack:
        if template["ENGINE"].endswith("sqlite3"):
            missing = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "gone"
            down = {**template, "NAME": str(missing / "db.sqlite3")}
        else:
            down = {**template, "PORT": str(stack.enter_context(closed_port()))}
        # Made here rather than in settings.DATABASES: the test case lets a
        # test use connections it creates itself.
        connections[DOWN] = load_backend(down["ENGINE"]).DatabaseWrapper(down, DOWN)
        try:
            with use_database(DOWN):
                yield
        finally:
            connections[DOWN].close()
            del connections[DOWN]


@contextmanager
def redis_unreachable(engine):
    """Point the engine's Redis connection pool at a closed port: the server
    (and every key in it) stays up, but the application cannot reach it."""
    pool = engine.redis().connection_pool
    port = pool.connection_kwargs["port"]
    with closed_port() as closed:
        pool.reset()
        pool.connection_kwargs["port"] = closed
        try:
            yield
        finally:
            pool.connection_kwargs["port"] = port
            pool.reset()


def outage(engine):
    if engine.kind == "db":
        return database_down(engine.alias)
    return redis_unreachable(engine)


# Engines whose sessions live in the store that fails: the database for the db
# engine, Redis for the cache engine.
SESSION_STORE_DOWN = [*DB_ENGINES, "cache-redis"]


@pytest.mark.parametrize("engine", SESSION_STORE_DOWN, indirect=True)
@pytest.mark.parametrize("path", ["/read/", "/write/", "/renew/", "/logout-session/"])
def test_store_down_from_the_start_answers_503_and_keeps_the_session(
    path, transport, engine, live_token, stored
):
    before = stored(live_token)
    with outage(engine):
        response = transport.get(path, cookie=cookie(live_token))
    assert_unavailable(response)
    assert stored(live_token) == before
    assert read(transport, live_token)["value"] == "secret"


@pytest.mark.parametrize("engine", SESSION_STORE_DOWN, indirect=True)
def test_store_down_when_a_new_session_is_created_answers_503(transport, engine):
    with outage(engine):
        response = transport.get("/write/")
    assert_unavailable(response)
    assert engine.stored.hashes() == set()


@pytest.mark.parametrize("engine", SESSION_STORE_DOWN, indirect=True)
@pytest.mark.parametrize("path", ["/slow/write/", "/slow/read/"])
def test_store_going_down_mid_request_answers_503_and_keeps_the_session(
    path, transport, engine, live_token, stored, in_flight, settings
):
    # /slow/read/ writes too here: every request saves.
    settings.SESSION_SAVE_EVERY_REQUEST = True
    before = stored(live_token)
    with ExitStack() as stack:
        in_flight(lambda: stack.enter_context(outage(engine)))
        response = transport.get(path, cookie=cookie(live_token))
    assert_unavailable(response)
    assert stored(live_token) == before
    assert read(transport, live_token)["value"] == "secret"


@pytest.mark.parametrize("engine", SESSION_STORE_DOWN, indirect=True)
def test_failing_open_serves_an_anonymous_request_and_keeps_the_cookie(
    transport, engine, live_token, stored, settings
):
    settings.SCS = {"FAIL_OPEN": True}
    before = stored(live_token)
    with outage(engine):
        read_response = transport.get("/read/", cookie=cookie(live_token))
        write_response = transport.get(
            "/write/", cookie=cookie(live_token), query={"value": "lost"}
        )
        anonymous_write = transport.get("/write/")
    assert read_response.status_code == 200
    assert json_body(read_response) == {"value": None, "user": None}
    for response in (read_response, write_response, anonymous_write):
        assert response.status_code == 200
        assert not response.cookies, response.cookies.output()
    assert stored(live_token) == before
    assert engine.stored.hashes() == {tokens.hash_token(live_token)}
    assert read(transport, live_token)["value"] == "secret"


# -- PostgreSQL drops the request's connection ------------------------------------------


def serve(environ):
    """One request through Django's production WSGI handler, closed as a
    server closes it (which fires request_finished and drops dead connections)."""
    started = {}

    def start_response(status, headers, exc_info=None):
        started["status"], started["headers"] = status, headers

    response = WSGIHandler()(environ, start_response)
    try:
        b"".join(response)
    finally:
        response.close()
    return int(started["status"].split()[0]), started["headers"]


def terminate_backend_of(alias):
    """Kill the server process behind ``alias``'s open connection, and wait
    until it is gone."""
    connection = connections[alias]
    connection.ensure_connection()  # cached_db may have read from the cache alone
    pid = connection.connection.info.backend_pid
    killer = connection.get_new_connection(connection.get_connection_params())
    # pg_stat_activity is a snapshot taken once per transaction: poll it
    # outside of one, or a backend still exiting at the first look never
    # appears gone.
    killer.autocommit = True
    try:
        with killer.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
            for _ in range(200):
                cursor.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid])
                if cursor.fetchone() is None:
                    return
                time.sleep(0.01)
        raise AssertionError("the backend did not go away")
    finally:
        killer.close()


@pytest.mark.django_db(databases="__all__", transaction=True)
@pytest.mark.parametrize("engine", ["db-postgresql", "cached_db-redis"], indirect=True)
def test_connection_killed_between_load_and_save_answers_503(
    engine, live_token, stored, in_flight
):
    before = stored(live_token)
    in_flight(lambda: terminate_backend_of(engine.alias))
    status, headers = serve(wsgi_environ("/slow/write/", cookie=cookie(live_token)))
    assert status == 503
    assert [h for h in headers if h[0].lower() == "set-cookie"] == []
    in_flight(lambda: None)
    # The next request gets a new connection, and the session as it was.
    assert stored(live_token) == before
    status, _ = serve(wsgi_environ("/slow/write/", cookie=cookie(live_token)))
    assert status == 200
    assert engine.store_class(live_token)["value"] == "written by the slow request"


# -- Redis in front of the database --------------------------------------------------


@pytest.mark.parametrize("engine", ["cached_db-redis"], indirect=True)
def test_cache_down_falls_back_to_the_database(transport, engine, live_token):
    # Reads go on against the database; a change to a stored session waits
    # for the cache (see the next test), answered 503 with nothing changed.
    with redis_unreachable(engine):
        assert read(transport, live_token)["value"] == "secret"
        response = transport.get(
            "/write/", cookie=cookie(live_token), query={"value": "written meanwhile"}
        )
        assert_unavailable(response)
        assert read(transport, live_token)["value"] == "secret"
    response = transport.get(
        "/write/", cookie=cookie(live_token), query={"value": "later"}
    )
    assert response.status_code == 200
    assert read(transport, live_token)["value"] == "later"


@pytest.mark.parametrize("engine", ["cached_db-redis"], indirect=True)
def test_a_write_during_a_cache_outage_is_not_hidden_by_the_old_copy(
    engine, live_token
):
    transport = Transport("wsgi")
    assert read(transport, live_token)["value"] == "secret"  # Redis holds a copy now
    with redis_unreachable(engine):
        response = transport.get(
            "/write/", cookie=cookie(live_token), query={"value": "written meanwhile"}
        )
    # The write was refused rather than made behind the cache's back, so once
    # Redis is back its copy and the database agree.
    assert_unavailable(response)
    assert stored_value(engine, live_token) == "secret"
    assert read(transport, live_token)["value"] == "secret"


@pytest.mark.parametrize("engine", ["cached_db-redis"], indirect=True)
def test_logout_while_the_cache_is_down_changes_nothing(
    transport, engine, live_token, stored
):
    assert read(transport, live_token)["value"] == "secret"  # cached in Redis now
    before = stored(live_token)
    with redis_unreachable(engine):
        response = transport.get("/logout-session/", cookie=cookie(live_token))
    assert_unavailable(response)
    assert stored(live_token) == before
    assert read(transport, live_token)["value"] == "secret"
    response = transport.get("/logout-session/", cookie=cookie(live_token))
    assert session_cookie(response).value == ""
    assert read(transport, live_token)["value"] is None


# -- Redis evicting the key ---------------------------------------------------------------


def evict(engine, token):
    """Drop the session's key as Redis eviction (or a FLUSHDB) would."""
    client = engine.redis()
    keys = [
        k
        for k in client.scan_iter(match="*")
        if tokens.hash_token(token)[2:] in k.decode()
    ]
    assert keys, "the session has a key"
    client.delete(*keys)


@pytest.mark.parametrize("engine", REDIS_ENGINES, indirect=True)
def test_evicted_key_before_a_request(transport, engine, live_token):
    assert read(transport, live_token)["value"] == "secret"
    evict(engine, live_token)
    # The cache engine has lost the session; cached_db reads the database.
    expected = None if engine.kind == "cache" else "secret"
    assert read(transport, live_token)["value"] == expected


@pytest.mark.parametrize("engine", REDIS_ENGINES, indirect=True)
def test_evicted_key_during_a_write(transport, engine, live_token, in_flight):
    in_flight(lambda: evict(engine, live_token))
    response = transport.get("/slow/write/", cookie=cookie(live_token))
    if engine.kind == "cache":
        # Gone is gone: the in-flight write must not bring it back.
        assert response.status_code == 400
        assert not response.cookies, response.cookies.output()
        assert engine.stored.hashes() == set()
        assert read(transport, live_token)["value"] is None
    else:
        # Only a copy was lost: the database still has the session.
        assert response.status_code == 200
        assert session_cookie(response).value == live_token
        assert read(transport, live_token)["value"] == "written by the slow request"


# -- views that fail ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/write-then-fail/", "/write-then-raise/", "/write-then-503/"]
)
def test_a_failing_view_persists_nothing_of_the_session(
    path, transport, engine, live_token, stored
):
    before = stored(live_token)
    response = transport.get(path, cookie=cookie(live_token))
    assert response.status_code >= 500
    assert not response.cookies, response.cookies.output()
    assert stored(live_token) == before
    assert read(transport, live_token)["value"] == "secret"
    response = transport.get(path)  # a new visitor
    assert not response.cookies
    assert engine.stored.hashes() == {tokens.hash_token(live_token)}
