"""Sessions in a Django cache: ``SESSION_ENGINE = "scs_django.backends.cache"``.

On django-redis the engine talks to Redis through its native client (see
:mod:`scs_django.backends.redis`): raw bytes, conditional Lua writes, atomic renewal and
a per-user index. Any other cache (LocMem, Memcached, files, database) goes
through Django's cache API with weaker guarantees: changes are serialized by
``cache.add`` locks (atomic on Memcached, Redis and LocMem, not on files) that
a writer slower than their timeout can outlive, there is no per-user listing,
and a renewal is two steps.
"""

from __future__ import annotations

import json
import math
import re
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, cast

from django.contrib.sessions.backends.base import CreateError
from django.core.cache import caches
from django.utils import timezone
from django.utils.functional import cached_property

from .. import conf
from ..lifetime import from_micros
from ..lifetime import to_micros as micros
from .base import Loaded, Record, ScsSessionStore, SessionInfo, wait_for_lock

try:
    from django_redis.cache import RedisCache as _DjangoRedisCache
    from redis import exceptions as _redis

    # Errors that mean Redis cannot do it now, not that the request is wrong:
    # unreachable, timing out, loading, out of memory, a read-only replica
    # after a failover, a cluster without a master for the slot.
    REDIS_UNAVAILABLE: tuple[type[BaseException], ...] = (
        _redis.ConnectionError,
        _redis.TimeoutError,
        _redis.OutOfMemoryError,
        _redis.ReadOnlyError,
        _redis.NoScriptError,
        _redis.TryAgainError,
        _redis.ClusterError,
        _redis.RedisClusterException,
    )
    _RESPONSE_ERROR: type[BaseException] | None = _redis.ResponseError
except ImportError:  # pragma: no cover - django-redis is an optional extra
    _DjangoRedisCache = None
    REDIS_UNAVAILABLE = ()
    _RESPONSE_ERROR = None

# Error replies of the same kind that redis-py raises as a plain ResponseError;
# in a pipeline the reply comes after "Command # n (...) of pipeline caused
# error: ".
_UNAVAILABLE_REPLY = re.compile(
    r"(?:^|error: )(?:OOM|READONLY|NOSCRIPT|LOADING|MASTERDOWN|CLUSTERDOWN|"
    r"TRYAGAIN|BUSY|MISCONF|NOREPLICAS)\b"
)


def redis_unavailable(exc: BaseException) -> bool:
    """True when ``exc`` from redis-py means Redis cannot serve the request now."""
    if isinstance(exc, REDIS_UNAVAILABLE):
        return True
    return (
        _RESPONSE_ERROR is not None
        and isinstance(exc, _RESPONSE_ERROR)
        and _UNAVAILABLE_REPLY.search(str(exc)) is not None
    )


TOMBSTONE = b"x"
# A tombstone outlives any request that read the session before it ended.
TOMBSTONE_SECONDS = 3600
# See CacheSessions.mark.
PENDING = b"p:"
# A lock on one session (CacheSessions): held for a read and a write; the
# timeout only frees the lock of a crashed holder.
LOCK_SECONDS = 5
LOCK_WAIT_SECONDS = 10.0


def is_native_redis(cache: Any) -> bool:
    """True when ``cache`` is a django-redis cache the native path can use."""
    return _DjangoRedisCache is not None and isinstance(cache, _DjangoRedisCache)


def redis_sessions(
    alias: str | None = None,
    prefix: str = "scs:",
    longest_seconds: int | None = None,
) -> Any:
    """The native Redis operations (:class:`scs_django.backends.redis.RedisSessions`)
    behind the cache named ``alias``; keys live at most ``longest_seconds``
    when given."""
    from django_redis import get_redis_connection

    from .redis import RedisSessions

    alias = alias or conf.get("CACHE_ALIAS")
    return RedisSessions(
        get_redis_connection(alias), caches[alias].make_key(prefix), longest_seconds
    )


# Native operations per (alias, prefix, cap): a redis-py client is thread-safe
# and django-redis shares its connection pools process-wide anyway, so one
# object serves every request. Other caches get a cache object per thread, as
# Django hands them out (a memcached client, for one, is not thread-safe).
_native: dict[tuple[str, str, int | None], Any] = {}


def cache_sessions(prefix: str = "scs:", longest_seconds: int | None = None) -> Any:
    """Session operations on the configured cache, native on django-redis.

    ``longest_seconds`` caps how long an entry is kept (copies in front of a
    database); by default an entry lives until the session expires."""
    alias = conf.get("CACHE_ALIAS")
    key = (alias, prefix, longest_seconds)
    found = _native.get(key)
    if found is not None:
        return found
    cache = caches[alias]
    if is_native_redis(cache):
        found = _native[key] = redis_sessions(alias, prefix, longest_seconds)
        return found
    return CacheSessions(cache, prefix, longest_seconds)


conf.reset_on_change(("CACHES", "SCS"), _native.clear)


class CacheSessions:
    """Session operations through Django's cache API.

    The API has no conditional write, so every change of a stored session
    (update, touch, removal) runs under a per-session lock made with
    ``cache.add``, which is atomic on Memcached, Redis and the local-memory
    cache (not on the file cache).
    """

    def __init__(
        self, cache: Any, prefix: str = "scs:", longest_seconds: int | None = None
    ) -> None:
        self.cache = cache
        self.prefix = prefix
        self.longest_seconds = longest_seconds

    def key(self, key_hash: str) -> str:
        return f"{self.prefix}s:{key_hash}"

    @contextmanager
    def _locked(self, key_hash: str) -> Iterator[None]:
        key, token = f"{self.prefix}l:{key_hash}", secrets.token_hex(8)
        wait_for_lock(
            lambda: bool(self.cache.add(key, token, LOCK_SECONDS)), LOCK_WAIT_SECONDS
        )
        try:
            yield
        finally:
            # Not atomic through this API: a holder that outlived its lock could
            # free the next holder's. LOCK_SECONDS makes that a crash, not a race.
            if self.cache.get(key) == token:
                self.cache.delete(key)

    @staticmethod
    def _pack(record: Record) -> bytes:
        header = [
            micros(record.last_seen),
            micros(record.expiry),
            record.version,
            "" if record.user_id is None else str(record.user_id),
        ]
        return json.dumps(header).encode() + b"\n" + record.payload

    @staticmethod
    def _unpack(blob: Any) -> tuple[int, int, int, bytes] | None:
        if not isinstance(blob, bytes):
            return None
        header, sep, payload = blob.partition(b"\n")
        try:
            seen, expiry, version, _user = json.loads(header)
            return int(seen), int(expiry), int(version), payload
        except (ValueError, TypeError):
            return None

    def _timeout(self, expiry: datetime, now: datetime) -> int:
        timeout = max(1, math.ceil((expiry - now).total_seconds()))
        if self.longest_seconds is None:
            return timeout
        return min(timeout, self.longest_seconds)

    def _live(self, key_hash: str, now: datetime) -> tuple[int, int, int, bytes] | None:
        found = self._unpack(self.cache.get(self.key(key_hash)))
        if found is None or found[1] <= micros(now):
            return None
        return found

    def fetch(self, key_hash: str, now: datetime) -> Loaded | None:
        found = self._live(key_hash, now)
        if found is None:
            return None
        seen, _expiry, version, payload = found
        return Loaded(payload, from_micros(seen, conf.use_tz()), version)

    def insert(self, key_hash: str, record: Record) -> bool:
        timeout = self._timeout(record.expiry, record.last_seen)
        return bool(self.cache.add(self.key(key_hash), self._pack(record), timeout))

    def _replace(
        self, key_hash: str, record: Record, now: datetime, new_hash: str | None
    ) -> int:
        timeout = self._timeout(record.expiry, now)
        if new_hash is None:
            self.cache.set(self.key(key_hash), self._pack(record), timeout)
            return 1
        if not self.cache.add(self.key(new_hash), self._pack(record), timeout):
            return -1
        self.cache.delete(self.key(key_hash))
        return 1

    def update(
        self,
        key_hash: str,
        record: Record,
        now: datetime,
        version: int | None,
        new_hash: str | None,
    ) -> int:
        """1 written, 0 gone or at another version, -1 ``new_hash`` taken."""
        with self._locked(key_hash):
            found = self._live(key_hash, now)
            if found is None or (version is not None and found[2] != version):
                return 0
            return self._replace(key_hash, record, now, new_hash)

    def update_locked(
        self,
        key_hash: str,
        now: datetime,
        new_hash: str | None,
        apply: Callable[[Loaded], Record | None],
    ) -> Record | int | None:
        """Under the session's lock: read the latest, write ``apply(latest)``;
        the record, None when the session is gone, -1 when ``new_hash`` is taken."""
        with self._locked(key_hash):
            latest = self.fetch(key_hash, now)
            if latest is None:
                return None
            record = apply(latest)
            if record is None:
                return None
            if self._replace(key_hash, record, now, new_hash) == -1:
                return -1
            return record

    def bump(self, key_hash: str, now: datetime, expiry: datetime) -> bool:
        with self._locked(key_hash):
            blob = self.cache.get(self.key(key_hash))
            found = self._unpack(blob)
            if found is None or found[1] <= micros(now):
                return False
            header, _, payload = blob.partition(b"\n")
            _seen, _expiry, version, user = json.loads(header)
            repacked = json.dumps([micros(now), micros(expiry), version, user])
            self.cache.set(
                self.key(key_hash),
                repacked.encode() + b"\n" + payload,
                self._timeout(expiry, now),
            )
            return True

    def remove(self, key_hash: str) -> None:
        with self._locked(key_hash):
            self.cache.delete(self.key(key_hash))

    def _newer(self, current: Any, version: int) -> bool:
        if isinstance(current, bytes) and current.startswith(PENDING):
            try:
                return int(current[len(PENDING) :]) > version
            except ValueError:
                return False
        found = self._unpack(current)
        return found is not None and found[2] > version

    def put(self, key_hash: str, record: Record, now: datetime) -> None:
        current = self.cache.get(self.key(key_hash))
        if current == TOMBSTONE or self._newer(current, record.version):
            return
        self.cache.set(
            self.key(key_hash), self._pack(record), self._timeout(record.expiry, now)
        )

    def mark(self, key_hash: str, version: int, seconds: int) -> None:
        """Before ``version`` is written to the database: drop the copy and
        stop older copies from being cached (see RedisSessions.mark)."""
        current = self.cache.get(self.key(key_hash))
        if current == TOMBSTONE or self._newer(current, version - 1):
            return
        self.cache.set(self.key(key_hash), PENDING + b"%d" % version, seconds)

    def bury(self, key_hashes: Any, seconds: int) -> None:
        for key_hash in key_hashes:
            self.cache.set(self.key(key_hash), TOMBSTONE, seconds)


class SessionStore(ScsSessionStore):
    """Cache session engine: ``SESSION_ENGINE = "scs_django.backends.cache"``."""

    @classmethod
    def is_unavailable(cls, exc: BaseException) -> bool:
        return redis_unavailable(exc)

    @cached_property
    def _ops(self) -> Any:
        return cache_sessions()

    @property
    def _native(self) -> bool:
        return not isinstance(self._ops, CacheSessions)

    def _renewal_token(self, old_hash: str) -> tuple[str, str]:
        if self._native and self._ops.cluster:
            token: tuple[str, str] = self._ops.same_slot_token(old_hash)
            return token
        return super()._renewal_token(old_hash)

    def _fetch(self, key_hash: str, now: datetime) -> Loaded | None:
        loaded: Loaded | None = self._ops.fetch(key_hash, now)
        return loaded

    def _insert(self, key_hash: str, record: Record) -> bool:
        inserted: bool
        if self._native:
            inserted = self._ops.insert(key_hash, record, record.last_seen)
        else:
            inserted = self._ops.insert(key_hash, record)
        return inserted

    def _update(
        self,
        key_hash: str,
        record: Record,
        now: datetime,
        version: int | None,
        new_hash: str | None = None,
    ) -> bool:
        result: int = self._ops.update(key_hash, record, now, version, new_hash)
        if result == -1:
            raise CreateError
        return result == 1

    def _update_locked(
        self,
        key_hash: str,
        now: datetime,
        new_hash: str | None,
        apply: Callable[[Loaded], Record | None],
    ) -> Record | None:
        result: Record | None | int = self._ops.update_locked(
            key_hash, now, new_hash, apply
        )
        if result == -1:
            raise CreateError
        return cast("Record | None", result)

    def _bump(self, key_hash: str, now: datetime, expiry: datetime) -> bool:
        bumped: bool = self._ops.bump(key_hash, now, expiry)
        return bumped

    def _remove(self, key_hash: str) -> None:
        self._ops.remove(key_hash)

    # -- a user's sessions ------------------------------------------------------

    @classmethod
    def _redis_or_fail(cls) -> Any:
        if not is_native_redis(caches[conf.get("CACHE_ALIAS")]):
            raise NotImplementedError(
                "Listing and revoking a user's sessions needs the cache engine on "
                "django-redis (or the db / cached_db engine)."
            )
        return redis_sessions()

    @classmethod
    def user_sessions(cls, user_id: Any) -> list[SessionInfo]:
        """The live sessions of ``user_id``, through the per-user index."""
        with cls.guard():
            rows = cls._redis_or_fail().user_sessions(user_id, timezone.now())
        use_tz = conf.use_tz()
        return [
            SessionInfo(
                key_hash=row["key_hash"],
                user_id=user_id,
                created_at=from_micros(row["created_at"], use_tz),
                last_seen=from_micros(row["last_seen"], use_tz),
                expiry=from_micros(row["expiry"], use_tz),
                absolute_expiry=from_micros(row["absolute_expiry"], use_tz),
                ip=row["ip"],
                user_agent=row["user_agent"],
            )
            for row in rows
        ]

    @classmethod
    def revoke_keys(cls, key_hashes: Any) -> int:
        """End the sessions stored under ``key_hashes``; returns how many existed."""
        with cls.guard():
            count: int = cls._redis_or_fail().revoke(list(key_hashes))
            return count

    @classmethod
    def revoke_user(cls, user_id: Any, keep_hash: str | None = None) -> int:
        """End every session of ``user_id`` but ``keep_hash``'s, including one
        renewed while this runs (see :meth:`RedisSessions.revoke`)."""
        with cls.guard():
            count: int = cls._redis_or_fail().revoke_user(user_id, keep_hash)
            return count

    @classmethod
    def clear_expired(cls) -> None:
        """Redis expires sessions itself; this drops dead members of user indexes."""
        if is_native_redis(caches[conf.get("CACHE_ALIAS")]):
            with cls.guard():
                redis_sessions().prune_indexes(timezone.now())
