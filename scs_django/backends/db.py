"""Sessions in the database, on the :class:`scs_django.models.Session` model."""

from __future__ import annotations

import contextlib
import functools
import weakref
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from asgiref.sync import sync_to_async
from django.contrib.sessions.backends.base import CreateError
from django.core.exceptions import ValidationError
from django.db import (
    IntegrityError,
    InterfaceError,
    OperationalError,
    connections,
    router,
    transaction,
)
from django.db.models import F
from django.db.models.sql import UpdateQuery
from django.utils import timezone
from django.utils.functional import cached_property

from .. import conf
from ..cleanup import delete_expired
from .base import Loaded, Record, ScsSessionStore, SessionInfo
from .db_errors import out_of_reach, retrying_deadlocks


def _savepoint(using: str) -> Any:
    # Inside a transaction a failed INSERT/UPDATE would poison it on PostgreSQL,
    # so give it a savepoint; in autocommit mode the statement is atomic alone
    # and a savepoint would only add round trips.
    if connections[using].in_atomic_block:
        return transaction.atomic(using=using)
    return contextlib.nullcontext()


# By key alone, with the expiry: a stored session past it is told apart from
# an unknown token (session_expired), in the same one statement.
_LOADED = ("data", "last_seen", "version", "expiry")
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


# Columns an update sets, and the same from a record.
_WRITTEN = (
    "data",
    "created_at",
    "absolute_expiry",
    "expiry",
    "last_seen",
    "version",
    "user_id",
)


def _written(record: Record) -> tuple[Any, ...]:
    return (
        record.payload,
        record.created_at,
        record.absolute_expiry,
        record.expiry,
        record.last_seen,
        record.version,
        record.user_id,
    )


_TOUCHED = ("last_seen", "expiry")

# Reading, writing and touching a session were mostly the Python time of
# building and compiling their statements through the ORM, and the SQL never
# changes: so the ORM compiles each once per connection wrapper (Django keeps
# one per thread and alias, so no thread uses another's) and model, with probe
# values in place of the real ones; each run puts the real values, prepared as
# the ORM prepares them, where the probes were found.

Preparation = Callable[[Any, Any], Any]  # (value, connection) -> parameter


class _Statement(NamedTuple):
    """One of the engine's statements, as the ORM builds it."""

    # (model, *values) -> the ORM's query with those values in it, and how the
    # ORM prepares each value.
    build: Callable[..., tuple[Any, tuple[Preparation, ...]]]
    # Values to compile with, all different, so each is found where it went.
    probes: Callable[[], tuple[Any, ...]]


class _Compiled(NamedTuple):
    """A statement compiled by the ORM for one connection."""

    sql: str
    params: tuple[Any, ...]  # the probes'; the slots below change per run
    # Per value: where it goes and how it is prepared; None for a None value,
    # which the ORM writes into the SQL itself (IS NULL, = NULL).
    slots: tuple[tuple[int, Preparation] | None, ...]
    # A read's converters, as SQLCompiler's; an update has none.
    converters: tuple[tuple[int, tuple[list[Any], Any]], ...]


def _live(model: Any, key_hash: str, now: datetime) -> Any:
    return model.objects.filter(key_hash=key_hash, expiry__gt=now)


def _lookup(model: Any, name: str) -> Preparation:
    # The preparation a lookup gives its value.
    return functools.partial(
        model._meta.get_field(name).get_db_prep_value, prepared=False
    )


def _updating(rows: Any, names: tuple[str, ...], values: tuple[Any, ...]) -> Any:
    # The query rows.update(...) compiles (see QuerySet.update), and the
    # preparation SQLUpdateCompiler gives each value it sets.
    query = rows.query.chain(UpdateQuery)
    query.add_update_values(dict(zip(names, values, strict=True)))
    query.clear_select_clause()
    meta = rows.model._meta
    return query, tuple(meta.get_field(name).get_db_prep_save for name in names)


def _read(model: Any, key_hash: str) -> Any:
    query = model.objects.filter(key_hash=key_hash).values_list(*_LOADED)[:1].query
    return query, (_lookup(model, "key_hash"),)


def _write(model: Any, key_hash: str, now: datetime, version: Any, *values: Any) -> Any:
    rows = _live(model, key_hash, now).filter(version=version)
    query, sets = _updating(rows, _WRITTEN, values)
    where = ("key_hash", "expiry", "version")
    return query, (*(_lookup(model, name) for name in where), *sets)


def _touch(model: Any, key_hash: str, now: datetime, *values: Any) -> Any:
    query, sets = _updating(_live(model, key_hash, now), _TOUCHED, values)
    return query, (_lookup(model, "key_hash"), _lookup(model, "expiry"), *sets)


_KEY_PROBE = "scs-probe-key-hash"
_INT_PROBE = 2**40  # the integer probes: this, +1 and +2


def _times(count: int) -> tuple[datetime, ...]:
    now = timezone.now()  # aware or not, as the datetimes the engine is given
    return tuple(now + timedelta(seconds=n) for n in range(count))


def _write_probes() -> tuple[Any, ...]:
    now, *times = _times(5)
    data, new_version, user_id = b"scs-probe-data", _INT_PROBE + 1, _INT_PROBE + 2
    return (_KEY_PROBE, now, _INT_PROBE, data, *times, new_version, user_id)


# Values: the key hash for a read; (key hash, now), the version to replace and
# _written(record) for a write; (key hash, now), last-seen and expiry for a
# touch.
_READ = _Statement(_read, lambda: (_KEY_PROBE,))
_WRITE = _Statement(_write, _write_probes)
_TOUCH = _Statement(_touch, lambda: (_KEY_PROBE, *_times(3)))

# Per connection wrapper, per (model, statement, which values are None); None:
# the ORM's SQL could not be reused, so that statement goes through the ORM.
_compiled: weakref.WeakKeyDictionary[Any, dict[Any, _Compiled | None]] = (
    weakref.WeakKeyDictionary()
)


# A backend may choose a read's converters by these settings (MySQL converts
# datetimes only with USE_TZ), so statements compiled under the old values
# would return datetimes of the wrong kind.
conf.reset_on_change(("USE_TZ", "TIME_ZONE"), _compiled.clear)


def _same(param: Any, value: Any) -> bool:
    if type(param) is not type(value):
        return False
    if param == value:
        return True
    # Some driver wrappers (psycopg's Binary) compare by identity: compare
    # what they hold.
    held = getattr(value, "__dict__", None)
    return held is not None and held == getattr(param, "__dict__", None)


def _compile(
    statement: _Statement, model: Any, alias: str, nones: tuple[bool, ...]
) -> _Compiled | None:
    connection = connections[alias]
    probes = tuple(
        None if none else probe
        for none, probe in zip(nones, statement.probes(), strict=True)
    )
    query, preparations = statement.build(model, *probes)
    if getattr(query, "related_updates", None):
        return None  # an inherited model: the ORM would run more statements
    compiler = query.get_compiler(using=alias)
    sql, params = compiler.as_sql()
    params = tuple(params)
    slots: list[tuple[int, Preparation] | None] = []
    for probe, prepare in zip(probes, preparations, strict=True):
        if probe is None:
            slots.append(None)
            continue
        # Found by value rather than assumed: the order is the ORM's business.
        value = prepare(probe, connection)
        found = [n for n, param in enumerate(params) if _same(param, value)]
        if len(found) != 1:
            return None
        slots.append((found[0], prepare))
    converters: tuple[Any, ...] = ()
    if compiler.select:  # a read: what values_list would apply (as_sql set it up)
        selected = [column for column, _, _ in compiler.select[: compiler.col_count]]
        converters = tuple(compiler.get_converters(selected).items())
    return _Compiled(sql, params, tuple(slots), converters)


def _compiled_for(
    statement: _Statement, model: Any, alias: str, values: tuple[Any, ...]
) -> _Compiled | None:
    per_key = _compiled.setdefault(connections[alias], {})
    key = (model, statement, tuple(value is None for value in values))
    if key not in per_key:
        try:
            per_key[key] = _compile(statement, model, alias, key[2])
        except (TypeError, ValueError, ValidationError):
            # A field that cannot take a probe value (a custom user primary
            # key, say): that statement goes through the ORM as it is.
            per_key[key] = None
    return per_key[key]


def _params(compiled: _Compiled, connection: Any, values: tuple[Any, ...]) -> list[Any]:
    params = list(compiled.params)
    for value, slot in zip(values, compiled.slots, strict=True):
        if slot is not None:
            position, prepare = slot
            params[position] = prepare(value, connection)
    return params


# Both run on the connection's cursor wrapper, as the ORM's statements:
# query logging, execute wrappers and error translation all still apply.


def _run_fetch(
    compiled: _Compiled, alias: str, values: tuple[Any, ...]
) -> list[Any] | None:
    connection = connections[alias]
    with connection.cursor() as cursor:
        cursor.execute(compiled.sql, _params(compiled, connection, values))
        row = cursor.fetchone()
    if row is None:
        return None
    row = list(row)
    for pos, (convs, expression) in compiled.converters:
        for convert in convs:
            row[pos] = convert(row[pos], expression, connection)
    return row


def _run_update(compiled: _Compiled, alias: str, values: tuple[Any, ...]) -> int:
    connection = connections[alias]
    # As QuerySet.update: the rows changed, and an error inside a transaction
    # marks it for rollback.
    with transaction.mark_for_rollback_on_error(using=alias):
        params = _params(compiled, connection, values)
        with connection.cursor() as cursor:
            cursor.execute(compiled.sql, params)
            count: int = cursor.rowcount
            return count


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
        return _live(self.model, key_hash, now)

    @staticmethod
    def _fields(record: Record) -> dict[str, Any]:
        return dict(zip(_WRITTEN, _written(record), strict=True))

    def _fetch(self, key_hash: str, now: datetime) -> Loaded | None:
        alias = router.db_for_read(self.model)  # as the manager would route it
        values = (key_hash,)
        compiled = _compiled_for(_READ, self.model, alias, values)
        if compiled is not None:
            row = _run_fetch(compiled, alias, values)
        else:
            rows = self.model.objects.using(alias).filter(key_hash=key_hash)
            row = next(iter(rows.values_list(*_LOADED)[:1]), None)
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

    # No async twins of _fetch, _update and _bump: the base class runs them in
    # a thread, which is what the async ORM would do with these queries too.

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
        if new_hash is None:
            values = (key_hash, now, version, *_written(record))
            compiled = _compiled_for(_WRITE, self.model, using, values)
            if compiled is not None:
                return _run_update(compiled, using, values) == 1
        rows = self._live(key_hash, now).filter(version=version).using(using)
        fields = self._fields(record)
        if new_hash is None:
            updated: int = rows.update(**fields)
            return updated == 1
        # A renewal, rare enough to go through the ORM.
        try:
            with _savepoint(using):
                renamed: int = rows.update(
                    key_hash=new_hash, **fields, **_client(record)
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
            row = live.values_list(*_LOADED).first()
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
        values = (key_hash, now, now, expiry)  # the second is the new last-seen
        compiled = _compiled_for(_TOUCH, self.model, using, values)
        if compiled is not None:
            return _run_update(compiled, using, values) == 1
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
        key_hashes = list(key_hashes)
        if not key_hashes:
            return 0
        deleted: int = cls._live_rows().filter(key_hash__in=key_hashes).delete()[0]
        return deleted

    @classmethod
    async def arevoke_keys(cls, key_hashes: Iterable[str]) -> int:
        key_hashes = list(key_hashes)
        if not key_hashes:
            return 0
        rows = cls._live_rows().filter(key_hash__in=key_hashes)
        deleted: int = (await rows.adelete())[0]
        return deleted

    @classmethod
    def _others(cls, user_id: Any, keep_hash: str | None) -> Any:
        rows = cls._live_rows().filter(user_id=user_id)
        return rows if keep_hash is None else rows.exclude(key_hash=keep_hash)

    @classmethod
    def revoke_user(cls, user_id: Any, keep_hash: str | None = None) -> int:
        deleted: int = cls._others(user_id, keep_hash).delete()[0]
        return deleted

    @classmethod
    async def arevoke_user(cls, user_id: Any, keep_hash: str | None = None) -> int:
        deleted: int = (await cls._others(user_id, keep_hash).adelete())[0]
        return deleted
