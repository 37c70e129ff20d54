"""The storage operations under the cache engines, written down once.

Two classes implement :class:`SessionOperations`:
:class:`~scs_django.backends.redis.RedisSessions` on django-redis, through
Redis' native client, and :class:`~scs_django.backends.cache_api.CacheSessions`
on any other Django cache. The cache engine keeps its sessions with them; the
cached_db engine keeps the copies in front of its database with them
(``fetch``, ``put``, ``mark``, ``bury``, ``bump``).

Sessions are named by their token's hash. Times are the application's clock:
an implementation turns them into TTLs itself, so a store whose clock differs
does not matter.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from enum import Enum
from typing import Protocol

from .base import Loaded, Record


class UpdateOutcome(Enum):
    """What :meth:`SessionOperations.update` did."""

    # The values are the replies of the Redis update script.
    WRITTEN = 1
    # Nothing written: the session is gone or expired, at another version than
    # the one given, or locked by another writer.
    STALE = 0
    # Nothing written: the key a renewal moves the session to is taken.
    TAKEN = -1


class SessionOperations(Protocol):
    """What a store of sessions in a cache does, one method per operation."""

    def fetch(self, key_hash: str, now: datetime) -> Loaded | None:
        """The session stored under ``key_hash``, or None when there is none
        or it expired by ``now`` (a tombstone, a marker: None)."""
        ...

    def insert(self, key_hash: str, record: Record, now: datetime) -> bool:
        """Store a new session; False, and nothing written, when ``key_hash``
        is taken."""
        ...

    def update(
        self,
        key_hash: str,
        record: Record,
        now: datetime,
        version: int | None,
        new_hash: str | None = None,
    ) -> UpdateOutcome:
        """Overwrite the live session under ``key_hash`` if it is still at
        ``version`` (None: at any) and no other writer holds its lock; with
        ``new_hash``, move it there in the same step (a renewal)."""
        ...

    def update_locked(
        self,
        key_hash: str,
        now: datetime,
        new_hash: str | None,
        apply: Callable[[Loaded], Record | None],
    ) -> Record | None:
        """Under the session's lock: read the latest, write ``apply(latest)``
        (moved to ``new_hash`` if given) and return it.

        None when the session is gone or ``apply`` gives None; raises
        ``CreateError`` when ``new_hash`` is taken.
        """
        ...

    def bump(self, key_hash: str, now: datetime, expiry: datetime) -> bool:
        """Set last seen to ``now`` and the expiry of a live session, leaving
        its data alone; False when it is gone."""
        ...

    def remove(self, key_hash: str) -> None:
        """Forget the session under ``key_hash``."""
        ...

    def renewal_token(self, key_hash: str) -> tuple[str, str] | None:
        """A new token (and its hash) for renewing the session under
        ``key_hash``, when this store needs a particular one (Redis Cluster:
        in the same slot); None when any token does."""
        ...

    # -- copies in front of a database (cached_db) -----------------------------

    def put(self, key_hash: str, record: Record, now: datetime) -> None:
        """Cache ``record`` unless the session was buried, or a newer copy or
        the marker of a newer version is there."""
        ...

    def mark(self, key_hash: str, version: int, seconds: int) -> None:
        """Before ``version`` is written to the database: drop the copy and
        stop copies of older versions from being cached, for ``seconds`` or
        until :meth:`put` caches that version."""
        ...

    def bury(self, key_hashes: Iterable[str], seconds: int) -> None:
        """Replace the copies under ``key_hashes`` with tombstones that stop
        late refills for ``seconds``."""
        ...
