"""Database sessions with a cache in front:
``SESSION_ENGINE = "scs_django.backends.cached_db"``.

The database is the truth, and the cache never holds a version of a session
the database does not hold. Reads try the cache first and fill it on a miss.
A write first marks the cached copy as being rewritten (the marker stops a
read that raced the write from caching the version it replaces), then writes
the database (conditionally, as in the db engine), then caches the new copy
once the database has committed it. Ending a session leaves a short-lived
tombstone in the cache before the row is deleted, so a request that read the
session before it ended cannot put it back.

When the cache fails, reads go on against the database alone, so a session the
database holds is never lost; a change (a write, a logout, a revoke, a
renewal) needs the marker or the tombstone, and answers 503 without changing
anything while the cache cannot take it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime
from functools import partial
from typing import Any, TypeVar

from asgiref.sync import sync_to_async
from django.db import connections, router, transaction
from django.utils.functional import cached_property

from ..exceptions import SessionStoreUnavailable
from .base import Loaded, Record, ScsSessionStore
from .cache import cache_sessions, redis_unavailable
from .db import REVOKE_BATCH, locked
from .db import SessionStore as DBStore
from .operations import SessionOperations

logger = logging.getLogger("scs_django")
T = TypeVar("T")

_FILL = (
    "data",
    "last_seen",
    "version",
    "expiry",
    "created_at",
    "absolute_expiry",
    "user_id",
)


PREFIX = "scs:cdb:"
# A tombstone outlives any request that read the session before it ended.
TOMBSTONE_SECONDS = 3600
# A cached copy lives at most as long as a tombstone: a copy refilled after a
# tombstone was lost (a cache restarting empty) or a row deleted behind the
# engine's back (raw SQL) is dropped within that time, and a session in use is
# read from the database again at most once per period.
COPY_SECONDS = TOMBSTONE_SECONDS
# How long the marker of a write outlives a write whose new copy never reached
# the cache (the cache failed just after the database, or the transaction
# rolled back): until then, only copies of that version are cached.
PENDING_SECONDS = 60


def _copies() -> SessionOperations:
    """The operations on the cached copies."""
    return cache_sessions(prefix=PREFIX, longest_seconds=COPY_SECONDS)


def in_transaction(using: str) -> bool:
    """True when a write on ``using`` is not committed when it returns."""
    return connections[using].in_atomic_block


def _cache_failed(exc: BaseException) -> bool:
    return isinstance(exc, OSError) or redis_unavailable(exc)


def _strictly(operation: Callable[[], T]) -> T:
    """A cache operation the change depends on: failing, it stops the change."""
    try:
        return operation()
    except Exception as exc:
        if not _cache_failed(exc):
            raise
        raise SessionStoreUnavailable(
            "The session cache is unavailable, so the session cannot be changed "
            "safely now; nothing was changed."
        ) from exc


def _leniently(operation: Callable[[], T]) -> T | None:
    """A cache operation that only saves time: failing, it is skipped."""
    try:
        return operation()
    except Exception as exc:
        if not _cache_failed(exc):
            raise
        logger.warning("Session cache unavailable (%s); using the database.", exc)
        return None


class SessionStore(DBStore):
    """Database engine with a read-through cache."""

    @classmethod
    def is_unavailable(cls, exc: BaseException) -> bool:
        return super().is_unavailable(exc) or _cache_failed(exc)

    @cached_property
    def _cache_ops(self) -> SessionOperations:
        return self.cached_copies()

    @classmethod
    def cached_copies(cls) -> SessionOperations:
        """The operations on the copies this engine keeps in its cache (as
        ``scs_rotate_keys`` uses them to drop a copy it re-sealed)."""
        return _copies()

    def _fetch(self, key_hash: str, now: datetime) -> Loaded | None:
        ops = self._cache_ops
        hit = _leniently(lambda: ops.fetch(key_hash, now))
        if hit is not None:
            return hit
        rows = self.model.objects.filter(key_hash=key_hash)
        row = next(iter(rows.values_list(*_FILL)[:1]), None)
        if row is None:
            return None
        payload, seen, version, expiry, created, absolute, user_id = row
        if self._expired(key_hash, expiry, now):
            return None
        payload = bytes(payload)
        record = Record(
            payload=payload,
            created_at=created,
            absolute_expiry=absolute,
            expiry=expiry,
            last_seen=seen,
            version=version,
            user_id=user_id,
        )
        # Refused while a newer version is being written (see the docstring).
        _leniently(lambda: ops.put(key_hash, record, now))
        return Loaded(payload, seen, version)

    def _insert(self, key_hash: str, record: Record) -> bool:
        if not super()._insert(key_hash, record):
            return False
        self._cache_when_committed(key_hash, record, record.last_seen)
        return True

    def _cache_when_committed(
        self, key_hash: str, record: Record, now: datetime
    ) -> None:
        ops = self._cache_ops
        using = router.db_for_write(self.model)

        def put() -> None:
            _leniently(lambda: ops.put(key_hash, record, now))

        if in_transaction(using):
            # A rolled-back write must never be served from the cache.
            transaction.on_commit(put, using=using)
        else:
            put()

    def _update(
        self,
        key_hash: str,
        record: Record,
        now: datetime,
        version: int | None,
        new_hash: str | None = None,
    ) -> bool:
        ops = self._cache_ops
        if new_hash is None:
            _strictly(lambda: ops.mark(key_hash, record.version, PENDING_SECONDS))
        else:
            # A renewal: the old copy is buried before the rename (see _remove).
            _strictly(lambda: ops.bury([key_hash], TOMBSTONE_SECONDS))
        if not super()._update(key_hash, record, now, version, new_hash):
            return False
        self._cache_when_committed(new_hash or key_hash, record, now)
        return True

    def _bump(self, key_hash: str, now: datetime, expiry: datetime) -> bool:
        if not super()._bump(key_hash, now, expiry):
            return False
        ops = self._cache_ops
        _leniently(lambda: ops.bump(key_hash, now, expiry))
        return True

    def _remove(self, key_hash: str) -> None:
        # The tombstone goes first, and must succeed: a copy left in a cache that
        # was unreachable at logout would answer for the session once it is back.
        # So ending a session needs both stores; otherwise the request gets a 503
        # and the session stays as it was.
        ops = self._cache_ops
        _strictly(lambda: ops.bury([key_hash], TOMBSTONE_SECONDS))
        super()._remove(key_hash)

    # The db engine's native async twins would bypass the cache; the generic
    # ones run the methods above in a thread.
    _afetch = ScsSessionStore._afetch
    _ainsert = ScsSessionStore._ainsert
    _aupdate = ScsSessionStore._aupdate
    _abump = ScsSessionStore._abump
    _aremove = ScsSessionStore._aremove

    # -- a user's sessions: the database lists them, both places forget them --------

    @classmethod
    def revoke_keys(cls, key_hashes: Iterable[str]) -> int:
        key_hashes = list(key_hashes)
        if not key_hashes:
            return 0
        _strictly(lambda: _copies().bury(key_hashes, TOMBSTONE_SECONDS))
        return super().revoke_keys(key_hashes)

    @classmethod
    def revoke_user(cls, user_id: Any, keep_hash: str | None = None) -> int:
        model = cls.get_model_class()
        using = router.db_for_write(model)
        with transaction.atomic(using=using):
            # Locked until the delete commits: a renewal of one of them waits,
            # then finds it gone; one renewed before is listed by its new hash.
            rows = locked(cls._others(user_id, keep_hash).using(using), using)
            hashes = list(rows.values_list("key_hash", flat=True))
            deleted = 0
            # In batches: a pipeline and an IN list per batch, never one of
            # every session a user with thousands of them has.
            for start in range(0, len(hashes), REVOKE_BATCH):
                batch = hashes[start : start + REVOKE_BATCH]
                _strictly(partial(_copies().bury, batch, TOMBSTONE_SECONDS))
                rows = model.objects.using(using).filter(key_hash__in=batch)
                deleted += rows.delete()[0]
            return deleted

    @classmethod
    async def arevoke_keys(cls, key_hashes: Iterable[str]) -> int:
        return await sync_to_async(cls.revoke_keys)(list(key_hashes))

    @classmethod
    async def arevoke_user(cls, user_id: Any, keep_hash: str | None = None) -> int:
        return await sync_to_async(cls.revoke_user)(user_id, keep_hash)
