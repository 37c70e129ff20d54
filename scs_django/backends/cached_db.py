"""Database sessions with a cache in front:
``SESSION_ENGINE = "scs_django.backends.cached_db"``.

The database is the truth. Reads try the cache first and fill it on a miss;
writes go to the database (conditionally, as in the db engine) and then
refresh the cache; ending a session deletes the row and leaves a short-lived
tombstone in the cache, so a request that read the session before it ended
cannot put it back. When the cache fails, reads and writes go on against the
database alone, so a session the database holds is never lost; ending a
session (logout, revoke, renewal) needs the tombstone, and answers 503
without changing anything while the cache cannot be reached.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from asgiref.sync import sync_to_async
from django.contrib.sessions.backends.base import CreateError
from django.db import router, transaction
from django.utils.functional import cached_property

from ..exceptions import SessionStoreUnavailable
from .base import Loaded, Record, ScsSessionStore
from .cache import _REDIS_ERRORS, TOMBSTONE_SECONDS, cache_sessions
from .db import SessionStore as DBStore

logger = logging.getLogger("scs_django")

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
# A cached copy lives at most as long as a tombstone: a copy refilled after a
# tombstone was lost (a cache restarting empty) or a row deleted behind the
# engine's back (raw SQL) is dropped within that time, and a session in use is
# read from the database again at most once per period.
COPY_SECONDS = TOMBSTONE_SECONDS


def _copies() -> Any:
    """The operations on the cached copies."""
    return cache_sessions(prefix=PREFIX, longest_seconds=COPY_SECONDS)


def _strictly(ops: Any, what: str, *args: Any) -> Any:
    """A cache operation the change depends on: failing, it stops the change."""
    try:
        return getattr(ops, what)(*args)
    except (*_REDIS_ERRORS, OSError) as exc:
        raise SessionStoreUnavailable(
            "The session cache is unavailable, so the session cannot be changed "
            "safely now; nothing was changed."
        ) from exc


class SessionStore(DBStore):
    """Database engine with a read-through cache."""

    @cached_property
    def _cache_ops(self) -> Any:
        return _copies()

    def _cached(self, what: str, *args: Any) -> Any:
        # A cache failure costs speed, never a session: the database decides.
        try:
            return getattr(self._cache_ops, what)(*args)
        except (*_REDIS_ERRORS, OSError) as exc:
            logger.warning("Session cache unavailable (%s); using the database.", exc)
            return None

    def _fetch(self, key_hash: str, now: datetime) -> Loaded | None:
        hit = self._cached("fetch", key_hash, now)
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
        self._cached("put", key_hash, record, now)
        return Loaded(payload, seen, version)

    def _fetch_latest(self, key_hash: str, now: datetime) -> Loaded | None:
        return super()._fetch(key_hash, now)

    def _insert(self, key_hash: str, record: Record) -> bool:
        if not super()._insert(key_hash, record):
            return False
        self._cached("put", key_hash, record, record.last_seen)
        return True

    def _update(
        self,
        key_hash: str,
        record: Record,
        now: datetime,
        version: int | None,
        new_hash: str | None = None,
    ) -> bool:
        if new_hash is None:
            # The new copy must reach the cache before the database commits: a
            # cache that missed the change would answer with the old copy once
            # it is back. So the update and the copy stand or fall together.
            with transaction.atomic(using=router.db_for_write(self.model)):
                if not super()._update(key_hash, record, now, version):
                    return False
                _strictly(self._cache_ops, "put", key_hash, record, now)
            return True
        # A renewal: the old copy is buried before the rename (see _remove), in
        # the same round trip as the new copy is cached.
        wrote = _strictly(
            self._cache_ops,
            "replace",
            key_hash,
            new_hash,
            record,
            now,
            TOMBSTONE_SECONDS,
        )
        try:
            renamed = super()._update(key_hash, record, now, version, new_hash)
        except CreateError:
            # The new token's hash belongs to another session: the copy just
            # cached under it must not answer for that session.
            if wrote:
                self._cached("forget", new_hash)
            raise
        if not renamed and wrote:
            self._cached("forget", new_hash)
        return renamed

    def _bump(self, key_hash: str, now: datetime, expiry: datetime) -> bool:
        if not super()._bump(key_hash, now, expiry):
            return False
        self._cached("bump", key_hash, now, expiry)
        return True

    def _remove(self, key_hash: str) -> None:
        # The tombstone goes first, and must succeed: a copy left in a cache that
        # was unreachable at logout would answer for the session once it is back.
        # So ending a session needs both stores; otherwise the request gets a 503
        # and the session stays as it was.
        _strictly(self._cache_ops, "bury", [key_hash], TOMBSTONE_SECONDS)
        super()._remove(key_hash)

    # The db engine's native async twins would bypass the cache; the generic
    # ones run the methods above in a thread.
    _afetch = ScsSessionStore._afetch
    _ainsert = ScsSessionStore._ainsert
    _aupdate = ScsSessionStore._aupdate
    _abump = ScsSessionStore._abump
    _aremove = ScsSessionStore._aremove

    async def _afetch_latest(self, key_hash: str, now: datetime) -> Loaded | None:
        return await sync_to_async(self._fetch_latest)(key_hash, now)

    # -- a user's sessions: the database lists them, both places forget them --------

    @classmethod
    def revoke_keys(cls, key_hashes: Any) -> int:
        key_hashes = list(key_hashes)
        _strictly(_copies(), "bury", key_hashes, TOMBSTONE_SECONDS)
        return super().revoke_keys(key_hashes)

    @classmethod
    def revoke_user(cls, user_id: Any, keep_hash: str | None = None) -> int:
        return cls.revoke_keys(
            cls._others(user_id, keep_hash).values_list("key_hash", flat=True)
        )

    @classmethod
    async def arevoke_keys(cls, key_hashes: Any) -> int:
        return await sync_to_async(cls.revoke_keys)(list(key_hashes))

    @classmethod
    async def arevoke_user(cls, user_id: Any, keep_hash: str | None = None) -> int:
        return await sync_to_async(cls.revoke_user)(user_id, keep_hash)
