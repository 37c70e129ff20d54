"""Sessions in the database, on the :class:`scs_django.models.Session` model."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from asgiref.sync import sync_to_async
from django.contrib.sessions.backends.base import CreateError
from django.db import (
    IntegrityError,
    InterfaceError,
    OperationalError,
    connections,
    router,
    transaction,
)
from django.db.models import F
from django.utils import timezone
from django.utils.functional import cached_property

from ..cleanup import delete_expired
from . import db_sql as sql
from .base import Loaded, Record, ScsSessionStore, SessionInfo
from .db_errors import out_of_reach, retrying_deadlocks


def _savepoint(using: str) -> Any:
    # Inside a transaction a failed INSERT/UPDATE would poison it on PostgreSQL,
    # so give it a savepoint; in autocommit mode the statement is atomic alone
    # and a savepoint would only add round trips.
    if connections[using].in_atomic_block:
        return transaction.atomic(using=using)
    return contextlib.nullcontext()


# Hashes per DELETE ... WHERE key_hash IN (...): below every database's limit
# of parameters in one statement (SQLite's was 999 before 3.32).
REVOKE_BATCH = 900

# What user_sessions lists.
_INFO = (
    "key_hash",
    "user_id",
    "created_at",
    "last_seen",
    "expiry",
    "absolute_expiry",
    "ip",
    "user_agent",
)


def _written(record: Record) -> tuple[Any, ...]:
    # A record's values of sql.WRITTEN, in that order.
    return (
        record.payload,
        record.created_at,
        record.absolute_expiry,
        record.expiry,
        record.last_seen,
        record.version,
        record.user_id,
    )


def _client(record: Record) -> tuple[Any, ...]:
    # Of sql.CLIENT: written when a session is created or renewed only.
    return (record.ip, record.user_agent)


def locked(rows: Any, using: str) -> Any:
    """``rows`` to read under a lock held until the transaction ends (call it
    inside one): ``SELECT ... FOR UPDATE``, or on SQLite, which has no row
    locks, the database's write lock, taken first by a write that changes
    nothing (waiting for it up to the busy timeout; reading first could fail
    at the write on a snapshot another writer made stale)."""
    if not connections[using].features.has_select_for_update:
        rows.update(version=F("version"))
    return rows.select_for_update()


class SessionStore(ScsSessionStore):
    """Database session engine: ``SESSION_ENGINE = "scs_django.backends.db"``."""

    unavailable_errors = (OperationalError, InterfaceError)

    @classmethod
    def is_unavailable(cls, exc: BaseException) -> bool:
        """True for a database that cannot answer now; False for a schema or
        programming error, which SQLite and MySQL also report as
        ``OperationalError`` (a missing table is a 500, not a 503)."""
        return isinstance(exc, cls.unavailable_errors) and out_of_reach(exc)

    @classmethod
    def get_model_class(cls) -> Any:
        # Imported here so this module can be imported (as SESSION_ENGINE is)
        # before the app registry is ready.
        from scs_django.models import Session

        return Session

    @cached_property
    def model(self) -> Any:
        return self.get_model_class()

    def _live(self, key_hash: str, now: datetime) -> Any:
        return self.model.objects.filter(key_hash=key_hash, expiry__gt=now)

    @staticmethod
    def _fields(record: Record, *, client: bool = False) -> dict[str, Any]:
        # The same values as keyword arguments, for the ORM.
        fields = dict(zip(sql.WRITTEN, _written(record), strict=True))
        if client:
            fields.update(zip(sql.CLIENT, _client(record), strict=True))
        return fields

    def _fetch(self, key_hash: str, now: datetime) -> Loaded | None:
        alias = router.db_for_read(self.model)  # as the manager would route it
        read = sql.statements(self.model, alias).read
        if read is not None:
            row = sql.fetch(read, alias, (key_hash,))
        else:
            rows = self.model.objects.using(alias).filter(key_hash=key_hash)
            row = next(iter(rows.values_list(*sql.LOADED)[:1]), None)
        if row is None:
            return None
        payload, last_seen, version, expiry = row
        if self._expired(key_hash, expiry, now):
            return None
        # Some drivers return a memoryview for a BinaryField.
        return Loaded(bytes(payload), last_seen, version)

    def _expired(self, key_hash: str, expiry: datetime, now: datetime) -> bool:
        """True for a row past its expiry, remembered for session_expired."""
        if expiry > now:
            return False
        self._dead_hash = key_hash
        return True

    # No async twins of _fetch, _insert, _update and _bump: the base class runs
    # them in a thread, which is what the async ORM would do with these
    # queries too.

    def _insert(self, key_hash: str, record: Record) -> bool:
        obj = self.model(key_hash=key_hash, **self._fields(record, client=True))
        # Routed with the hints obj.save() would give.
        using = router.db_for_write(self.model, instance=obj)
        insert = sql.statements(self.model, using).insert
        try:
            with _savepoint(using):
                if insert is None:
                    obj.save(force_insert=True, using=using)
                else:
                    values = (key_hash, *_written(record), *_client(record))
                    sql.execute(insert, using, values)
        except IntegrityError:
            return False
        return True

    def _update(
        self,
        key_hash: str,
        record: Record,
        now: datetime,
        version: int | None,
        new_hash: str | None = None,
    ) -> bool:
        using = router.db_for_write(self.model)  # as update() would route it
        return retrying_deadlocks(
            using,
            lambda: self._update_once(using, key_hash, record, now, version, new_hash),
        )

    def _update_once(
        self,
        using: str,
        key_hash: str,
        record: Record,
        now: datetime,
        version: int | None,
        new_hash: str | None,
    ) -> bool:
        statements = sql.statements(self.model, using)
        live = (key_hash, now, version)
        if new_hash is None:
            if statements.write is not None:
                values = (*_written(record), *live)
                return sql.execute(statements.write, using, values) == 1
            rows = self._live(key_hash, now).filter(version=version).using(using)
            updated: int = rows.update(**self._fields(record))
            return updated == 1
        # A renewal: the old token dies in the statement that moves its row to
        # the new one; a new hash already taken is the unique constraint's.
        try:
            with _savepoint(using):
                if statements.rename is not None:
                    values = (new_hash, *_written(record), *_client(record), *live)
                    renamed = sql.execute(statements.rename, using, values)
                else:
                    rows = self._live(key_hash, now).filter(version=version)
                    renamed = rows.using(using).update(
                        key_hash=new_hash, **self._fields(record, client=True)
                    )
                return renamed == 1
        except IntegrityError as exc:
            raise CreateError from exc

    def _update_locked(
        self,
        key_hash: str,
        now: datetime,
        new_hash: str | None,
        apply: Callable[[Loaded], Record | None],
    ) -> Record | None:
        using = router.db_for_write(self.model)
        # Run again after a deadlock, ``apply`` included: it merges with
        # whatever it is given, as after a lost optimistic write.
        return retrying_deadlocks(
            using,
            lambda: self._update_locked_once(using, key_hash, now, new_hash, apply),
        )

    def _update_locked_once(
        self,
        using: str,
        key_hash: str,
        now: datetime,
        new_hash: str | None,
        apply: Callable[[Loaded], Record | None],
    ) -> Record | None:
        with transaction.atomic(using=using):
            live = locked(self._live(key_hash, now).using(using), using)
            row = live.values_list(*sql.LOADED).first()
            if row is None:
                return None
            payload, last_seen, version, _expiry = row
            record = apply(Loaded(bytes(payload), last_seen, version))
            if record is None:
                return None
            # Nothing can have written since the lock: this cannot lose.
            if not self._update(key_hash, record, now, version, new_hash):
                return None
            return record

    def _bump(self, key_hash: str, now: datetime, expiry: datetime) -> bool:
        using = router.db_for_write(self.model)
        return retrying_deadlocks(
            using, lambda: self._bump_once(using, key_hash, now, expiry)
        )

    def _bump_once(
        self, using: str, key_hash: str, now: datetime, expiry: datetime
    ) -> bool:
        touch = sql.statements(self.model, using).touch
        if touch is not None:
            return sql.execute(touch, using, (now, expiry, key_hash, now)) == 1
        rows = self._live(key_hash, now).using(using)
        touched: int = rows.update(last_seen=now, expiry=expiry)
        return touched == 1

    def _remove(self, key_hash: str) -> None:
        self.model.objects.filter(key_hash=key_hash).delete()

    async def _aremove(self, key_hash: str) -> None:
        await self.model.objects.filter(key_hash=key_hash).adelete()

    @classmethod
    def clear_expired(cls) -> None:
        """Delete every session whose expiry has passed, in short batches."""
        delete_expired(model=cls.get_model_class())

    @classmethod
    async def aclear_expired(cls) -> None:
        await sync_to_async(delete_expired)(model=cls.get_model_class())

    @classmethod
    def _live_rows(cls) -> Any:
        return cls.get_model_class().objects.filter(expiry__gt=timezone.now())

    @classmethod
    def user_sessions(cls, user_id: Any) -> list[SessionInfo]:
        return [
            SessionInfo(*row)
            for row in cls._live_rows().filter(user_id=user_id).values_list(*_INFO)
        ]

    @classmethod
    async def auser_sessions(cls, user_id: Any) -> list[SessionInfo]:
        rows = cls._live_rows().filter(user_id=user_id).values_list(*_INFO)
        return [SessionInfo(*row) async for row in rows]

    @classmethod
    def revoke_keys(cls, key_hashes: Iterable[str]) -> int:
        deleted, key_hashes = 0, list(key_hashes)
        for start in range(0, len(key_hashes), REVOKE_BATCH):
            batch = key_hashes[start : start + REVOKE_BATCH]
            rows = cls._live_rows().filter(key_hash__in=batch)
            deleted += rows.delete()[0]
        return deleted

    @classmethod
    async def arevoke_keys(cls, key_hashes: Iterable[str]) -> int:
        deleted, key_hashes = 0, list(key_hashes)
        for start in range(0, len(key_hashes), REVOKE_BATCH):
            batch = key_hashes[start : start + REVOKE_BATCH]
            rows = cls._live_rows().filter(key_hash__in=batch)
            deleted += (await rows.adelete())[0]
        return deleted

    @classmethod
    def _others(cls, user_id: Any, keep_hash: str | None) -> Any:
        rows = cls._live_rows().filter(user_id=user_id)
        return rows if keep_hash is None else rows.exclude(key_hash=keep_hash)

    # One DELETE by user: no row comes back to Python, however many there are.
    # The model has no signal receivers or relations, so Django deletes
    # without collecting the rows first (tests/test_revoke_scale.py counts it).
    @classmethod
    def revoke_user(cls, user_id: Any, keep_hash: str | None = None) -> int:
        deleted: int = cls._others(user_id, keep_hash).delete()[0]
        return deleted

    @classmethod
    async def arevoke_user(cls, user_id: Any, keep_hash: str | None = None) -> int:
        deleted: int = (await cls._others(user_id, keep_hash).adelete())[0]
        return deleted
