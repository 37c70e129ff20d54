"""The session engines the shared tests run on, and ways to look inside them.

tests/conftest.py's ``engine`` fixture runs a test once per entry of
:data:`ENGINES`. Each engine comes with a view of what it stored
(``engine.stored``: database rows, Redis values or cache entries, all with the
same ``hashes()`` / ``get()`` shape) and a counter of the traffic a block of
code sends to it (``engine.traffic()``).

A cache forgets a session when its TTL runs out. The engines set that TTL
from the application's clock, which time-machine moves but the Redis server's
clock does not, so the cache views treat an entry whose stored expiry has
passed (by the application's clock) as gone, as the store would. That the
real TTL matches the stored expiry is asserted in tests/test_redis.py.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from importlib import import_module
from typing import Any
from unittest import mock

import redis
from django.core.cache import caches
from django.core.cache.backends.locmem import LocMemCache
from django.core.signals import setting_changed
from django.db import DEFAULT_DB_ALIAS, connections
from django.test.utils import CaptureQueriesContext

from scs_django.backends import redis as scs_redis
from tests.routers import use_database

SESSION_PREFIX = "scs:"  # scs_django.backends.cache
CACHED_DB_PREFIX = "scs:cdb:"  # scs_django.backends.cached_db

_EPOCH = datetime(1970, 1, 1, tzinfo=dt_timezone.utc)
_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True)
class EngineSpec:
    module: str  # SESSION_ENGINE
    database: str  # the alias every query is pinned to
    cache: str | None = None  # SCS["CACHE_ALIAS"], for the engines that use one


ENGINES = {
    "db-postgresql": EngineSpec("scs_django.backends.db", DEFAULT_DB_ALIAS),
    "db-sqlite": EngineSpec("scs_django.backends.db", "sqlite"),
    "db-mariadb": EngineSpec("scs_django.backends.db", "mariadb"),
    "cache-redis": EngineSpec("scs_django.backends.cache", DEFAULT_DB_ALIAS, "redis"),
    "cache-locmem": EngineSpec("scs_django.backends.cache", DEFAULT_DB_ALIAS, "locmem"),
    "cached_db-redis": EngineSpec(
        "scs_django.backends.cached_db", DEFAULT_DB_ALIAS, "redis"
    ),
}
DB_ENGINES = [name for name in ENGINES if name.startswith("db-")]
REDIS_ENGINES = [name for name, spec in ENGINES.items() if spec.cache == "redis"]


def now_micros() -> int:
    """The application's clock (time-machine's, in tests), in epoch microseconds."""
    return (datetime.now(dt_timezone.utc) - _EPOCH) // _MICROSECOND


def from_micros(value: int | bytes) -> datetime:
    return _EPOCH + int(value) * _MICROSECOND


# -- what an engine stored ---------------------------------------------------------


class DatabaseRows:
    """What the db engine stored, read straight from its table."""

    def __init__(self, store_class: Any) -> None:
        self.model = store_class.get_model_class()

    def get(self, key_hash: str | None) -> dict[str, Any] | None:
        """Every column of the row stored under ``key_hash``, or None."""
        row = self.model.objects.filter(key_hash=key_hash).values().first()
        if row is not None and row["data"] is not None:
            row["data"] = bytes(row["data"])
        return row

    def hashes(self) -> set[str]:
        """The token hashes of every stored row, live or expired."""
        return set(self.model.objects.values_list("key_hash", flat=True))


def parse_redis_value(value: bytes | None) -> dict[str, Any] | None:
    """A Redis session value split by the layout documented in
    scs_django/backends/redis_layout.py, written out again here so that the tests check it.
    None for a missing key; ``{"tombstone": True}`` for a tombstone; a renewal's
    forward and a cached_db write marker have ``kind`` "forward" and "pending"."""
    if value is None:
        return None
    if value == b"x":
        return {"tombstone": True, "kind": "tombstone"}
    if value[:1] == b"r":
        assert re.fullmatch(rb"r[0-9a-f]{64}", value), value[:100]
        return {"tombstone": False, "kind": "forward", "to": value[1:].decode()}
    if value[:1] == b"p":
        assert re.fullmatch(rb"p0{32}[0-9]{16}", value), value[:100]
        return {"tombstone": False, "kind": "pending", "version": int(value[33:])}
    assert value[:1] == b"s", value[:100]
    numbers = [int(value[i : i + 16]) for i in (1, 17, 33, 49, 65)]
    users, clients = int(value[81:87]), int(value[87:93])
    user = value[93 : 93 + users].decode()
    client = json.loads(value[93 + users : 93 + users + clients] or b"{}")
    return {
        "tombstone": False,
        "kind": "session",
        "expiry_micros": numbers[0],
        "seen_micros": numbers[1],
        "version": numbers[2],
        "created_micros": numbers[3],
        "absolute_micros": numbers[4],
        "user": user,
        "ip": client.get("ip"),
        "user_agent": client.get("ua", ""),
        "data": value[93 + users + clients :],
    }


class RedisValues:
    """The Redis strings of the native path, under ``<prefix>s:{<tag>}<rest>``.

    ``get()`` returns the fields of the value (see :func:`parse_redis_value`)
    plus the key, its PTTL, and the columns the database view has:
    ``key_hash``, ``data``, ``version``, ``expiry``, ``last_seen``,
    ``user_id``.
    """

    def __init__(self, client: Any, prefix: str) -> None:
        self.client = client
        self.prefix = prefix  # as the cache made it, e.g. ":1:scs:"
        self.key_re = re.compile(
            re.escape(prefix) + r"s:\{(?P<tag>[0-9a-f]{2})\}(?P<rest>[0-9a-f]{62})"
        )

    def key(self, key_hash: str) -> str:
        return f"{self.prefix}s:{{{key_hash[:2]}}}{key_hash[2:]}"

    def keys(self) -> dict[str, str]:
        """Every key under ``<prefix>s:``, by the token hash it encodes.

        Fails on a key of any other shape: the engine writes no other.
        """
        found = {}
        for raw in self.client.scan_iter(match=f"{self.prefix}s:*", count=1000):
            key = raw.decode()
            match = self.key_re.fullmatch(key)
            assert match, f"unexpected key {key!r}"
            found[match["tag"] + match["rest"]] = key
        return found

    def raw(self, key_hash: str) -> dict[str, Any] | None:
        """The value as stored, tombstones and expired copies included."""
        return parse_redis_value(self.client.get(self.key(key_hash)))

    def get(self, key_hash: str | None) -> dict[str, Any] | None:
        """The live session stored under ``key_hash``, or None."""
        if key_hash is None:
            return None
        fields = self.raw(key_hash)
        if (
            fields is None
            or fields["kind"] != "session"
            or fields["expiry_micros"] <= now_micros()
        ):
            return None
        return {
            **fields,
            "key": self.key(key_hash),
            "pttl": self.client.pttl(self.key(key_hash)),
            "key_hash": key_hash,
            "expiry": from_micros(fields["expiry_micros"]),
            "last_seen": from_micros(fields["seen_micros"]),
            "user_id": fields["user"] or None,
        }

    def _states(self) -> dict[str, dict[str, Any] | None]:
        keys = self.keys()
        pipe = self.client.pipeline(transaction=False)
        for key in keys.values():
            pipe.get(key)
        return {
            key_hash: parse_redis_value(value)
            for key_hash, value in zip(keys, pipe.execute(), strict=True)
        }

    def hashes(self) -> set[str]:
        """The token hashes of every live session (tombstones left out)."""
        now = now_micros()
        return {
            key_hash
            for key_hash, state in self._states().items()
            if state is not None
            and state["kind"] == "session"
            and state["expiry_micros"] > now
        }

    def tombstones(self) -> set[str]:
        """The token hashes a cached_db tombstone keeps from being cached."""
        return {
            key_hash
            for key_hash, state in self._states().items()
            if state is not None and state["tombstone"]
        }


class CacheEntries:
    """The entries of the generic cache path (``CacheSessions``) in a LocMem cache.

    LocMem keeps its entries in ``_cache``; listing them is the only use of
    that private dict, and values are read through the cache API.
    """

    def __init__(self, cache: LocMemCache, prefix: str) -> None:
        self.cache = cache
        self.prefix = prefix

    def get(self, key_hash: str | None) -> dict[str, Any] | None:
        """The live session stored under ``key_hash``, or None."""
        if key_hash is None:
            return None
        blob = self.cache.get(f"{self.prefix}s:{key_hash}")
        if not isinstance(blob, bytes) or b"\n" not in blob:
            return None  # missing, or a tombstone
        header, _, payload = blob.partition(b"\n")
        seen, expiry, version, user = json.loads(header)
        if expiry <= now_micros():
            return None
        return {
            "key_hash": key_hash,
            "raw": blob,
            "data": payload,
            "version": version,
            "expiry": from_micros(expiry),
            "last_seen": from_micros(seen),
            "user_id": user or None,
        }

    def hashes(self) -> set[str]:
        made = self.cache.make_key(f"{self.prefix}s:")
        candidates = [
            k[len(made) :] for k in list(self.cache._cache) if k.startswith(made)
        ]
        return {key_hash for key_hash in candidates if self.get(key_hash) is not None}


# -- traffic -------------------------------------------------------------------------


def _counting(cls: type, name: str) -> Any:
    # autospec keeps ``self`` in the call, so the real method runs unchanged.
    return mock.patch.object(cls, name, autospec=True, side_effect=getattr(cls, name))


@dataclass
class Traffic:
    """What a block sent to the stores: SQL statements on the pinned database,
    Redis round trips (one per command, one per pipeline) and LocMem calls."""

    sql: CaptureQueriesContext
    redis_mocks: list[Any] = field(default_factory=list)
    cache_mocks: list[Any] = field(default_factory=list)

    @property
    def queries(self) -> list[dict[str, str]]:
        return self.sql.captured_queries

    @property
    def redis_round_trips(self) -> int:
        return sum(m.call_count for m in self.redis_mocks)

    @property
    def cache_calls(self) -> int:
        return sum(m.call_count for m in self.cache_mocks)

    def __repr__(self) -> str:
        return (
            f"<Traffic sql={len(self.queries)} redis={self.redis_round_trips} "
            f"cache={self.cache_calls}>"
        )


@contextmanager
def store_traffic(alias: str) -> Iterator[Traffic]:
    """Count what the block sends to the database ``alias``, Redis and LocMem."""
    with ExitStack() as stack:
        traffic = Traffic(
            stack.enter_context(CaptureQueriesContext(connections[alias]))
        )
        traffic.redis_mocks = [
            stack.enter_context(_counting(redis.client.Redis, "execute_command")),
            stack.enter_context(_counting(redis.client.Pipeline, "execute")),
            # The read's GET and lone scripts, sent on a pooled connection.
            stack.enter_context(_counting(scs_redis, "direct")),
        ]
        traffic.cache_mocks = [
            stack.enter_context(_counting(LocMemCache, name))
            for name in ("get", "set", "add", "delete", "touch", "has_key")
        ]
        yield traffic


# -- the engine under test -------------------------------------------------------------


@dataclass
class Engine:
    """One session engine, set up for a test by :func:`use_engine`."""

    id: str
    spec: EngineSpec
    store_class: Any
    stored: Any  # DatabaseRows, RedisValues or CacheEntries: the store of record

    @property
    def alias(self) -> str:
        """The database alias every query goes to."""
        return self.spec.database

    @property
    def cache_alias(self) -> str | None:
        return self.spec.cache

    @property
    def kind(self) -> str:
        """The engine module's name: db, cache or cached_db."""
        return self.spec.module.rsplit(".", 1)[1]

    @property
    def on_redis(self) -> bool:
        return self.spec.cache == "redis"

    def redis(self) -> Any:
        """The raw redis-py client behind the engine's cache."""
        from django_redis import get_redis_connection

        return get_redis_connection(self.spec.cache)

    def cached(self) -> RedisValues:
        """cached_db on Redis: the copies kept in front of the database."""
        return RedisValues(self.redis(), caches["redis"].make_key(CACHED_DB_PREFIX))

    def traffic(self) -> Any:
        return store_traffic(self.alias)

    @contextmanager
    def no_traffic(self) -> Iterator[Traffic]:
        """Assert that the block sends nothing to any store."""
        with self.traffic() as traffic:
            yield traffic
        assert traffic.queries == [], traffic.queries
        assert traffic.redis_round_trips == 0, traffic
        assert traffic.cache_calls == 0, traffic


def _view(spec: EngineSpec, store_class: Any) -> Any:
    if spec.cache is None or spec.module.endswith(".cached_db"):
        return DatabaseRows(store_class)
    if spec.cache == "redis":
        from django_redis import get_redis_connection

        return RedisValues(
            get_redis_connection("redis"), caches["redis"].make_key(SESSION_PREFIX)
        )
    return CacheEntries(caches[spec.cache], SESSION_PREFIX)


def reset_caches(spec: EngineSpec) -> None:
    """Empty the caches a test may have filled (Redis is not rolled back).

    The shared Redis is reached by its URL, not by the "redis" alias, which a
    failing test may have left pointing elsewhere.
    """
    from django.conf import settings

    for alias in ("default", "locmem"):
        if alias in settings.CACHES:
            caches[alias].clear()
    if spec.cache == "redis":
        with redis.Redis.from_url(settings.TEST_REDIS_URL) as client:
            client.flushdb()


@contextmanager
def keep_scs(settings: Any, **defaults: Any) -> Iterator[None]:
    """Set ``defaults`` in ``settings.SCS`` and keep them there when a test
    replaces ``SCS`` (``settings.SCS = {...}``, ``override_settings``), unless
    it names them itself."""
    from django.conf import settings as django_settings

    def fill(*, setting: str, value: Any, enter: bool, **kwargs: Any) -> None:
        if setting == "SCS" and enter and isinstance(value, dict):
            missing = {k: v for k, v in defaults.items() if k not in value}
            if missing:
                # Into the override's own settings holder: the test's dict is
                # left alone, and the override's end restores what was there.
                django_settings.SCS = {**value, **missing}

    settings.SCS = {**(getattr(settings, "SCS", None) or {}), **defaults}
    setting_changed.connect(fill, weak=False, dispatch_uid="tests.engines.keep_scs")
    try:
        yield
    finally:
        setting_changed.disconnect(dispatch_uid="tests.engines.keep_scs")


@contextmanager
def use_engine(name: str, settings: Any) -> Iterator[Engine]:
    """Make ``name`` (a key of :data:`ENGINES`) the session engine in the block.

    ``settings`` is pytest-django's fixture, which undoes the changes.
    """
    spec = ENGINES[name]
    settings.SESSION_ENGINE = spec.module
    store_class = import_module(spec.module).SessionStore
    with ExitStack() as stack:
        stack.enter_context(use_database(spec.database))
        if spec.cache is not None:
            stack.enter_context(keep_scs(settings, CACHE_ALIAS=spec.cache))
        reset_caches(spec)
        stack.callback(reset_caches, spec)
        if spec.module == "scs_django.backends.cached_db":
            stack.enter_context(
                mock.patch(
                    "scs_django.backends.cached_db.in_transaction",
                    in_transaction_outside_the_test,
                    create=True,  # so that these tests run on older code too
                )
            )
        yield Engine(name, spec, store_class, _view(spec, store_class))


def in_transaction_outside_the_test(using: str) -> bool:
    """cached_db's ``in_transaction``, with the transaction each test runs in
    (and rolls back at its end) taken for autocommit, as a request sees it in
    production; transactions the code under test opens still count."""
    return any(not block._from_testcase for block in connections[using].atomic_blocks)
