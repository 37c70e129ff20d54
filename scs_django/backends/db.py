"""Sessions in the database, on the :class:`scs_django.models.Session` model."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
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
from django.utils import timezone
from django.utils.functional import cached_property

from ..cleanup import delete_expired
from .base import Loaded, Record, ScsSessionStore, SessionInfo


def _savepoint(using: str) -> Any:
    # Inside a transaction a failed INSERT/UPDATE would poison it on PostgreSQL,
    # so give it a savepoint; in autocommit mode the statement is atomic alone
    # and a savepoint would only add round trips.
    if connections[using].in_atomic_block:
        return transaction.atomic(using=using)
    return contextlib.nullcontext()


_LOADED = ("data", "last_seen", "version")
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


def _client(record: Record) -> dict[str, Any]:
    # Client metadata is written when a session is created or renewed only.
    return {"ip": record.ip, "user_agent": record.user_agent}


class SessionStore(ScsSessionStore):
    """Database session engine: ``SESSION_ENGINE = "scs_django.backends.db"``."""

    unavailable_errors = (OperationalError, InterfaceError)

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
    def _fields(record: Record) -> dict[str, Any]:
        return {
            "data": record.payload,
            "created_at": record.created_at,
            "absolute_expiry": record.absolute_expiry,
            "expiry": record.expiry,
            "last_seen": record.last_seen,
            "version": record.version,
            "user_id": record.user_id,
        }

    def _fetch(self, key_hash: str, now: datetime) -> Loaded | None:
        rows = list(self._live(key_hash, now).values_list(*_LOADED)[:1])
        return Loaded(*rows[0]) if rows else None

    async def _afetch(self, key_hash: str, now: datetime) -> Loaded | None:
        rows = [
            row async for row in self._live(key_hash, now).values_list(*_LOADED)[:1]
        ]
        return Loaded(*rows[0]) if rows else None

    def _insert(self, key_hash: str, record: Record) -> bool:
        obj = self.model(key_hash=key_hash, **self._fields(record), **_client(record))
        using = router.db_for_write(self.model, instance=obj)
        try:
            with _savepoint(using):
                obj.save(force_insert=True, using=using)
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
        rows = self._live(key_hash, now).filter(version=version)
        fields = self._fields(record)
        if new_hash is None:
            return rows.update(**fields) == 1
        using = router.db_for_write(self.model)
        try:
            with _savepoint(using):
                renamed = rows.using(using).update(
                    key_hash=new_hash, **fields, **_client(record)
                )
                return renamed == 1
        except IntegrityError as exc:
            raise CreateError from exc

    async def _aupdate(
        self,
        key_hash: str,
        record: Record,
        now: datetime,
        version: int | None,
        new_hash: str | None = None,
    ) -> bool:
        if new_hash is None:
            rows = self._live(key_hash, now).filter(version=version)
            return await rows.aupdate(**self._fields(record)) == 1
        return await sync_to_async(self._update)(
            key_hash, record, now, version, new_hash
        )

    def _bump(self, key_hash: str, now: datetime, expiry: datetime) -> bool:
        return self._live(key_hash, now).update(last_seen=now, expiry=expiry) == 1

    async def _abump(self, key_hash: str, now: datetime, expiry: datetime) -> bool:
        return (
            await self._live(key_hash, now).aupdate(last_seen=now, expiry=expiry) == 1
        )

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
        key_hashes = list(key_hashes)
        if not key_hashes:
            return 0
        return cls._live_rows().filter(key_hash__in=key_hashes).delete()[0]

    @classmethod
    async def arevoke_keys(cls, key_hashes: Iterable[str]) -> int:
        key_hashes = list(key_hashes)
        if not key_hashes:
            return 0
        return (await cls._live_rows().filter(key_hash__in=key_hashes).adelete())[0]

    @classmethod
    def _others(cls, user_id: Any, keep_hash: str | None) -> Any:
        rows = cls._live_rows().filter(user_id=user_id)
        return rows if keep_hash is None else rows.exclude(key_hash=keep_hash)

    @classmethod
    def revoke_user(cls, user_id: Any, keep_hash: str | None = None) -> int:
        return cls._others(user_id, keep_hash).delete()[0]

    @classmethod
    async def arevoke_user(cls, user_id: Any, keep_hash: str | None = None) -> int:
        return (await cls._others(user_id, keep_hash).adelete())[0]
