"""What only Redis shows: round trips per request, the cached_db engine with
its cache gone, no resurrection on a real server, no unpickling (and, for
contrast, the generic cache path that cannot refuse a pickle), the per-user
index.

Round trips are counted twice: on the client (a hook on redis-py: one plain
command or one pipeline is one round trip) and on the server (the slow log,
set to log every command, lists what clients sent; ``INFO commandstats``,
reset with ``CONFIG RESETSTAT``, also counts the commands the Lua scripts run).
"""

from __future__ import annotations

import json
import pickle
import re
import time
from collections import Counter
from contextlib import contextmanager
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from typing import Any

import pytest
import redis
import time_machine
from asgiref.sync import async_to_sync
from django.conf import settings as django_settings
from django.contrib.auth import SESSION_KEY
from django.core.cache import caches
from django.test import AsyncClient, Client

from scs_django import codec, tokens
from scs_django.backends import cached_db, redis_layout
from scs_django.backends import redis as scs_redis
from scs_django.backends.base import Record
from scs_django.backends.cache import redis_sessions
from scs_django.backends.cache_api import CacheSessions
from scs_django.backends.operations import UpdateOutcome
from scs_django.backends.redis_scripts import SCRIPTS
from scs_django.backends.redis_users import LISTED, RedisUsers
from scs_django.exceptions import SessionStoreUnavailable
from tests.engines import REDIS_ENGINES, RedisValues, from_micros, now_micros
from tests.factories import PASSWORD
from tests.security.test_store_failures import closed_port
from tests.servers import RedisServer

pytestmark = pytest.mark.django_db(databases="__all__")

COOKIE = django_settings.SESSION_COOKIE_NAME

on_redis_engines = pytest.mark.parametrize("engine", REDIS_ENGINES, indirect=True)
on_cache_redis = pytest.mark.parametrize("engine", ["cache-redis"], indirect=True)
on_cached_db = pytest.mark.parametrize("engine", ["cached_db-redis"], indirect=True)


# -- counting what reaches Redis -------------------------------------------------------


class ServerCommands:
    """What the Redis server saw during a block, from a connection of its own."""

    # The monitor's own commands, left out of the counts.
    OWN = ("config", "slowlog", "info", "client")

    def __init__(self, url: str) -> None:
        self.monitor = redis.Redis.from_url(url)
        self.address = self.monitor.client_info()["addr"]
        self.commands: list[str] = []
        self.stats: dict[str, int] = {}

    @contextmanager
    def count(self):
        log_all = {"slowlog-log-slower-than": 0, "slowlog-max-len": 1024}
        previous = {name: self.monitor.config_get(name)[name] for name in log_all}
        for name, value in log_all.items():
            self.monitor.config_set(name, value)
        self.monitor.config_resetstat()
        self.monitor.slowlog_reset()
        try:
            yield self
        finally:
            stats = self.monitor.info("commandstats")
            log = self.monitor.slowlog_get(1024)
            for name, value in previous.items():
                self.monitor.config_set(name, value)
        self.stats = {
            name.removeprefix("cmdstat_"): value["calls"]
            for name, value in stats.items()
            if not name.removeprefix("cmdstat_").startswith(self.OWN)
        }
        # Commands run by a script are logged with the Lua client's address.
        self.commands = [
            entry["command"].split()[0].decode().upper()
            for entry in reversed(log)
            if entry["client_address"] not in (self.address.encode(), b"?:0")
        ]

    def close(self) -> None:
        self.monitor.close()


@pytest.fixture
def server(engine, settings):
    monitor = ServerCommands(settings.TEST_REDIS_URL)
    yield monitor
    monitor.close()


@pytest.fixture
def warm_scripts(engine):
    """Load the Lua scripts, so the first write of a test pays no SCRIPT LOAD."""
    for script in SCRIPTS:
        engine.redis().script_load(script.source)


@contextmanager
def measured(engine, server):
    """Count the block's round trips (client side), SQL and server commands."""
    with server.count(), engine.traffic() as traffic:
        yield traffic


def start_session(client, value="cart"):
    client.get("/write/", {"value": value})
    return client.cookies[COOKIE].value


def second_client(token):
    other = Client()
    other.cookies[COOKIE] = token
    return other


def login(client, user):
    return client.post(
        "/accounts/login/", {"username": user.username, "password": PASSWORD}
    )


def session_queries(traffic):
    # Savepoints and user queries left out: what the session engine sent.
    return [q for q in traffic.queries if "scs_django_session" in q["sql"]]


# -- round trips per request (DESIGN §10) ------------------------------------------------


IDLE = {"IDLE_TIMEOUT": 600, "TOUCH_INTERVAL": 60}


def request_case(client, user, settings, clock, case):
    """Prepare ``case`` and return the request to measure."""
    if case == "create":
        return lambda: client.get("/write/")
    if case.startswith("idle"):
        settings.SCS = IDLE
    start_session(client)
    if case == "untouched":
        return lambda: client.get("/untouched/")
    if case in ("read", "idle-read-inside-touch-interval"):
        clock.shift(59)
        return lambda: client.get("/read/")
    if case == "idle-read-past-touch-interval":
        clock.shift(60)
        return lambda: client.get("/read/")
    if case == "write":
        return lambda: client.get("/write/", {"value": "changed"})
    if case == "signed-in-write":
        login(client, user)
        return lambda: client.get("/write/", {"value": "changed"})
    assert case == "login"
    return lambda: login(client, user)


# case: (round trips, commands the client sent, as the server logged them)
CACHE_REDIS_REQUESTS = {
    "untouched": (0, []),
    "read": (1, ["GET"]),
    "write": (2, ["GET", "EVALSHA"]),
    # The user's index already holds the session at its deadline: left alone.
    "signed-in-write": (2, ["GET", "EVALSHA"]),
    "create": (1, ["SET"]),
    # Read, then one pipeline: the renaming script and the user's index (the
    # new member added before the old one goes, so a listing sees one of them).
    "login": (
        2,
        ["GET", "EVALSHA", "ZADD", "ZREM", "ZREMRANGEBYSCORE", "PEXPIRE", "PEXPIRE"],
    ),
    "idle-read-inside-touch-interval": (1, ["GET"]),
    "idle-read-past-touch-interval": (2, ["GET", "EVALSHA"]),
}


@on_cache_redis
@pytest.mark.parametrize("case", list(CACHE_REDIS_REQUESTS))
def test_redis_round_trips_per_request(
    engine, server, warm_scripts, client, user_factory, settings, case
):
    round_trips, commands = CACHE_REDIS_REQUESTS[case]
    user = user_factory()
    with time_machine.travel("2026-03-01 12:00:00+00:00", tick=False) as clock:
        request = request_case(client, user, settings, clock, case)
        with measured(engine, server) as traffic:
            response = request()
    assert response.status_code in (200, 302)
    assert traffic.redis_round_trips == round_trips, server.commands
    assert server.commands == commands
    # The server's counters agree (they also count what the scripts ran).
    assert server.stats.get("evalsha", 0) == commands.count("EVALSHA")
    if "EVALSHA" not in commands:
        assert server.stats == Counter(c.lower() for c in commands)
    assert session_queries(traffic) == []


@on_cache_redis
def test_login_renames_the_session_in_one_script(
    engine, server, warm_scripts, client, user_factory
):
    user = user_factory()
    anonymous = start_session(client)
    with measured(engine, server) as traffic:
        assert login(client, user).status_code == 302
    assert traffic.redis_round_trips <= 2
    # One script wrote the new key and left a forward under the old one.
    assert server.stats["evalsha"] == 1
    assert (server.stats["set"], server.stats.get("del", 0)) == (2, 0)
    old = engine.stored.raw(tokens.hash_token(anonymous))
    assert old["kind"] == "forward"
    assert 0 < engine.redis().pttl(engine.stored.key(tokens.hash_token(anonymous)))
    assert (
        engine.redis().pttl(engine.stored.key(tokens.hash_token(anonymous))) <= 60_000
    )
    assert client.get("/read/").json()["user"] == str(user.pk)


@on_cache_redis
def test_first_write_after_a_script_flush_loads_the_script_once(engine, client):
    assert client.get("/write/").cookies[COOKIE].value  # a SET NX: no script
    engine.redis().script_flush()
    with engine.traffic() as traffic:
        client.get("/write/", {"value": "again"})
    # GET; EVALSHA answered NOSCRIPT, SCRIPT LOAD, EVALSHA again.
    assert traffic.redis_round_trips == 4
    with engine.traffic() as traffic:
        client.get("/write/", {"value": "third"})
    assert traffic.redis_round_trips == 2
    assert client.get("/read/").json()["value"] == "third"


@on_cached_db
def test_cached_db_warm_read_is_one_redis_command_and_no_sql(
    engine, server, warm_scripts, client
):
    start_session(client)
    with measured(engine, server) as traffic:
        response = client.get("/read/")
    assert response.json()["value"] == "cart"
    assert traffic.queries == []
    assert traffic.redis_round_trips == 1
    assert server.commands == ["GET"]
    assert server.stats == {"get": 1}


# case: (session statements, round trips, commands the client sent)
CACHED_DB_REQUESTS = {
    "untouched": (0, 0, []),
    "read": (0, 1, ["GET"]),
    # Cache read; the marker, the UPDATE, then the new copy.
    "write": (1, 3, ["GET", "EVALSHA", "EVALSHA"]),
    "create": (1, 1, ["EVALSHA"]),  # INSERT, then fill
    # At most: the db engine's statements; a read, the old copy's tombstone
    # (before the rename) and the new copy (after the commit).
    "login": (3, 3, None),
    "idle-read-inside-touch-interval": (0, 1, ["GET"]),
    "idle-read-past-touch-interval": (1, 2, ["GET", "EVALSHA"]),
}


@on_cached_db
@pytest.mark.parametrize("case", list(CACHED_DB_REQUESTS))
def test_cached_db_statements_and_round_trips_per_request(
    engine, server, warm_scripts, client, user_factory, settings, case
):
    statements, round_trips, commands = CACHED_DB_REQUESTS[case]
    user = user_factory()
    with time_machine.travel("2026-03-01 12:00:00+00:00", tick=False) as clock:
        request = request_case(client, user, settings, clock, case)
        with measured(engine, server) as traffic:
            response = request()
        # Counted now: the next request clears Django's query log.
        sent = session_queries(traffic)
        if case == "login":
            logged_in_as = client.get("/read/").json()["user"]
    assert response.status_code in (200, 302)
    if case == "login":
        assert len(sent) <= statements, sent
        assert traffic.redis_round_trips <= round_trips, server.commands
        assert logged_in_as == str(user.pk)
        return
    assert len(session_queries(traffic)) == statements, session_queries(traffic)
    assert traffic.redis_round_trips == round_trips, server.commands
    assert server.commands == commands


@on_cached_db
def test_cached_db_cold_read_fills_the_cache_once(engine, server, warm_scripts, client):
    token = start_session(client)
    engine.redis().flushdb()
    with measured(engine, server) as traffic:
        assert client.get("/read/").json()["value"] == "cart"
    assert len(session_queries(traffic)) == 1
    assert server.commands == ["GET", "EVALSHA"]
    key_hash = tokens.hash_token(token)
    assert engine.cached().get(key_hash)["data"] == engine.stored.get(key_hash)["data"]
    with measured(engine, server) as traffic:
        client.get("/read/")
    assert traffic.queries == []
    assert server.commands == ["GET"]


# -- the TTL is the time left -----------------------------------------------------------


@on_cache_redis
@pytest.mark.parametrize(
    "scs, seconds",
    [
        ({"ABSOLUTE_TIMEOUT": 3600}, 3600),
        ({"ABSOLUTE_TIMEOUT": 3600, "IDLE_TIMEOUT": 600}, 600),
        ({"ABSOLUTE_TIMEOUT": 300, "IDLE_TIMEOUT": 600}, 300),
    ],
)
def test_key_ttl_is_the_time_left_until_the_first_deadline(
    engine, client, settings, scs, seconds
):
    settings.SCS = scs
    token = start_session(client)
    stored = engine.stored.get(tokens.hash_token(token))
    assert seconds * 1000 - 2000 < stored["pttl"] <= seconds * 1000
    left = (stored["expiry_micros"] - now_micros()) / 1000
    assert abs(stored["pttl"] - left) < 2000


@on_cache_redis
def test_user_index_lives_as_long_as_its_longest_session(
    engine, client, user_factory, settings
):
    settings.SCS = {"ABSOLUTE_TIMEOUT": 3600, "IDLE_TIMEOUT": 600}
    user = user_factory()
    login(client, user)
    index = redis_sessions().user_key(user.pk)
    assert 3600_000 - 2000 < engine.redis().pttl(index) <= 3600_000
    settings.SCS = {"ABSOLUTE_TIMEOUT": 7200, "IDLE_TIMEOUT": 600}
    login(Client(), user)
    assert 7200_000 - 2000 < engine.redis().pttl(index) <= 7200_000
    settings.SCS = {"ABSOLUTE_TIMEOUT": 60, "IDLE_TIMEOUT": 600}
    login(Client(), user)  # a shorter session never shortens the index
    assert engine.redis().pttl(index) > 3600_000


# -- Redis down or unreachable -------------------------------------------------------------


def redis_cache(url, **options):
    return {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": url,
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 0.5, **options},
    }


@pytest.fixture
def doomed(settings):
    """A Redis of this test's own, as the cache "doomed": stopping it leaves
    the shared one running."""
    with RedisServer() as server:
        settings.CACHES = {**settings.CACHES, "doomed": redis_cache(server.url)}
        settings.SCS = {"CACHE_ALIAS": "doomed"}
        yield server


def restart(server, settings):
    server.start(port=server.port)  # empty: the test servers keep nothing on disk
    settings.CACHES = {**settings.CACHES, "doomed": redis_cache(server.url)}


@on_cached_db
def test_cached_db_serves_every_session_from_the_database_while_redis_is_down(
    engine, doomed, settings
):
    cached = RedisValues(
        redis.Redis.from_url(doomed.url), caches["doomed"].make_key("scs:cdb:")
    )
    reader, writer, leaver = Client(), Client(), Client()
    tokens_ = {c: start_session(c, "before") for c in (reader, writer, leaver)}
    assert reader.get("/read/").json()["value"] == "before"
    assert cached.hashes() == {tokens.hash_token(t) for t in tokens_.values()}

    doomed.stop()
    assert reader.get("/read/").json()["value"] == "before"
    newcomer = Client()
    assert newcomer.get("/write/", {"value": "new"}).status_code == 200
    # Changing or ending a stored session needs the cache too (a copy the cache
    # kept would answer for it later), so it waits for the cache: 503, and
    # nothing changed, the cookie included.
    for end in ("/logout-session/", "/renew/"):
        response = leaver.get(end)
        assert response.status_code == 503, end
        assert COOKIE not in response.cookies
    with pytest.raises(SessionStoreUnavailable):
        engine.store_class.revoke_keys([tokens.hash_token(tokens_[leaver])])
    response = writer.get("/write/", {"value": "while down"})
    assert response.status_code == 503
    assert COOKIE not in response.cookies
    assert writer.get("/read/").json()["value"] == "before"
    assert leaver.get("/read/").json()["value"] == "before"

    restart(doomed, settings)
    cached.client = redis.Redis.from_url(doomed.url)
    assert cached.hashes() == set()  # it came back empty
    assert reader.get("/read/").json()["value"] == "before"
    assert writer.get("/write/", {"value": "once back"}).status_code == 200
    assert writer.get("/read/").json()["value"] == "once back"
    assert newcomer.get("/read/").json()["value"] == "new"
    assert leaver.get("/read/").json()["value"] == "before"
    assert leaver.get("/logout-session/").cookies[COOKIE].value == ""
    assert second_client(tokens_[leaver]).get("/read/").json()["value"] is None
    assert cached.hashes() == {
        tokens.hash_token(t)
        for t in (tokens_[reader], tokens_[writer], newcomer.cookies[COOKIE].value)
    }


@on_cache_redis
def test_cache_engine_answers_503_while_redis_is_down_and_keeps_the_cookie(
    engine, doomed, settings
):
    client = Client()
    token = start_session(client)
    doomed.stop()
    for path in ("/read/", "/write/", "/renew/", "/logout-session/"):
        response = client.get(path)
        assert response.status_code == 503, path
        assert COOKIE not in response.cookies
    assert client.cookies[COOKIE].value == token
    restart(doomed, settings)
    # Redis was the only copy: it came back empty, so the token is unknown.
    assert client.get("/read/").json()["value"] is None
    response = client.get("/write/")
    assert response.cookies[COOKIE].value != token


@pytest.fixture
def blip(settings):
    """Within the block the cache "redis" is unreachable (a network blip), and
    keeps what it holds."""

    @contextmanager
    def unreachable():
        reachable = settings.CACHES["redis"]
        # Held for the block: a port that was merely free could be taken meanwhile.
        with closed_port() as port:
            nowhere = redis_cache(f"redis://127.0.0.1:{port}/0")
            settings.CACHES = {**settings.CACHES, "redis": nowhere}
            try:
                yield
            finally:
                settings.CACHES = {**settings.CACHES, "redis": reachable}

    return unreachable


@on_cached_db
@pytest.mark.parametrize("ending", ["logout", "revoke", "renew"])
def test_session_cannot_be_half_ended_while_the_cache_is_unreachable(
    engine, client, blip, ending
):
    token = start_session(client)
    key_hash = tokens.hash_token(token)
    assert client.get("/read/").json()["value"] == "cart"
    assert engine.cached().get(key_hash) is not None
    with blip():
        if ending == "revoke":
            with pytest.raises(SessionStoreUnavailable):
                engine.store_class.revoke_keys([key_hash])
        else:
            path = "/logout-session/" if ending == "logout" else "/renew/"
            response = client.get(path)
            assert response.status_code == 503
            assert COOKIE not in response.cookies
        # Refused as a whole: the database still holds the session, so the
        # copy the cache kept is not stale.
        assert engine.stored.get(key_hash) is not None
    assert client.get("/read/").json()["value"] == "cart"
    assert client.get("/logout-session/").cookies[COOKIE].value == ""
    assert second_client(token).get("/read/").json()["value"] is None


# -- no resurrection on a real Redis ----------------------------------------------------


def expire_by_ttl(client, key):
    """End ``key`` the way its TTL would, and return once Redis has dropped it."""
    client.pexpire(key, 1)
    deadline = time.monotonic() + 10
    # Waited for rather than slept on: EXISTS drops the key once its TTL is out.
    while client.exists(key):
        assert time.monotonic() < deadline, "Redis kept a key past its TTL"
        time.sleep(0.001)


def end_elsewhere(engine, token, ending, ended):
    """End the session of ``token`` the way ``ending`` says, from outside."""
    key_hash = tokens.hash_token(token)
    if ending == "logout":
        assert second_client(token).get("/logout-session/").status_code == 200
    elif ending == "revoke":
        assert engine.store_class.revoke_keys([key_hash]) == 1
    elif ending == "renew":
        ended["renewed"] = second_client(token).get("/renew/").cookies[COOKIE].value
    elif ending == "ttl":
        expire_by_ttl(engine.redis(), engine.stored.key(key_hash))
    else:
        assert ending == "evicted"
        engine.redis().delete(engine.stored.key(key_hash))
    assert engine.stored.get(key_hash) is None


ENDINGS = [
    *[(name, ending) for name in REDIS_ENGINES for ending in ("logout", "revoke")],
    *[(name, "renew") for name in REDIS_ENGINES],
    # For cached_db the cache's TTL is no deadline: see the test after this one.
    ("cache-redis", "ttl"),
    ("cache-redis", "evicted"),
]


@pytest.mark.parametrize("engine, ending", ENDINGS, indirect=["engine"])
@pytest.mark.parametrize("slow", ["write", "read-and-touch"])
def test_session_ended_during_a_slow_request_is_not_recreated(
    engine, client, in_flight, settings, ending, slow
):
    if slow == "read-and-touch":
        settings.SCS = IDLE
    with time_machine.travel("2026-03-01 12:00:00+00:00", tick=False) as clock:
        token = start_session(client)
        key_hash = tokens.hash_token(token)
        if slow == "read-and-touch":
            clock.shift(120)  # the next read is due to touch
        ended = {}
        in_flight(lambda: end_elsewhere(engine, token, ending, ended))
        response = client.get(f"/slow/{slow.split('-')[0]}/")
        assert response.status_code == 400  # SessionInterrupted
        assert COOKIE not in response.cookies
        if engine.kind == "cache":
            # Nothing, or the forward a renewal leaves.
            left = engine.stored.raw(key_hash)
            if ending == "renew":
                assert left["to"] == tokens.hash_token(ended["renewed"])
            else:
                assert left is None
        else:
            assert engine.stored.get(key_hash) is None
            assert engine.cached().get(key_hash) is None  # a tombstone at most
        assert second_client(token).get("/read/").json()["value"] is None
        if ending == "renew":
            renewed = second_client(ended["renewed"])
            assert renewed.get("/read/").json()["value"] == "cart"
            assert engine.stored.hashes() == {tokens.hash_token(ended["renewed"])}
        else:
            assert engine.stored.hashes() == set()


@on_cached_db
@pytest.mark.parametrize("loss", ["ttl", "evicted"])
def test_cached_db_copy_lost_during_a_slow_write_loses_no_write(
    engine, client, in_flight, loss
):
    token = start_session(client)
    key = engine.cached().key(tokens.hash_token(token))

    def lose_the_copy():
        if loss == "ttl":
            expire_by_ttl(engine.redis(), key)
        else:
            engine.redis().delete(key)

    in_flight(lose_the_copy)
    response = client.get("/slow/write/")
    assert response.status_code == 200
    assert second_client(token).get("/read/").json()["value"] == (
        "written by the slow request"
    )


# -- stored bytes are never unpickled -------------------------------------------------------

UNPICKLED = []


def record_unpickling():
    UNPICKLED.append(True)
    return {"_auth_user_id": "1"}


class Canary:
    """Unpickling this calls record_unpickling()."""

    def __reduce__(self):
        return (record_unpickling, ())


@pytest.fixture
def canary():
    UNPICKLED.clear()
    yield pickle.dumps(Canary())
    UNPICKLED.clear()


def plant(engine, token, canary, where):
    key_hash = tokens.hash_token(token)
    prefix = "scs:" if engine.kind == "cache" else "scs:cdb:"
    view = engine.stored if engine.kind == "cache" else engine.cached()
    client = engine.redis()
    if where == "string-under-session-key":
        client.set(view.key(key_hash), canary, px=60_000)
    elif where == "payload-of-a-session-value":
        # A well-formed, live value whose payload is the pickle.
        now = now_micros()
        later = now + 3600 * 1_000_000
        head = b"s" + b"".join(b"%016d" % n for n in (later, now, 1, now, later))
        value = head + b"000001000000" + b"1" + canary
        client.set(view.key(key_hash), value, px=60_000)
    else:
        assert where == "django-cache-api-key"
        # Where Django's cache API would keep a session (scs_django's generic
        # path key, and the contrib cache engine's), pickled by django-redis.
        caches["redis"].set(f"{prefix}s:{key_hash}", Canary(), 60)
        caches["redis"].set(f"django.contrib.sessions.cache{token}", Canary(), 60)


@on_redis_engines
@pytest.mark.parametrize(
    "where",
    ["string-under-session-key", "payload-of-a-session-value", "django-cache-api-key"],
)
def test_a_pickled_payload_is_never_unpickled(engine, client, canary, where):
    token = tokens.new_token()
    plant(engine, token, canary, where)
    store = engine.store_class(token)
    assert store.load() == {}
    assert store.session_key is None
    client.cookies[COOKIE] = token
    response = client.get("/read/")
    assert response.status_code == 200
    assert response.json() == {"value": None, "user": None}
    response = client.get("/write/")
    assert response.status_code == 200
    assert response.cookies[COOKIE].value != token
    assert UNPICKLED == []
    # The canary works: Django's cache API does unpickle it.
    caches["redis"].set("canary", Canary(), 60)
    caches["redis"].get("canary")
    assert UNPICKLED == [True]


@pytest.mark.parametrize("engine", ["cache-locmem"], indirect=True)
def test_the_generic_cache_path_unpickles_what_its_cache_holds(engine, canary):
    # For contrast, a documented weaker guarantee: Django's cache API
    # unpickles every value it returns, so the engine on any cache other than
    # django-redis cannot refuse a pickle. Whoever can write to such a cache
    # (memcached, a shared cache directory, the cache table) can run code in
    # the application; only the native Redis path reads raw bytes.
    token = tokens.new_token()
    caches["locmem"].set(f"scs:s:{tokens.hash_token(token)}", Canary(), 60)
    assert engine.store_class(token).load() == {}
    assert UNPICKLED == [True]


# -- the per-user index --------------------------------------------------------------------


def index_members(engine, user):
    key = redis_sessions().user_key(user.pk)
    return {m.decode() for m in engine.redis().zrange(key, 0, -1)}


@on_cache_redis
def test_user_sessions_lists_live_sessions_and_prunes_dead_ones(engine, user_factory):
    user, other = user_factory(), user_factory()
    devices = [Client() for _ in range(4)]
    for device in devices:
        login(device, user)
    login(Client(), other)
    hashes = [tokens.hash_token(d.cookies[COOKIE].value) for d in devices]
    laptop, phone, tablet, watch = hashes
    assert {i.key_hash for i in engine.store_class.user_sessions(user.pk)} == set(
        hashes
    )

    devices[0].get("/logout-session/")  # deleted
    expire_by_ttl(engine.redis(), engine.stored.key(phone))  # expired by Redis
    engine.store_class.revoke_keys([tablet])  # revoked
    assert index_members(engine, user) == set(hashes)  # pruned lazily...
    listed = engine.store_class.user_sessions(user.pk)
    assert [i.key_hash for i in listed] == [watch]
    assert index_members(engine, user) == {watch}  # ...on listing
    assert len(engine.store_class.user_sessions(other.pk)) == 1


def index_scores(engine, user):
    key = redis_sessions().user_key(user.pk)
    return {
        m.decode(): int(v)
        for m, v in engine.redis().zrange(key, 0, -1, withscores=True)
    }


@on_cache_redis
def test_a_signed_in_write_leaves_the_index_that_still_lists_and_revokes_it(
    engine, user_factory
):
    user = user_factory()
    device = Client()
    login(device, user)
    key_hash = tokens.hash_token(device.cookies[COOKIE].value)
    linked = index_scores(engine, user)
    assert set(linked) == {key_hash}
    for value in ("one", "two", "three"):
        assert device.get("/write/", {"value": value}).status_code == 200
    assert index_scores(engine, user) == linked
    assert [i.key_hash for i in engine.store_class.user_sessions(user.pk)] == [key_hash]
    assert engine.store_class.revoke_user(user.pk) == 1
    assert device.get("/read/").json()["user"] is None


@on_cache_redis
def test_a_write_that_changes_the_user_links_the_session_to_the_new_one(
    engine, user_factory
):
    # Without a login (no renewal): the index of the new user must list it.
    user, other = user_factory(), user_factory()
    device = Client()
    login(device, user)
    token = device.cookies[COOKIE].value
    session = engine.store_class(token)
    session[SESSION_KEY] = str(other.pk)
    session.save()
    key_hash = tokens.hash_token(token)
    assert set(index_scores(engine, other)) == {key_hash}
    assert engine.store_class.revoke_user(other.pk) == 1
    assert engine.store_class(token).load() == {}


@on_cache_redis
def test_a_write_under_a_lowered_absolute_timeout_moves_the_index_score(
    engine, user_factory, settings
):
    user = user_factory()
    with time_machine.travel("2026-03-01 12:00:00+00:00", tick=False) as clock:
        device = Client()
        login(device, user)
        key_hash = tokens.hash_token(device.cookies[COOKIE].value)
        before = index_scores(engine, user)[key_hash]
        settings.SCS = {"ABSOLUTE_TIMEOUT": 600}
        clock.shift(60)
        assert device.get("/write/", {"value": "capped"}).status_code == 200
        after = index_scores(engine, user)[key_hash]
        stored = engine.store_class(device.cookies[COOKIE].value)
        stored.load()
        assert after == int(stored.absolute_expiry.timestamp() * 1000)
    assert after < before


@on_cache_redis
def test_user_sessions_leaves_out_a_session_past_its_deadline(
    engine, user_factory, settings
):
    settings.SCS = {"ABSOLUTE_TIMEOUT": 600}
    user = user_factory()
    with time_machine.travel("2026-03-01 12:00:00+00:00", tick=False) as clock:
        old = Client()
        login(old, user)
        clock.shift(300)
        young = Client()
        login(young, user)
        clock.shift(300)  # the first one is past its absolute deadline
        listed = engine.store_class.user_sessions(user.pk)
        assert [i.key_hash for i in listed] == [
            tokens.hash_token(young.cookies[COOKIE].value)
        ]
        assert index_members(engine, user) == {i.key_hash for i in listed}


@on_cache_redis
def test_revoke_user_ends_every_session_but_the_kept_one(engine, user_factory):
    user = user_factory()
    devices = [Client() for _ in range(3)]
    for device in devices:
        login(device, user)
    kept = tokens.hash_token(devices[0].cookies[COOKIE].value)
    assert engine.store_class.revoke_user(user.pk, keep_hash=kept) == 2
    assert devices[0].get("/read/").json()["user"] == str(user.pk)
    for device in devices[1:]:
        assert device.get("/read/").json()["user"] is None
    assert engine.stored.hashes() == {kept}
    assert [i.key_hash for i in engine.store_class.user_sessions(user.pk)] == [kept]


@on_cache_redis
def test_keys_carry_their_hash_tag_and_a_user_index_has_one(
    engine, client, user_factory
):
    # On a single server any renewed token will do; tests/test_redis_cluster.py
    # shows old and new key sharing a slot on a Cluster, where it matters.
    user = user_factory()
    prefix = caches["redis"].make_key("scs:")
    start_session(client)
    before = tokens.hash_token(client.cookies[COOKIE].value)
    login(client, user)  # renews
    after = tokens.hash_token(client.cookies[COOKIE].value)
    assert after != before
    old_key, new_key = engine.stored.key(before), engine.stored.key(after)
    assert new_key == f"{prefix}s:{{{after[:2]}}}{after[2:]}"
    assert old_key == f"{prefix}s:{{{before[:2]}}}{before[2:]}"
    index = [k.decode() for k in engine.redis().scan_iter(match=f"{prefix}u:*")]
    assert index == [f"{prefix}u:{{{user.pk}}}"]
    # An id with braces cannot move the tag: one tag, the whole id.
    odd = redis_sessions().user_key("a}b{c")
    assert odd.count("{") == odd.count("}") == 1
    assert odd.endswith("{a)b(c}")


# -- sync and async ------------------------------------------------------------------------


@on_cache_redis
def test_async_requests_and_store_methods_on_redis(engine, server, warm_scripts):
    client = AsyncClient()
    response = async_to_sync(client.get)("/async/write/", {"value": "from-async"})
    token = response.cookies[COOKIE].value
    with measured(engine, server) as traffic:
        response = async_to_sync(client.get)("/async/read/")
    assert response.json()["value"] == "from-async"
    assert COOKIE not in response.cookies
    assert traffic.redis_round_trips == 1
    assert server.commands == ["GET"]
    with measured(engine, server) as traffic:
        response = async_to_sync(client.get)("/async/write/", {"value": "again"})
    assert traffic.redis_round_trips == 2
    assert server.commands == ["GET", "EVALSHA"]
    renewed = async_to_sync(client.get)("/renew/").cookies[COOKIE].value
    assert renewed != token
    assert second_client(token).get("/read/").json()["value"] is None
    assert second_client(renewed).get("/read/").json()["value"] == "again"

    async def store_methods():
        store = engine.store_class(renewed)
        assert await store.aget("value") == "again"
        await store.aset("more", 1)
        await store.asave()
        await store.arenew_token()
        again = store.session_key
        assert not await store.aexists(renewed)
        assert await engine.store_class(again).aget("more") == 1
        await store.adelete()
        assert not await store.aexists(again)

    async_to_sync(store_methods)()
    assert engine.stored.hashes() == set()


@on_cache_redis
def test_scs_cleanup_prunes_dead_members_of_user_indexes(engine, user_factory):
    import io

    from django.core.management import call_command

    user = user_factory()
    laptop, phone = Client(), Client()
    login(laptop, user)
    login(phone, user)
    index = redis_sessions().user_key(user.pk)
    gone = tokens.hash_token(phone.cookies[COOKIE].value)
    engine.redis().delete(engine.stored.key(gone))  # as if Redis expired it
    assert engine.redis().zcard(index) == 2
    out = io.StringIO()
    call_command("scs_cleanup", stdout=out)
    assert "prunes the per-user indexes" in out.getvalue()
    members = {m.decode() for m in engine.redis().zrange(index, 0, -1)}
    assert members == {tokens.hash_token(laptop.cookies[COOKIE].value)}


# -- the stored value ----------------------------------------------------------------------


@on_redis_engines
def test_an_idle_touch_rewrites_only_the_two_times_in_place(
    engine, server, warm_scripts, client, settings
):
    settings.SCS = {"IDLE_TIMEOUT": 1800, "TOUCH_INTERVAL": 60}
    view = engine.stored if engine.kind == "cache" else engine.cached()
    with time_machine.travel("2026-03-01 12:00:00+00:00", tick=False) as clock:
        key_hash = tokens.hash_token(start_session(client))
        before = view.raw(key_hash)
        clock.shift(61)
        with server.count():
            assert client.get("/read/").json()["value"] == "cart"
        after = view.raw(key_hash)
    # SETRANGE over the header: the data is neither re-encoded nor re-sent.
    assert server.stats.get("setrange") == 1
    assert "set" not in server.stats
    assert after["seen_micros"] == before["seen_micros"] + 61_000_000
    assert after["expiry_micros"] == before["expiry_micros"] + 61_000_000
    unchanged = ("data", "version", "created_micros", "absolute_micros", "user")
    assert [after[f] for f in unchanged] == [before[f] for f in unchanged]


# -- the stored value, read without the engine's layout table -----------------------

# The header as the docstring of scs_django/backends/redis_layout.py documents
# it, written out by hand: the engine's table of fields is not used here.
DOCUMENTED_HEADER = re.compile(
    rb"s(?P<expiry>[0-9]{16})(?P<last_seen>[0-9]{16})(?P<version>[0-9]{16})"
    rb"(?P<created_at>[0-9]{16})(?P<absolute_expiry>[0-9]{16})"
    rb"(?P<user_length>[0-9]{6})(?P<client_length>[0-9]{6})"
)


def documented_fields(value, key_hash):
    """A session value split as documented: the 93-byte header, then the user
    id, the client metadata (JSON) and the envelope."""
    head = DOCUMENTED_HEADER.match(value)
    assert head is not None and head.end() == 93, value[:100]
    fields = {name: int(digits) for name, digits in head.groupdict().items()}
    user_end = 93 + fields.pop("user_length")
    client_end = user_end + fields.pop("client_length")
    fields["user"] = value[93:user_end].decode()
    fields["client"] = json.loads(value[user_end:client_end] or b"null")
    fields["envelope"] = codec.decode(value[client_end:], key_hash)
    return fields


@on_redis_engines
def test_a_stored_value_has_the_documented_layout(engine, user_factory, settings):
    settings.SCS = {
        "ABSOLUTE_TIMEOUT": 8 * 3600,
        "IDLE_TIMEOUT": 1800,
        "TOUCH_INTERVAL": 60,
        "RECORD_IP": True,
        "RECORD_USER_AGENT": True,
    }
    second, user = 1_000_000, user_factory()
    view = engine.stored if engine.kind == "cache" else engine.cached()
    client = Client(REMOTE_ADDR="203.0.113.77", HTTP_USER_AGENT="Firefox/140.0")

    def stored():
        key_hash = tokens.hash_token(client.cookies[COOKIE].value)
        return documented_fields(engine.redis().get(view.key(key_hash)), key_hash)

    with time_machine.travel("2026-03-01 12:00:00+00:00", tick=False) as clock:
        t0 = now_micros()
        assert login(client, user).status_code == 302  # a new session, renewed
        created = stored()
        assert created == {
            "expiry": t0 + 1800 * second,
            "last_seen": t0,
            "version": created["version"],
            "created_at": t0,
            "absolute_expiry": t0 + 8 * 3600 * second,
            "user": str(user.pk),
            "client": {"ip": "203.0.113.0", "ua": "Firefox/140.0"},
            "envelope": created["envelope"],
        }
        envelope = created["envelope"]
        assert (envelope.created, envelope.absolute) == (t0, t0 + 8 * 3600 * second)
        assert envelope.data["_auth_user_id"] == str(user.pk)

        clock.shift(10)  # a write: the update script
        client.get("/write/", {"value": "changed"})
        written = stored()
        assert written["version"] == created["version"] + 1
        assert written["last_seen"] == t0 + 10 * second
        assert written["expiry"] == t0 + 1810 * second
        assert written["envelope"].data["value"] == "changed"
        unchanged = ("created_at", "absolute_expiry", "user")
        assert [written[f] for f in unchanged] == [created[f] for f in unchanged]

        clock.shift(60)  # an idle touch: the bump script, in place
        assert client.get("/read/").json()["value"] == "changed"
        touched = stored()
        assert touched["last_seen"] == t0 + 70 * second
        assert touched["expiry"] == t0 + 1870 * second
        assert {**touched, "last_seen": 0, "expiry": 0} == {
            **written,
            "last_seen": 0,
            "expiry": 0,
        }


def test_the_layout_table_is_the_documented_one():
    # The docstring's table (offset, size), the fields it describes, and the
    # table the engine slices with and fills the Lua scripts from.
    rows = re.findall(r"^(\d+) +(\d+) +", redis_layout.__doc__, flags=re.MULTILINE)
    documented = [
        ("kind", 0, 1),
        ("expiry", 1, 16),
        ("last_seen", 17, 16),
        ("version", 33, 16),
        ("created_at", 49, 16),
        ("absolute_expiry", 65, 16),
        ("user_length", 81, 6),
        ("client_length", 87, 6),
    ]
    assert [(int(offset), int(size)) for offset, size in rows] == [
        (offset, size) for _name, offset, size in documented
    ]
    offset, table = 0, []
    for name, width in redis_layout.FIELDS:
        table.append((name, offset, width))
        offset += width
    assert table == documented
    assert redis_layout.HEAD == 93


def far_record(user_id, *, years=1, agent=""):
    now = datetime.now(dt_timezone.utc)
    later = now + timedelta(days=365 * years)
    return Record(
        payload=codec.encode(
            {"value": "far"},
            created=now_micros(),
            absolute=now_micros() + years * 365 * 86_400_000_000,
            key_hash="f" * 64,  # not opened by these tests
        ),
        created_at=now,
        absolute_expiry=later,
        expiry=later,
        last_seen=now,
        version=1,
        user_id=user_id,
        ip="203.0.113.0",
        user_agent=agent,
    )


@on_cache_redis
def test_listing_reads_a_user_id_longer_than_the_usual_header(engine):
    ops = redis_sessions()
    user_id = "u" * (LISTED + 100)  # a string primary key, absurdly long
    record = far_record(user_id, agent="agent")
    key_hash = tokens.hash_token(tokens.new_token())
    assert ops.insert(key_hash, record, record.last_seen)
    [listed] = RedisUsers(ops).user_sessions(user_id, record.last_seen)
    assert listed["key_hash"] == key_hash
    assert (listed["ip"], listed["user_agent"]) == ("203.0.113.0", "agent")
    assert engine.stored.get(key_hash)["user"] == user_id


@on_cache_redis
def test_a_deadline_past_the_header_width_is_stored_as_the_largest(engine):
    ops = redis_sessions()
    record = far_record(7, years=400)  # past the year 2286
    key_hash = tokens.hash_token(tokens.new_token())
    assert ops.insert(key_hash, record, record.last_seen)
    stored = engine.stored.get(key_hash)
    assert stored["absolute_micros"] == stored["expiry_micros"] == 10**16 - 1
    loaded = ops.fetch(key_hash, record.last_seen)
    assert loaded is not None and loaded.payload == record.payload
    assert ops.bump(key_hash, record.last_seen, record.expiry)


def head(kind=b"s", expiry=None, *, users=0, clients=0):
    now = now_micros()
    later = now + 3600 * 1_000_000 if expiry is None else expiry
    numbers = b"".join(b"%016d" % n for n in (later, now, 1, now, later))
    return kind + numbers + b"%06d%06d" % (users, clients)


MALFORMED_VALUES = {
    "empty": b"",
    "short": b"s123",
    "letters-in-the-header": b"s" + b"z" * 120,
    "tombstone": b"x",
    "other-kind": head(b"q") + b'{"c":1}',
    "expired": head(expiry=1) + b"data",
    "lengths-past-the-end": head(users=500, clients=500) + b"1",
    "client-metadata-not-json": head(users=1, clients=3) + b"1{{{" + b"data",
    "payload-not-an-envelope": head() + b"\x80\x04garbage",
}


@on_redis_engines
@pytest.mark.parametrize("value", list(MALFORMED_VALUES))
def test_a_malformed_value_is_no_session(engine, value, client):
    token = tokens.new_token()
    view = engine.stored if engine.kind == "cache" else engine.cached()
    engine.redis().set(view.key(tokens.hash_token(token)), MALFORMED_VALUES[value])
    client.cookies[COOKIE] = token
    response = client.get("/read/")
    assert response.status_code == 200
    assert response.json()["value"] is None
    assert response.cookies[COOKIE].value == ""  # cleared
    # A write starts a new session under a new token, never over the value.
    response = client.get("/write/", {"value": "fresh"})
    assert response.cookies[COOKIE].value not in ("", token)
    planted = engine.redis().get(view.key(tokens.hash_token(token)))
    assert planted == MALFORMED_VALUES[value]


@on_redis_engines
def test_a_hash_under_a_session_key_is_no_session(engine, client):
    token = tokens.new_token()
    view = engine.stored if engine.kind == "cache" else engine.cached()
    engine.redis().hset(view.key(tokens.hash_token(token)), mapping={"d": b"x"})
    client.cookies[COOKIE] = token
    response = client.get("/read/")
    assert response.status_code == 200
    assert response.json()["value"] is None


@on_cache_redis
def test_listing_drops_a_member_whose_key_holds_something_else(engine, user_factory):
    user = user_factory()
    devices = [Client(), Client()]
    for device in devices:
        login(device, user)
    kept, spoiled = (tokens.hash_token(d.cookies[COOKIE].value) for d in devices)
    key = engine.stored.key(spoiled)
    engine.redis().delete(key)
    engine.redis().hset(key, mapping={"d": b"not a session value"})
    listed = engine.store_class.user_sessions(user.pk)
    assert [i.key_hash for i in listed] == [kept]
    assert index_members(engine, user) == {kept}


@on_cached_db
@pytest.mark.parametrize("idle", [None, 600, 2 * 86400])
def test_a_cached_copy_lives_at_most_as_long_as_a_tombstone(
    engine, client, settings, idle
):
    # A copy refilled after its tombstone was lost, or one whose row was deleted
    # behind the engine's back, must not answer until the session expires.
    settings.SCS = {"ABSOLUTE_TIMEOUT": 14 * 86400, "IDLE_TIMEOUT": idle}
    # The TTL of every copy: the time left in the session, at most the cap.
    expected = min(cached_db.COPY_SECONDS, idle or 14 * 86400) * 1000

    def capped(key_hash):
        return expected - 2000 < cached.get(key_hash)["pttl"] <= expected

    key_hash = tokens.hash_token(start_session(client))  # insert, then put
    cached = engine.cached()
    assert capped(key_hash)
    # The copy still carries the session's own expiry.
    stored_expiry = engine.stored.get(key_hash)["expiry"]
    assert from_micros(cached.get(key_hash)["expiry_micros"]) == stored_expiry
    client.get("/write/", {"value": "changed"})  # update, then put
    assert capped(key_hash)
    with time_machine.travel(datetime.now(dt_timezone.utc) + timedelta(seconds=120)):
        client.get("/read/")  # a touch, with an idle timeout
    assert capped(key_hash)
    renewed = tokens.hash_token(client.get("/renew/").cookies[COOKIE].value)
    assert capped(renewed)
    # Without its copy, the session is read from the database and cached again.
    engine.redis().delete(cached.key(renewed))
    assert client.get("/read/").json()["value"] == "changed"
    assert capped(renewed)


def test_cached_copies_on_any_cache_are_capped_too():
    from django.core.cache.backends.locmem import LocMemCache

    cache = LocMemCache("capped", {})
    sessions = CacheSessions(cache, "scs:cdb:", longest_seconds=60)
    record = far_record(None)
    sessions.put("a" * 64, record, record.last_seen)
    key = cache.make_key(sessions.key("a" * 64))
    assert 0 < cache._expire_info[key] - time.time() <= 60
    uncapped = CacheSessions(cache, "scs:", None)
    uncapped.put("b" * 64, record, record.last_seen)
    left = cache._expire_info[cache.make_key(uncapped.key("b" * 64))] - time.time()
    assert left > 364 * 86400


# -- the write lock a losing writer takes ---------------------------------------------


def cart(engine):
    """A stored session holding ``{"value": "cart"}``."""
    store = engine.store_class()
    store["value"] = "cart"
    store.save()
    return store


@on_cache_redis
def test_no_writer_gets_past_the_lock_another_writer_holds(engine):
    # The guarantee that a locked write cannot lose: every other write of the
    # session, optimistic ones included, is refused while the lock is held.
    from django.utils import timezone

    store = cart(engine)
    store = engine.store_class(store.session_key)
    store.load()
    ops, key_hash, now = store._ops, store.key_hash, timezone.now()
    record = store._held.record({"value": "mine"}, now, store.state.client, key_hash)
    version = store._held.version
    holder = ops.lock(key_hash)
    assert ops.update(key_hash, record, now, version) is UpdateOutcome.STALE
    assert ops.bump(key_hash, now, record.expiry)  # a touch changes no data
    written = ops.write(key_hash, record, now, version, None, lock=holder)
    assert written is UpdateOutcome.WRITTEN
    ops.unlock(key_hash, holder)
    assert engine.redis().exists(ops.lock_key(key_hash)) == 0
    assert engine.store_class(store.session_key)["value"] == "mine"


@on_cache_redis
def test_a_lock_left_by_a_crashed_writer_only_delays_the_next(engine, monkeypatch):
    from django.utils import timezone

    store = cart(engine)
    ops = store._ops
    # A holder that never unlocks: its lock lapses after LOCK_MS.
    engine.redis().set(ops.lock_key(store.key_hash), "crashed", px=50)
    monkeypatch.setattr(scs_redis, "LOCK_WAIT_SECONDS", 5.0)
    latest = engine.store_class(store.session_key)
    latest.load()

    def apply(loaded):
        data = {"value": "after the crash"}
        client, key_hash = latest.state.client, latest.key_hash
        return latest._held.record(data, timezone.now(), client, key_hash)

    written = ops.update_locked(latest.key_hash, timezone.now(), None, apply)
    assert written is not None
    assert engine.store_class(store.session_key)["value"] == "after the crash"


@on_cache_redis
def test_a_lock_held_too_long_makes_the_store_unavailable(engine, monkeypatch):
    store = cart(engine)
    ops = store._ops
    engine.redis().set(ops.lock_key(store.key_hash), "stuck", px=60_000)
    monkeypatch.setattr(scs_redis, "LOCK_WAIT_SECONDS", 0.05)
    with pytest.raises(SessionStoreUnavailable):
        ops.lock(store.key_hash)


# -- commands sent on a pooled connection directly -----------------------------------

# What the connection of a direct command may raise (the client's fallback follows).
connection_faults = pytest.mark.parametrize(
    "fault",
    [
        redis.exceptions.ConnectionError("Connection reset by peer"),
        redis.exceptions.TimeoutError("Timeout on socket"),
        OSError("Broken pipe"),
    ],
    ids=["connection-error", "timeout", "os-error"],
)


def fail_once(monkeypatch, method, fault, when=lambda args: True):
    """Make ``Connection.<method>`` raise ``fault`` the first time ``when``
    holds for its arguments; the list it returns gets the failed socket."""
    real = getattr(redis.connection.Connection, method)
    failed: list[Any] = []

    def failing(connection, *args, **kwargs):
        if not failed and when(args):
            failed.append(connection._sock)
            raise fault
        return real(connection, *args, **kwargs)

    monkeypatch.setattr(redis.connection.Connection, method, failing)
    return failed


@on_cache_redis
@connection_faults
def test_a_read_whose_direct_get_fails_goes_through_the_client(
    engine, client, fault, monkeypatch
):
    # The fault is injected; the server, the key and the retried GET are real.
    start_session(client)
    sessions = redis_sessions()
    assert sessions.direct
    failed = fail_once(monkeypatch, "read_response", fault)
    with engine.traffic() as traffic:
        assert client.get("/read/").json()["value"] == "cart"
    # The failed connection was dropped: no connection still holds its socket.
    pool = sessions.client.connection_pool
    assert failed and failed[0].fileno() == -1
    assert all(c._sock is not failed[0] for c in pool._available_connections)
    # The direct GET, then the client's own GET.
    assert traffic.redis_round_trips == 2


@on_cache_redis
@connection_faults
def test_a_write_whose_direct_script_fails_to_send_goes_through_the_client(
    engine, warm_scripts, client, fault, monkeypatch
):
    # The fault is injected before the EVALSHA leaves; the server, the script
    # and the write through the client are real.
    start_session(client)
    sessions = redis_sessions()
    assert sessions.direct
    failed = fail_once(
        monkeypatch, "send_command", fault, when=lambda args: args[0] == "EVALSHA"
    )
    with engine.traffic() as traffic:
        assert client.get("/write/", {"value": "later"}).status_code == 200
    assert failed and failed[0].fileno() == -1  # that connection was dropped
    # The read's GET, the direct EVALSHA that failed, the client's EVALSHA.
    assert traffic.redis_round_trips == 3
    monkeypatch.undo()
    assert client.get("/read/").json()["value"] == "later"


@on_cache_redis
def test_a_read_that_finds_another_type_under_the_key_is_no_session(engine, client):
    token = start_session(client)
    key = engine.stored.key(tokens.hash_token(token))
    engine.redis().delete(key)
    engine.redis().rpush(key, "not a session")
    assert client.get("/read/").json()["value"] is None
    assert engine.redis().type(key) == b"list"  # left alone, never decoded


def test_a_read_from_a_redis_that_refuses_raises_the_clients_error():
    # Both the direct GET and the client's own (with its retries) are refused.
    with closed_port() as refused:
        client = redis.Redis(host="127.0.0.1", port=refused, socket_connect_timeout=1)
        sessions = scs_redis.RedisSessions(client, "scs:")
        assert sessions.direct
        with pytest.raises(redis.exceptions.ConnectionError):
            sessions.fetch(
                tokens.hash_token(tokens.new_token()), datetime.now(dt_timezone.utc)
            )
