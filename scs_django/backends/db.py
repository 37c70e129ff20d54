"""Sessions in the database, on the :class:`scs_django.models.Session` model."""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Iterable
from datetime import datetime
from typing import Any, NamedTuple

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


class _CompiledFetch(NamedTuple):
    """The read of a live session, compiled by the ORM for one connection."""

    sql: str
    params: tuple[Any, ...]  # the probe's; the two slots below change per read
    key_slot: int
    now_slot: int
    key_field: Any
    expiry_field: Any
    converters: tuple[tuple[int, tuple[list[Any], Any]], ...]  # as SQLCompiler's


# Building and compiling the read through the ORM was most of the Python time
# a read cost, and its SQL never changes, so it is compiled once per
# connection wrapper (Django keeps one per thread and alias, so no thread uses
# another's) and per model. None: the ORM's SQL could not be reused.
_compiled: weakref.WeakKeyDictionary[Any, dict[Any, _CompiledFetch | None]] = (
    weakref.WeakKeyDictionary()
)


def _compile_fetch(model: Any, alias: str) -> _CompiledFetch | None:
    connection = connections[alias]
    key_field = model._meta.get_field("key_hash")
    expiry_field = model._meta.get_field("expiry")
    key_probe, now_probe = "scs-probe-key-hash", timezone.now()
    rows = model.objects.filter(key_hash=key_probe, expiry__gt=now_probe)
    compiler = rows.values_list(*_LOADED)[:1].query.get_compiler(using=alias)
    sql, params = compiler.as_sql()
    params = tuple(params)
    slots = []
    # Found by value rather than assumed: the order is the ORM's business.
    for field, probe in ((key_field, key_probe), (expiry_field, now_probe)):
        value = field.get_db_prep_value(probe, connection, prepared=False)
        if params.count(value) != 1:
            return None
        slots.append(params.index(value))
    # as_sql() set up compiler.select; these are what values_list would apply.
    selected = [column for column, _, _ in compiler.select[: compiler.col_count]]
    converters = tuple(compiler.get_converters(selected).items())
    return _CompiledFetch(sql, params, *slots, key_field, expiry_field, converters)


def _compiled_fetch(model: Any, alias: str) -> _CompiledFetch | None:
    per_model = _compiled.setdefault(connections[alias], {})
    if model not in per_model:
        per_model[model] = _compile_fetch(model, alias)
    return per_model[model]


def _run_fetch(
    compiled: _CompiledFetch, alias: str, key_hash: str, now: datetime
) -> Loaded | None:
    connection = connections[alias]
    params = list(compiled.params)
    # The preparation the ORM gives these values in the lookups.
    params[compiled.key_slot] = compiled.key_field.get_db_prep_value(
        key_hash, connection, prepared=False
    )
    params[compiled.now_slot] = compiled.expiry_field.get_db_prep_value(
        now, connection, prepared=False
    )
    # The connection's cursor wrapper, as the ORM's: query logging, execute
    # wrappers and error translation all still apply.
    with connection.cursor() as cursor:
        cursor.execute(compiled.sql, params)
        row = cursor.fetchone()
    if row is None:
        return None
    row = list(row)
    for pos, (convs, expression) in compiled.converters:
        for convert in convs:
            row[pos] = convert(row[pos], expression, connection)
    payload, last_seen, version = row
    # Some drivers return a memoryview for a BinaryField.
    return Loaded(bytes(payload), last_seen, version)


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
        alias = router.db_for_read(self.model)  # as the manager would route it
        compiled = _compiled_fetch(self.model, alias)
        if compiled is not None:
            return _run_fetch(compiled, alias, key_hash, now)
        rows = self._live(key_hash, now).using(alias).values_list(*_LOADED)[:1]
        for payload, last_seen, version in rows:
            return Loaded(bytes(payload), last_seen, version)
        return None

    # No _afetch of its own: the base class runs _fetch in a thread, which is
    # what the async ORM would do with this query too.

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
