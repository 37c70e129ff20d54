"""Sessions in a Django cache: ``SESSION_ENGINE = "scs_django.backends.cache"``.

On django-redis the engine talks to Redis through its native client (see
:mod:`scs_django.redis`): raw bytes, conditional Lua writes, atomic renewal and
a per-user index. Any other cache (LocMem, Memcached, files, database) goes
through Django's cache API with weaker guarantees: a logout racing a write in
flight can be undone, there is no per-user listing, and a renewal is two steps.
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import Any

from django.core.cache import caches
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils import timezone
from django.utils.functional import cached_property

from .. import conf
from .base import (
    Loaded,
    Record,
    ScsSessionStore,
    SessionInfo,
    _from_micros,
)
from .base import (
    _to_micros as micros,
)

try:
    from django_redis.cache import RedisCache as _DjangoRedisCache
    from redis.exceptions import ConnectionError as _RedisConnectionError
    from redis.exceptions import TimeoutError as _RedisTimeoutError

    _REDIS_ERRORS: tuple[type[BaseException], ...] = (
        _RedisConnectionError,
        _RedisTimeoutError,
    )
except ImportError:  # pragma: no cover - django-redis is an optional extra
    _DjangoRedisCache = None
    _REDIS_ERRORS = ()


TOMBSTONE = b"x"
# A tombstone outlives any request that read the session before it ended.
TOMBSTONE_SECONDS = 3600


def is_native_redis(cache: Any) -> bool:
    """True when ``cache`` is a django-redis cache the native path can use."""
    return _DjangoRedisCache is not None and isinstance(cache, _DjangoRedisCache)


def redis_sessions(
    alias: str | None = None,
    prefix: str = "scs:",
    longest_seconds: int | None = None,
) -> Any:
    """The native Redis operations (:class:`scs_django.redis.RedisSessions`)
    behind the cache named ``alias``; keys live at most ``longest_seconds``
    when given."""
    from django_redis import get_redis_connection

    from ..redis import RedisSessions

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


@receiver(setting_changed)
def _reset(*, setting: str, **kwargs: Any) -> None:
    if setting in ("CACHES", "SCS"):
        _native.clear()


class CacheSessions:
    """Session operations through Django's cache API (no atomic conditions)."""

    def __init__(
        self, cache: Any, prefix: str = "scs:", longest_seconds: int | None = None
    ) -> None:
        self.cache = cache
        self.prefix = prefix
        self.longest_seconds = longest_seconds

    def key(self, key_hash: str) -> str:
        return f"{self.prefix}s:{key_hash}"

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
        return Loaded(payload, _from_micros(seen), version)

    def insert(self, key_hash: str, record: Record) -> bool:
        timeout = self._timeout(record.expiry, record.last_seen)
        return bool(self.cache.add(self.key(key_hash), self._pack(record), timeout))

    def update(
        self,
        key_hash: str,
        record: Record,
        now: datetime,
        version: int | None,
        new_hash: str | None,
    ) -> int:
        found = self._live(key_hash, now)
        if found is None or (version is not None and found[2] != version):
            return 0
        timeout = self._timeout(record.expiry, now)
        if new_hash is None:
            self.cache.set(self.key(key_hash), self._pack(record), timeout)
            return 1
        if not self.cache.add(self.key(new_hash), self._pack(record), timeout):
            return -1
        self.cache.delete(self.key(key_hash))
        return 1

    def bump(self, key_hash: str, now: datetime, expiry: datetime) -> bool:
        blob = self.cache.get(self.key(key_hash))
        found = self._unpack(blob)
        if found is None or found[1] <= micros(now):
            return False
        header, _, payload = blob.partition(b"\n")
        _seen, _expiry, version, user = json.loads(header)
        repacked = json.dumps([micros(now), micros(expiry), version, user]).encode()
        self.cache.set(
            self.key(key_hash), repacked + b"\n" + payload, self._timeout(expiry, now)
        )
        return True

    def remove(self, key_hash: str) -> None:
        self.cache.delete(self.key(key_hash))

    def put(self, key_hash: str, record: Record, now: datetime) -> None:
        current = self.cache.get(self.key(key_hash))
        if current == TOMBSTONE:
            return
        found = self._unpack(current)
        if found is not None and found[2] > record.version:
            return
        self.cache.set(
            self.key(key_hash), self._pack(record), self._timeout(record.expiry, now)
        )

    def replace(
        self, old_hash: str, new_hash: str, record: Record, now: datetime, seconds: int
    ) -> bool:
        self.bury([old_hash], seconds)
        return bool(
            self.cache.add(
                self.key(new_hash),
                self._pack(record),
                self._timeout(record.expiry, now),
            )
        )

    def forget(self, key_hash: str) -> None:
        self.cache.delete(self.key(key_hash))

    def bury(self, key_hashes: Any, seconds: int) -> None:
        for key_hash in key_hashes:
            self.cache.set(self.key(key_hash), TOMBSTONE, seconds)


class SessionStore(ScsSessionStore):
    """Cache session engine: ``SESSION_ENGINE = "scs_django.backends.cache"``."""

    unavailable_errors = _REDIS_ERRORS

    @cached_property
    def _ops(self) -> Any:
        return cache_sessions()

    @property
    def _native(self) -> bool:
        return not isinstance(self._ops, CacheSessions)

    def _renewal_token(self, old_hash: str) -> tuple[str, str]:
        if self._native and self._ops.cluster:
            return self._ops.same_slot_token(old_hash)
        return super()._renewal_token(old_hash)

    def _fetch(self, key_hash: str, now: datetime) -> Loaded | None:
        return self._ops.fetch(key_hash, now)

    def _insert(self, key_hash: str, record: Record) -> bool:
        if self._native:
            return self._ops.insert(key_hash, record, record.last_seen)
        return self._ops.insert(key_hash, record)

    def _update(
        self,
        key_hash: str,
        record: Record,
        now: datetime,
        version: int | None,
        new_hash: str | None = None,
    ) -> bool:
        from django.contrib.sessions.backends.base import CreateError

        result = self._ops.update(key_hash, record, now, version, new_hash)
        if result == -1:
            raise CreateError
        return result == 1

    def _bump(self, key_hash: str, now: datetime, expiry: datetime) -> bool:
        return self._ops.bump(key_hash, now, expiry)

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
        rows = cls._redis_or_fail().user_sessions(user_id, timezone.now())
        return [
            SessionInfo(
                key_hash=row["key_hash"],
                user_id=user_id,
                created_at=_from_micros(row["created_at"]),
                last_seen=_from_micros(row["last_seen"]),
                expiry=_from_micros(row["expiry"]),
                absolute_expiry=_from_micros(row["absolute_expiry"]),
                ip=row["ip"],
                user_agent=row["user_agent"],
            )
            for row in rows
        ]

    @classmethod
    def revoke_keys(cls, key_hashes: Any) -> int:
        """End the sessions stored under ``key_hashes``; returns how many existed."""
        return cls._redis_or_fail().revoke(list(key_hashes))

    @classmethod
    def clear_expired(cls) -> None:
        """Redis expires sessions itself; this drops dead members of user indexes."""
        if is_native_redis(caches[conf.get("CACHE_ALIAS")]):
            redis_sessions().prune_indexes(timezone.now())
