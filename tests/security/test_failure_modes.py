"""Failure modes as docs/security.rst states them (issue 8, item 4).

Through the real middleware, against real PostgreSQL, SQLite and Redis:

1. A request that asks to end, renew or revoke a session answers 503 when the
   store cannot do it, with ``FAIL_OPEN`` or without, and the session is as it
   was once the store is back. The session store is really down (its database
   behind a closed port or a missing file while the users' tables stay up, or
   Redis behind a closed port), from the start of the request or from the
   exact point where the store is needed (Django's own signals, a view hook).
2. Redis error replies that are not connection errors mean "unavailable":
   writes answer 503 and change nothing, cached_db reads go on from the
   database. OOM, READONLY and MASTERDOWN come from the test run's own Redis
   (``maxmemory``, ``REPLICAOF`` a closed port); LOADING, CLUSTERDOWN, TRYAGAIN
   and a NOSCRIPT that outlives a reload are injected on the wire: redis-py
   sends the server a script that answers with the error instead of the
   command, so the server runs nothing and redis-py parses a real reply.
3. cached_db never caches a version the database does not hold: a write whose
   Redis replies are lost after Redis ran the commands, or whose transaction
   rolls back, leaves reads serving exactly what the database holds.
4. Ending a session that does not exist costs one lookup and writes nothing.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import redis
from django.conf import settings as django_settings
from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.core.cache import caches
from django.db import connections
from django.db.utils import load_backend
from django.test.utils import override_settings

from scs_django import codec, tokens
from scs_django.backends import redis as scs_redis
from scs_django.backends.redis_scripts import PUT
from tests.factories import PASSWORD
from tests.routers import current_database
from tests.security.test_store_failures import (
    assert_unavailable,
    closed_port,
    redis_unreachable,
)
from tests.security.transport import (
    Transport,
    json_body,
    session_cookie,
    set_cookie_headers,
)
from tests.servers import HOST
from tests.utils import cookie, log_in, read

pytestmark = pytest.mark.django_db(databases="__all__")

DOWN = "scs-failure-modes-down"


@pytest.fixture
def wsgi() -> Transport:
    return Transport("wsgi")


@pytest.fixture
def redis_admin() -> Iterator[redis.Redis]:
    """A connection of its own to the test run's Redis, for its configuration."""
    client = redis.Redis.from_url(django_settings.TEST_REDIS_URL)
    yield client
    client.close()


# -- 1. ending, renewing or revoking while the store is down ---------------------------


class SessionsIn:
    """A router that keeps scs_django's sessions in ``alias`` and everything
    else where the test pinned it, as a site with its sessions apart does."""

    def __init__(self, alias: str) -> None:
        self.alias = alias

    def db_for_read(self, model: Any, **hints: Any) -> str:
        if model._meta.app_label == "scs_django":
            return self.alias
        return current_database()

    db_for_write = db_for_read

    def allow_relation(self, *objs: Any, **hints: Any) -> bool:
        return True


@contextmanager
def sessions_database_down(alias: str) -> Iterator[None]:
    """Send the session queries to a copy of ``alias`` that cannot be reached
    (a closed port, a file in a directory that does not exist); the users'
    tables stay up, so logging in, out and revoking get as far as the session."""
    template = connections[alias].settings_dict
    with ExitStack() as stack:
        if template["ENGINE"].endswith("sqlite3"):
            missing = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "gone"
            down = {**template, "NAME": str(missing / "db.sqlite3")}
        else:
            down = {**template, "PORT": str(stack.enter_context(closed_port()))}
        connections[DOWN] = load_backend(down["ENGINE"]).DatabaseWrapper(down, DOWN)
        try:
            with override_settings(DATABASE_ROUTERS=[SessionsIn(DOWN)]):
                yield
        finally:
            connections[DOWN].close()
            del connections[DOWN]


# Each engine with the store its sessions need; cached_db needs both. The
# LocMem cache lives in the process and cannot be unreachable.
OUTAGES = [
    pytest.param("db-postgresql", "database", id="db-postgresql"),
    pytest.param("db-sqlite", "database", id="db-sqlite"),
    pytest.param("cache-redis", "redis", id="cache-redis"),
    pytest.param("cached_db-redis", "database", id="cached_db-redis-database-down"),
    pytest.param("cached_db-redis", "redis", id="cached_db-redis-redis-down"),
]


def take_down(engine: Any, down: str) -> Any:
    """Put the store named by ``down`` ("database": only the session table's)
    out of reach (tests/security/test_store_failures.py's ``outage`` takes
    the whole database down)."""
    if down == "database":
        return sessions_database_down(engine.alias)
    return redis_unreachable(engine)


@contextmanager
def down_after(signal: Any, start_outage: Callable[[], Any]) -> Iterator[None]:
    """Take the store down when ``signal`` is sent (and keep it down until the
    block ends): after the session was loaded, before it is ended or renewed."""
    with ExitStack() as stack:

        def receiver(**kwargs: Any) -> None:
            stack.enter_context(start_outage())

        signal.connect(receiver, weak=False, dispatch_uid="failure-modes-outage")
        stack.callback(signal.disconnect, dispatch_uid="failure-modes-outage")
        yield


def ask(action: str, transport: Transport, token: str, user: Any, slow=False) -> Any:
    """Log out, log in again, or log out everywhere else."""
    if action == "logout":
        return transport.post("/accounts/logout/", cookie=cookie(token))
    if action == "login":
        form = {"username": user.username, "password": PASSWORD}
        return transport.post("/accounts/login/", cookie=cookie(token), form=form)
    path = "/slow/end-others/" if slow else "/my-sessions/end-others/"
    return transport.post(path, cookie=cookie(token))


@contextmanager
def store_goes_down(
    when: str, action: str, start_outage: Callable[[], Any], in_flight: Any
) -> Iterator[None]:
    """Take the store down from the start of the request, or once the session
    is loaded and just before it is ended, renewed or revoked."""
    with ExitStack() as stack:
        if when == "from the start":
            stack.enter_context(start_outage())
        elif action == "logout":  # sent by logout() just before the flush
            stack.enter_context(down_after(user_logged_out, start_outage))
        elif action == "login":  # sent by login() before the renewal is written
            stack.enter_context(down_after(user_logged_in, start_outage))
        else:
            in_flight(lambda: stack.enter_context(start_outage()))
        yield


@pytest.mark.parametrize("engine, down", OUTAGES, indirect=["engine"])
@pytest.mark.parametrize("fail_open", [False, True], ids=["fail-closed", "fail-open"])
@pytest.mark.parametrize("action", ["logout", "login", "revoke"])
@pytest.mark.parametrize("when", ["from the start", "mid-request"])
def test_ending_renewing_or_revoking_with_the_store_down_answers_503(
    wsgi,
    engine,
    down,
    fail_open,
    action,
    when,
    settings,
    user_factory,
    stored,
    in_flight,
):
    settings.SCS = {"FAIL_OPEN": fail_open}
    user = user_factory()
    token = log_in(wsgi, user)
    other_device = log_in(wsgi, user)
    before = {t: stored(t) for t in (token, other_device)}
    assert None not in before.values()

    with store_goes_down(when, action, lambda: take_down(engine, down), in_flight):
        response = ask(action, wsgi, token, user, slow=when == "mid-request")

    # The user is told that nothing happened, and the browser keeps its cookie.
    assert_unavailable(response)
    # Nothing happened: both sessions are as they were, and alive.
    assert {t: stored(t) for t in before} == before
    for t in before:
        assert read(wsgi, t)["user"] == str(user.pk)
    # Once the store is back, the same request does what was asked.
    response = ask(action, wsgi, token, user)
    assert response.status_code in (200, 302), response.content
    if action == "logout":
        assert read(wsgi, token)["user"] is None
    elif action == "login":
        assert read(wsgi, session_cookie(response).value)["user"] == str(user.pk)
        assert stored(token) is None
    else:
        assert json_body(response) == {"ended": 1}
        assert read(wsgi, other_device)["user"] is None


@pytest.mark.parametrize("engine, down", OUTAGES, indirect=["engine"])
@pytest.mark.parametrize("path", ["/async/logout-session/", "/async/renew/"])
def test_async_end_or_renew_with_the_store_down_answers_503_when_failing_open(
    engine, down, path, settings, stored, live_token
):
    settings.SCS = {"FAIL_OPEN": True}
    transport = Transport("asgi")
    before = stored(live_token)
    with take_down(engine, down):
        response = transport.post(path, cookie=cookie(live_token))
    assert_unavailable(response)
    assert stored(live_token) == before
    assert read(transport, live_token)["value"] == "secret"


@pytest.mark.parametrize("engine, down", OUTAGES, indirect=["engine"])
def test_failing_open_still_serves_a_request_that_only_reads(
    wsgi, engine, down, settings, stored, live_token
):
    # The other side of the tests above: FAIL_OPEN keeps working for a
    # request that neither ends, renews nor revokes.
    settings.SCS = {"FAIL_OPEN": True}
    with take_down(engine, down):
        response = wsgi.get("/read/", cookie=cookie(live_token))
    assert response.status_code == 200
    assert not response.cookies
    # cached_db reads its copy in Redis while the database is down.
    reachable = engine.kind == "cached_db"
    assert json_body(response)["value"] == ("secret" if reachable else None)


# -- 2. Redis error replies ------------------------------------------------------------


@contextmanager
def redis_config(admin: redis.Redis, **values: str) -> Iterator[None]:
    """Set Redis configuration parameters (``_`` for ``-``) in the block."""
    values = {name.replace("_", "-"): value for name, value in values.items()}
    saved = {name: admin.config_get(name)[name] for name in values}
    try:
        for name, value in values.items():
            admin.config_set(name, value)
        yield
    finally:
        for name, value in saved.items():
            admin.config_set(name, value)


@contextmanager
def out_of_memory(admin: redis.Redis) -> Iterator[None]:
    """Real ``OOM command not allowed`` replies to every write."""
    with redis_config(admin, maxmemory="1", maxmemory_policy="noeviction"):
        yield


@contextmanager
def replica_of_a_lost_master(admin: redis.Redis, serve_stale: bool) -> Iterator[None]:
    """Redis turned into a replica of a master it cannot reach, as after a
    failover: ``READONLY`` to writes, and ``MASTERDOWN`` to reads too unless
    it serves stale data. It keeps its data until a sync, which never comes."""
    stale = "yes" if serve_stale else "no"
    with ExitStack() as stack:
        port = stack.enter_context(closed_port())
        stack.enter_context(redis_config(admin, replica_serve_stale_data=stale))
        admin.replicaof(HOST, port)
        stack.callback(admin.replicaof, "NO", "ONE")
        assert admin.info("replication")["role"] == "slave"
        yield


# Commands redis-py sends to set a connection up: never rewritten.
_HANDSHAKE = {"AUTH", "CLIENT", "HELLO", "PING", "SELECT"}
_ANSWER_WITH = "return redis.error_reply(ARGV[1])"


@contextmanager
def error_replies(reply: str, commands: set[str] | None = None) -> Iterator[None]:
    """The server answers each command the application sends (or only those
    named in ``commands``) with the error ``reply``, without running it.

    The command is replaced on its way out by a script that returns the error,
    so the reply is a real one, parsed by redis-py as any other (in pipelines
    too). This is the one injected fault: Redis does not load, lose its cluster
    or reshard on demand.
    """

    def rewrite(args: tuple[Any, ...]) -> tuple[Any, ...]:
        name = str(args[0]).upper().split()[0] if args else ""
        if name in _HANDSHAKE or (commands is not None and name not in commands):
            return args
        return ("EVAL", _ANSWER_WITH, 0, reply)

    connection = redis.connection.AbstractConnection
    send_command, pack_commands = connection.send_command, connection.pack_commands

    def faulty_send_command(self: Any, *args: Any, **options: Any) -> Any:
        return send_command(self, *rewrite(args), **options)

    def faulty_pack_commands(self: Any, commands: Any) -> Any:  # pipelines
        return pack_commands(self, [rewrite(tuple(args)) for args in commands])

    with (
        mock.patch.object(connection, "send_command", faulty_send_command),
        mock.patch.object(connection, "pack_commands", faulty_pack_commands),
    ):
        yield


# name: (the fault, whether GET still answers, whether a new session's SET NX
# still goes through).
FAULTS: dict[str, tuple[Callable[[redis.Redis], Any], bool, bool]] = {
    "oom": (out_of_memory, True, False),
    "readonly": (lambda a: replica_of_a_lost_master(a, serve_stale=True), True, False),
    "masterdown": (
        lambda a: replica_of_a_lost_master(a, serve_stale=False),
        False,
        False,
    ),
    "loading": (
        lambda a: error_replies("LOADING Redis is loading the dataset in memory"),
        False,
        False,
    ),
    "clusterdown": (
        lambda a: error_replies("CLUSTERDOWN The cluster is down"),
        False,
        False,
    ),
    "tryagain": (
        lambda a: error_replies(
            "TRYAGAIN Multiple keys request during rehashing of slot"
        ),
        False,
        False,
    ),
    # Even after SCRIPT LOAD, as from a server that keeps losing its scripts.
    "noscript": (
        lambda a: error_replies(
            "NOSCRIPT No matching script. Please use EVAL.", commands={"EVALSHA"}
        ),
        True,
        True,
    ),
}


def redis_contents(admin: redis.Redis) -> dict[bytes, bytes]:
    return {key: admin.dump(key) for key in admin.keys("*")}


def database_value(engine: Any, token: str) -> tuple[int, str] | None:
    """The version and ``value`` of the session the database holds."""
    row = engine.stored.get(tokens.hash_token(token))
    if row is None:
        return None
    envelope = codec.decode(row["data"], tokens.hash_token(token))
    return row["version"], envelope.data["value"]


def assert_cached_copy_is_committed(engine: Any, token: str) -> None:
    """cached_db: Redis holds no copy of a version the database does not."""
    copy = engine.cached().raw(tokens.hash_token(token))
    if copy is None or copy["kind"] != "session":
        return  # nothing, a tombstone or the marker of a write: never served
    held = database_value(engine, token)
    assert held is not None, "a copy of a session the database does not hold"
    assert copy["version"] == held[0], (copy["version"], held)
    copied = codec.decode(copy["data"], tokens.hash_token(token))
    assert copied.data["value"] == held[1]


@pytest.mark.parametrize("engine", ["cache-redis", "cached_db-redis"], indirect=True)
@pytest.mark.parametrize("fault", list(FAULTS))
def test_redis_error_replies_answer_503_to_writes_and_change_nothing(
    wsgi, engine, fault, live_token, stored, redis_admin
):
    make_fault, reads_answered, creates_answered = FAULTS[fault]
    assert read(wsgi, live_token)["value"] == "secret"  # cached_db: copied to Redis
    before, contents = stored(live_token), redis_contents(redis_admin)

    with make_fault(redis_admin):
        reading = wsgi.get("/read/", cookie=cookie(live_token))
        writing = wsgi.get("/write/", cookie=cookie(live_token), query={"value": "x"})
        creating = wsgi.get("/write/", query={"value": "new"})

    if engine.kind == "cached_db" or reads_answered:
        assert reading.status_code == 200, reading.content
        assert json_body(reading)["value"] == "secret"
        assert not reading.cookies
    else:
        assert_unavailable(reading)
    assert_unavailable(writing)
    created = None
    if engine.kind == "cached_db" or creates_answered:
        # A new session's copy is only a cache: the database alone decides.
        assert creating.status_code == 200, creating.content
        created = session_cookie(creating).value
    else:
        assert_unavailable(creating)

    # Nothing half-written: the session, and Redis, are as they were (but for
    # the new session, when it could be created).
    assert stored(live_token) == before
    after = redis_contents(redis_admin)
    if created is not None and engine.kind == "cache":
        after.pop(engine.stored.key(tokens.hash_token(created)).encode())
    assert after == contents
    assert read(wsgi, live_token)["value"] == "secret"
    if created is not None:
        assert read(wsgi, created)["value"] == "new"
    response = wsgi.get("/write/", cookie=cookie(live_token), query={"value": "later"})
    assert response.status_code == 200
    assert read(wsgi, live_token)["value"] == "later"


@pytest.mark.parametrize("engine", ["cache-redis"], indirect=True)
def test_each_fault_produces_the_error_reply_it_is_named_for(engine, redis_admin):
    client = engine.redis()
    client.set("probe", "1")
    expected = {
        "oom": (redis.exceptions.OutOfMemoryError, "OOM"),
        "readonly": (redis.exceptions.ReadOnlyError, "READONLY"),
        "masterdown": (redis.exceptions.MasterDownError, "MASTERDOWN"),
        "loading": (redis.exceptions.BusyLoadingError, "LOADING"),
        "clusterdown": (redis.exceptions.ClusterDownError, "CLUSTERDOWN"),
        "tryagain": (redis.exceptions.TryAgainError, "TRYAGAIN"),
        "noscript": (redis.exceptions.NoScriptError, "NOSCRIPT"),
    }
    for fault, (make_fault, _reads, _creates) in FAULTS.items():
        error, code = expected[fault]
        with make_fault(redis_admin), pytest.raises(error) as raised:
            if fault == "noscript":
                client.script_load(PUT.source)  # the reload does not help
                client.evalsha(PUT.sha, 1, "probe", 1, 1000, b"s")
            elif fault == "masterdown":
                client.get("probe")  # a write gets READONLY first
            else:
                client.set("probe", "2")
        assert raised.value.status_code == code, fault
        assert client.get("probe") == b"1", fault


# -- 3. cached_db caches no version the database does not hold ------------------------


@contextmanager
def replies_lost(which: Callable[[tuple[Any, ...]], bool]) -> Iterator[list[Any]]:
    """Redis runs the commands ``which`` picks, but their replies do not
    arrive in time: redis-py raises ``TimeoutError`` as it does when the
    socket times out. Yields the commands whose replies were lost."""
    execute_command = redis.client.Redis.execute_command
    direct = scs_redis.direct
    lost: list[Any] = []

    def late(self: Any, *args: Any, **options: Any) -> Any:
        reply = execute_command(self, *args, **options)
        if which(args):
            lost.append(args[:2])
            raise redis.exceptions.TimeoutError("Timeout reading from socket")
        return reply

    def late_direct(pool: Any, *command: Any) -> Any:
        # A lone script goes on a pooled connection itself (and, when that
        # fails, through execute_command above).
        reply = direct(pool, *command)
        if which(command):
            lost.append(command[:2])
            raise redis.exceptions.TimeoutError("Timeout reading from socket")
        return reply

    with (
        mock.patch.object(redis.client.Redis, "execute_command", late),
        mock.patch.object(scs_redis, "direct", late_direct),
    ):
        yield lost


LOST_REPLIES = {
    # Whatever the write sends first (cached_db's marker): it ran, the reply
    # did not come back, the write stops there.
    "every reply of the write": lambda args: True,
    # Only the new copy's: the database has committed by then.
    "the reply to the new copy": lambda args: args[:2] == ("EVALSHA", PUT.sha),
}


@pytest.mark.parametrize("engine", ["cached_db-redis"], indirect=True)
@pytest.mark.parametrize("lost", list(LOST_REPLIES))
def test_a_write_whose_redis_replies_are_lost_leaves_reads_on_the_committed_data(
    wsgi, engine, live_token, in_flight, lost
):
    assert read(wsgi, live_token)["value"] == "secret"  # a copy in Redis
    with ExitStack() as stack:
        # Armed once the request has read the session: only the write's
        # commands are affected.
        lost_replies: list[Any] = []

        def arm() -> None:
            lost_replies.append(stack.enter_context(replies_lost(LOST_REPLIES[lost])))

        in_flight(arm)
        response = wsgi.get("/slow/write/", cookie=cookie(live_token))
    assert lost_replies and lost_replies[0], "no reply was lost"
    committed = database_value(engine, live_token)
    if lost == "every reply of the write":
        assert_unavailable(response)
        assert committed[1] == "secret"
    else:
        assert response.status_code == 200, response.content
        assert committed[1] == "written by the slow request"
    # Reads serve what the database holds, the first time and every time.
    for _ in range(3):
        assert_cached_copy_is_committed(engine, live_token)
        assert read(wsgi, live_token)["value"] == committed[1]
    assert database_value(engine, live_token) == committed
    # And the next write goes through, cached once committed.
    wsgi.get("/write/", cookie=cookie(live_token), query={"value": "later"})
    assert read(wsgi, live_token)["value"] == "later"
    assert_cached_copy_is_committed(engine, live_token)


@pytest.mark.parametrize("engine", ["cached_db-redis"], indirect=True)
def test_a_write_in_a_rolled_back_transaction_is_never_served(wsgi, engine, live_token):
    assert read(wsgi, live_token)["value"] == "secret"  # a copy in Redis
    response = wsgi.get("/write-rolled-back/", cookie=cookie(live_token))
    assert response.status_code == 500
    assert not response.cookies
    assert database_value(engine, live_token)[1] == "secret"
    for _ in range(3):
        assert_cached_copy_is_committed(engine, live_token)
        assert read(wsgi, live_token)["value"] == "secret"


# -- 4. ending a session that does not exist ----------------------------------------------


def redis_commands(traffic: Any) -> list[str]:
    """The Redis commands a block sent, pipelines as "PIPELINE"."""
    command, pipeline, direct = traffic.redis_mocks
    names = [
        str(call.args[1]).upper()
        for call in command.call_args_list + direct.call_args_list
    ]
    return names + ["PIPELINE"] * pipeline.call_count


@pytest.mark.parametrize(
    "path", ["/logout-session/", "/async/logout-session/", "/accounts/logout/"]
)
def test_ending_an_unknown_session_looks_it_up_once_and_writes_nothing(
    wsgi, engine, path, redis_admin
):
    unknown = tokens.new_token()
    with engine.traffic() as traffic:
        response = wsgi.post(path, cookie=cookie(unknown))
    assert response.status_code == 200, response.content

    sql = [query["sql"] for query in traffic.queries]
    if engine.kind == "cache":
        assert sql == []
    else:
        assert len(sql) == 1 and sql[0].startswith("SELECT"), sql
        assert "scs_django_session" in sql[0]
    if engine.on_redis:
        assert redis_commands(traffic) == ["GET"]
    if engine.cache_alias == "locmem":
        # get, set, add, delete, touch, has_key (tests/engines.py)
        assert [m.call_count for m in traffic.cache_mocks] == [1, 0, 0, 0, 0, 0]
    # Nothing stored anywhere: no row, no key, no tombstone.
    assert engine.stored.hashes() == set()
    if engine.on_redis:
        assert redis_admin.dbsize() == 0
    if engine.cache_alias == "locmem":
        assert list(caches["locmem"]._cache) == []
    # The browser's useless cookie is cleared, once, and nothing else is sent.
    cleared = session_cookie(response)
    assert (cleared.value, cleared["max-age"]) == ("", 0)
    assert len(set_cookie_headers(response)) == 1


@pytest.mark.parametrize(
    "path", ["/logout-session/", "/async/logout-session/", "/accounts/logout/"]
)
def test_ending_without_a_session_cookie_sends_nothing(wsgi, engine, path):
    with engine.no_traffic():
        response = wsgi.post(path)
    assert response.status_code == 200, response.content
    assert not response.cookies
