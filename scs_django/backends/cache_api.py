"""Sessions through Django's cache API, on any cache but django-redis.

The API has no conditional write, so every change of a stored session
(update, touch, removal) runs under a per-session lock made with
``cache.add``, which is atomic on Memcached, Redis and the local-memory cache
(not on the file cache). A writer slower than the lock's timeout can outlive
it, and a renewal is two steps: the weaker guarantees of ``scs_django.W010``.

A value is a JSON header line (last seen and expiry in µs, version, user id)
and the encoded envelope.
"""

from __future__ import annotations

import json
import math
import secrets
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from django.contrib.sessions.backends.base import CreateError

from ..lifetime import to_micros as micros
from .base import Loaded, Record, wait_for_lock
from .operations import UpdateOutcome

TOMBSTONE = b"x"
# See CacheSessions.mark.
PENDING = b"p:"
# A lock on one session: held for a read and a write; the timeout only frees
# the lock of a crashed holder.
LOCK_SECONDS = 5
LOCK_WAIT_SECONDS = 10.0


class CacheSessions:
    """Session operations through Django's cache API
    (:class:`~scs_django.backends.operations.SessionOperations`)."""

    def __init__(
        self, cache: Any, prefix: str = "scs:", longest_seconds: int | None = None
    ) -> None:
        self.cache = cache
        self.prefix = prefix
        # A cap on an entry's timeout (copies in front of a database); None:
        # the session's own expiry.
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
        return Loaded(payload, seen, version)

    def insert(self, key_hash: str, record: Record, now: datetime) -> bool:
        timeout = self._timeout(record.expiry, now)
        return bool(self.cache.add(self.key(key_hash), self._pack(record), timeout))

    def _replace(
        self, key_hash: str, record: Record, now: datetime, new_hash: str | None
    ) -> UpdateOutcome:
        timeout = self._timeout(record.expiry, now)
        if new_hash is None:
            self.cache.set(self.key(key_hash), self._pack(record), timeout)
            return UpdateOutcome.WRITTEN
        if not self.cache.add(self.key(new_hash), self._pack(record), timeout):
            return UpdateOutcome.TAKEN
        self.cache.delete(self.key(key_hash))
        return UpdateOutcome.WRITTEN

    def update(
        self,
        key_hash: str,
        record: Record,
        now: datetime,
        version: int | None,
        new_hash: str | None = None,
    ) -> UpdateOutcome:
        with self._locked(key_hash):
            found = self._live(key_hash, now)
            if found is None or (version is not None and found[2] != version):
                return UpdateOutcome.STALE
            return self._replace(key_hash, record, now, new_hash)

    def update_locked(
        self,
        key_hash: str,
        now: datetime,
        new_hash: str | None,
        apply: Callable[[Loaded], Record | None],
    ) -> Record | None:
        with self._locked(key_hash):
            latest = self.fetch(key_hash, now)
            if latest is None:
                return None
            record = apply(latest)
            if record is None:
                return None
            if self._replace(key_hash, record, now, new_hash) is UpdateOutcome.TAKEN:
                raise CreateError
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

    def renewal_token(self, key_hash: str) -> tuple[str, str] | None:
        return None

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
        current = self.cache.get(self.key(key_hash))
        if current == TOMBSTONE or self._newer(current, version - 1):
            return
        self.cache.set(self.key(key_hash), PENDING + b"%d" % version, seconds)

    def bury(self, key_hashes: Iterable[str], seconds: int) -> None:
        for key_hash in key_hashes:
            self.cache.set(self.key(key_hash), TOMBSTONE, seconds)
