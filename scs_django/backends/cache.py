"""Sessions in a Django cache: ``SESSION_ENGINE = "scs_django.backends.cache"``.

On django-redis the engine talks to Redis through its native client (see
:mod:`scs_django.backends.redis`): raw bytes, conditional Lua writes, atomic
renewal and a per-user index. Any other cache (LocMem, Memcached, files,
database) goes through Django's cache API (see
:mod:`scs_django.backends.cache_api`) with weaker guarantees: changes are serialized by
``cache.add`` locks (atomic on Memcached, Redis and LocMem, not on files) that
a writer slower than their timeout can outlive, there is no per-user listing,
and a renewal is two steps.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.contrib.sessions.backends.base import CreateError
from django.core.cache import caches
from django.utils import timezone
from django.utils.functional import cached_property

from .. import conf
from ..lifetime import from_micros
from .base import Loaded, Record, ScsSessionStore, SessionInfo
from .cache_api import CacheSessions
from .operations import SessionOperations, UpdateOutcome

if TYPE_CHECKING:
    from .redis import RedisSessions
    from .redis_users import RedisUsers

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


def is_native_redis(cache: Any) -> bool:
    """True when ``cache`` is a django-redis cache the native path can use."""
    return _DjangoRedisCache is not None and isinstance(cache, _DjangoRedisCache)


def redis_sessions(
    alias: str | None = None,
    prefix: str = "scs:",
    longest_seconds: int | None = None,
) -> RedisSessions:
    """The native Redis operations
    (:class:`~scs_django.backends.redis.RedisSessions`) behind the cache named
    ``alias``; keys live at most ``longest_seconds`` when given."""
    from django_redis import get_redis_connection

    from .redis import RedisSessions

    alias = alias or conf.get("CACHE_ALIAS")
    return RedisSessions(
        get_redis_connection(alias), caches[alias].make_key(prefix), longest_seconds
    )


# Native operations per (prefix, cap) of the configured alias: a redis-py
# client is thread-safe and django-redis shares its connection pools
# process-wide anyway, so one object serves every request. Other caches get a
# cache object per thread, as Django hands them out (a memcached client, for
# one, is not thread-safe).
_native: dict[tuple[str, int | None], RedisSessions] = {}


def cache_sessions(
    prefix: str = "scs:", longest_seconds: int | None = None
) -> SessionOperations:
    """Session operations on the configured cache, native on django-redis.

    ``longest_seconds`` caps how long an entry is kept (copies in front of a
    database); by default an entry lives until the session expires."""
    # Emptied when CACHES or SCS change, so the alias need not be in the key.
    native = _native.get((prefix, longest_seconds))
    if native is not None:
        return native
    alias = conf.get("CACHE_ALIAS")
    key = (prefix, longest_seconds)
    cache = caches[alias]
    if is_native_redis(cache):
        native = _native[key] = redis_sessions(alias, prefix, longest_seconds)
        return native
    return CacheSessions(cache, prefix, longest_seconds)


conf.reset_on_change(("CACHES", "SCS"), _native.clear)


class SessionStore(ScsSessionStore):
    """Cache session engine: ``SESSION_ENGINE = "scs_django.backends.cache"``."""

    @classmethod
    def is_unavailable(cls, exc: BaseException) -> bool:
        return redis_unavailable(exc)

    @cached_property
    def _ops(self) -> SessionOperations:
        return cache_sessions()

    def _renewal_token(self, old_hash: str) -> tuple[str, str]:
        return self._ops.renewal_token(old_hash) or super()._renewal_token(old_hash)

    def _fetch(self, key_hash: str, now: datetime) -> Loaded | None:
        return self._ops.fetch(key_hash, now)

    def _insert(self, key_hash: str, record: Record) -> bool:
        return self._ops.insert(key_hash, record, record.last_seen)

    def _update(
        self,
        key_hash: str,
        record: Record,
        now: datetime,
        version: int | None,
        new_hash: str | None = None,
    ) -> bool:
        outcome = self._ops.update(key_hash, record, now, version, new_hash)
        if outcome is UpdateOutcome.TAKEN:
            raise CreateError
        return outcome is UpdateOutcome.WRITTEN

    def _update_locked(
        self,
        key_hash: str,
        now: datetime,
        new_hash: str | None,
        apply: Callable[[Loaded], Record | None],
    ) -> Record | None:
        return self._ops.update_locked(key_hash, now, new_hash, apply)

    def _bump(self, key_hash: str, now: datetime, expiry: datetime) -> bool:
        return self._ops.bump(key_hash, now, expiry)

    def _remove(self, key_hash: str) -> None:
        self._ops.remove(key_hash)

    # -- a user's sessions ------------------------------------------------------

    @classmethod
    def _users(cls) -> RedisUsers:
        if not is_native_redis(caches[conf.get("CACHE_ALIAS")]):
            raise NotImplementedError(
                "Listing and revoking a user's sessions needs the cache engine on "
                "django-redis (or the db / cached_db engine)."
            )
        from .redis_users import RedisUsers

        return RedisUsers(redis_sessions())

    @classmethod
    def user_sessions(cls, user_id: Any) -> list[SessionInfo]:
        """The live sessions of ``user_id``, through the per-user index."""
        with cls.guard():
            rows = cls._users().user_sessions(user_id, timezone.now())
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
    def revoke_keys(cls, key_hashes: Iterable[str]) -> int:
        """End the sessions stored under ``key_hashes``; returns how many existed."""
        with cls.guard():
            return cls._users().revoke(list(key_hashes))

    @classmethod
    def revoke_user(cls, user_id: Any, keep_hash: str | None = None) -> int:
        """End every session of ``user_id`` but ``keep_hash``'s, including one
        renewed while this runs (see :meth:`RedisUsers.revoke`)."""
        with cls.guard():
            return cls._users().revoke_user(user_id, keep_hash)

    @classmethod
    def clear_expired(cls) -> None:
        """Redis expires sessions itself; this drops dead members of user indexes."""
        if is_native_redis(caches[conf.get("CACHE_ALIAS")]):
            with cls.guard():
                cls._users().prune_indexes(timezone.now())
