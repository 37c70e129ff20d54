"""The db engine's hot statements, in plain SQL written once per database.

Reading, writing, touching, creating and renaming a session are one
statement each, and their SQL never changes: building it through the ORM
was most of their Python time. So each is written once per database alias
(and its settings) and model, from the model's metadata: names quoted by the
backend, values prepared by their fields as the ORM prepares them
(``get_db_prep_save`` for what is written, ``get_db_prep_value`` for what is
compared), and what is read converted as ``SQLCompiler.apply_converters``
converts it (the backend's converters, then the field's own).

Once per alias, not per connection wrapper: Django makes a wrapper per
thread, and under ASGI per request, so statements kept per wrapper were
written again on every async request. Nothing written keeps the wrapper it
was written on: a converter of the backend's operations is called on the
operations of the connection running the statement.

A statement that cannot be written for a model or a backend, for whatever
reason (a field with a placeholder of its own, a model spread over several
tables, a Django whose API moved), is None: the engine runs the ORM's
instead. Writing one sends nothing to the database; errors running one
propagate as the ORM's would.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, NamedTuple

from django.db import connections, transaction
from django.db.models import BinaryField

from .. import conf

logger = logging.getLogger("scs_django")

# The columns a read returns, by key hash alone and with the expiry: a stored
# session past it is told apart from an unknown token (session_expired), in
# the same one statement.
LOADED = ("data", "last_seen", "version", "expiry")
# The columns a write sets, in the order of the engine's values.
WRITTEN = (
    "data",
    "created_at",
    "absolute_expiry",
    "expiry",
    "last_seen",
    "version",
    "user_id",
)
# Client metadata, written when a session is created or renamed only.
CLIENT = ("ip", "user_agent")
TOUCHED = ("last_seen", "expiry")
# A write or touch changes a session only while it is live, and a write only
# at the version it replaces ("= NULL" for a version of None matches no row,
# as the ORM's "IS NULL" matches none in a column that is never NULL).
_LIVE = (("key_hash", "="), ("expiry", ">"))
_AT_VERSION = (*_LIVE, ("version", "="))

Preparation = Callable[[Any, Any], Any]  # (value, connection) -> parameter
Converter = Callable[[Any, Any, Any], Any]  # (value, expression, connection)


class Statement(NamedTuple):
    """One statement on one connection: its SQL, how each of its values
    becomes a parameter, and for a read, how each column read becomes a
    value (position, converters, the expression they are given)."""

    sql: str
    preparations: tuple[Preparation, ...]
    converters: tuple[tuple[int, tuple[Converter, ...], Any], ...] = ()


class Statements(NamedTuple):
    """The engine's hot statements for one model on one connection; None for
    one that could not be written (the ORM's is run instead).

    Values, in order: ``read`` the key hash; ``write`` WRITTEN, then the key
    hash, now and the version to replace; ``touch`` TOUCHED, the key hash
    and now; ``insert`` the key hash, WRITTEN and CLIENT; ``rename`` the new
    key hash, WRITTEN, CLIENT, then as ``write``.
    """

    read: Statement | None
    write: Statement | None
    touch: Statement | None
    insert: Statement | None
    rename: Statement | None


class Unwritable(Exception):
    """The model needs the ORM for this statement."""


def _concrete(model: Any) -> Any:
    meta = model._meta.concrete_model._meta
    if meta.parents:
        # Multi-table inheritance: the ORM would read and write several tables.
        raise Unwritable("rows spread over several tables")
    return meta


def _slot(field: Any, connection: Any) -> str:
    # Where a written value goes, as SQLUpdateCompiler and SQLInsertCompiler
    # write it. A BinaryField's slot is the backend's (MySQL's "_binary %s",
    # so the bytes are not read in the connection's character set) for a
    # value that is not None, as a session's data never is; other slots of a
    # field's own are the ORM's business.
    own = getattr(type(field), "get_placeholder", None)
    if own is None:
        return "%s"
    if own is getattr(BinaryField, "get_placeholder", None):  # not in the stubs
        slot: str = connection.ops.binary_placeholder_sql(b"")
        return slot
    raise Unwritable(f"{field.name} has a placeholder of its own")


def _compared(field: Any) -> Preparation:
    # What a lookup gives its value: get_prep_value, then get_db_prep_value.
    return functools.partial(field.get_db_prep_value, prepared=False)


def _portable(convert: Converter, connection: Any) -> Converter:
    # A backend's converters are methods of the wrapper's operations (SQLite's
    # and MySQL's datetimes, for one): call the function on the operations of
    # the connection a read runs on, so the statement holds no wrapper.
    owner = getattr(convert, "__self__", None)
    if owner is not connection.ops and owner is not connection:
        return convert  # a field's from_db_value, or a plain function
    function = convert.__func__  # type: ignore[attr-defined]
    if owner is connection:
        return lambda value, expression, conn: function(conn, value, expression, conn)
    return lambda value, expression, conn: function(conn.ops, value, expression, conn)


def write_read(model: Any, connection: Any) -> Statement:
    """SELECT LOADED by key hash."""
    meta = _concrete(model)
    quote = connection.ops.quote_name
    fields = [meta.get_field(name) for name in LOADED]
    key = meta.get_field("key_hash")
    columns = ", ".join(quote(field.column) for field in fields)
    table, where = quote(meta.db_table), quote(key.column)
    # Names quoted by the backend; every value is a parameter.
    sql = f"SELECT {columns} FROM {table} WHERE {where} = %s"  # noqa: S608
    converters = []
    for position, field in enumerate(fields):
        column = field.get_col(meta.db_table)
        convs = tuple(
            _portable(convert, connection)
            for convert in (
                *connection.ops.get_db_converters(column),
                # from_db_value where the field has one, as Col.get_db_converters.
                *field.get_db_converters(connection),
            )
        )
        if convs:
            converters.append((position, convs, column))
    return Statement(sql, (_compared(key),), tuple(converters))


def _update(
    model: Any,
    connection: Any,
    names: tuple[str, ...],
    where: tuple[tuple[str, str], ...],
) -> Statement:
    meta = _concrete(model)
    quote = connection.ops.quote_name
    sets = [meta.get_field(name) for name in names]
    tests = [(meta.get_field(name), operator) for name, operator in where]
    assignments = ", ".join(
        f"{quote(field.column)} = {_slot(field, connection)}" for field in sets
    )
    conditions = " AND ".join(
        f"{quote(field.column)} {operator} %s" for field, operator in tests
    )
    table = quote(meta.db_table)
    sql = f"UPDATE {table} SET {assignments} WHERE {conditions}"  # noqa: S608
    preparations = (
        *(field.get_db_prep_save for field in sets),
        *(_compared(field) for field, _ in tests),
    )
    return Statement(sql, preparations)


def write_write(model: Any, connection: Any) -> Statement:
    """UPDATE WRITTEN of a live session at a version."""
    return _update(model, connection, WRITTEN, _AT_VERSION)


def write_touch(model: Any, connection: Any) -> Statement:
    """UPDATE TOUCHED of a live session."""
    return _update(model, connection, TOUCHED, _LIVE)


def write_rename(model: Any, connection: Any) -> Statement:
    """UPDATE the key hash, WRITTEN and CLIENT of a live session at a version:
    the old token dies in the statement that gives the new one its row."""
    return _update(model, connection, ("key_hash", *WRITTEN, *CLIENT), _AT_VERSION)


def write_insert(model: Any, connection: Any) -> Statement:
    """INSERT a session (the primary key is the database's)."""
    meta = _concrete(model)
    quote = connection.ops.quote_name
    fields = [meta.get_field(name) for name in ("key_hash", *WRITTEN, *CLIENT)]
    columns = ", ".join(quote(field.column) for field in fields)
    slots = ", ".join(_slot(field, connection) for field in fields)
    table = quote(meta.db_table)
    sql = f"INSERT INTO {table} ({columns}) VALUES ({slots})"  # noqa: S608
    return Statement(sql, tuple(field.get_db_prep_save for field in fields))


def _written(
    name: str, write: Callable[[Any, Any], Statement], model: Any, connection: Any
) -> Statement | None:
    try:
        return write(model, connection)
    except Exception as exc:  # whatever the reason, the ORM's statement instead
        logger.debug("The ORM runs the %s statement of %s: %r", name, model, exc)
        return None


# Per alias and settings, per model: (the settings, {model: statements}),
# keyed by the id of the settings dictionary every wrapper of the alias shares
# (the entry holds it, so the id is not reused while the entry lives). A
# wrapper made with other settings for the alias gets statements of its own.
_statements: dict[tuple[str, int], tuple[dict[str, Any], dict[Any, Statements]]] = {}

# A backend chooses a read's converters by these settings (MySQL converts
# datetimes only with USE_TZ), and prepares datetimes by them: statements
# written under the old values would read and write datetimes of the wrong
# kind.
conf.reset_on_change(("USE_TZ", "TIME_ZONE"), _statements.clear)


def statements(model: Any, alias: str) -> Statements:
    """The hot statements for ``model`` on the database ``alias``."""
    connection = connections[alias]
    settings_dict = connection.settings_dict
    entry = _statements.get((alias, id(settings_dict)))
    if entry is None:
        entry = _statements[alias, id(settings_dict)] = (settings_dict, {})
    per_model = entry[1]
    found = per_model.get(model)
    if found is None:
        # Looked up here rather than at import, so a test can replace one.
        writers = (write_read, write_write, write_touch, write_insert, write_rename)
        found = per_model[model] = Statements(
            *(
                _written(name, write, model, connection)
                for name, write in zip(Statements._fields, writers, strict=True)
            )
        )
    return found


def _params(
    statement: Statement, connection: Any, values: tuple[Any, ...]
) -> list[Any]:
    return [
        prepare(value, connection)
        for prepare, value in zip(statement.preparations, values, strict=True)
    ]


# Both run on the connection's cursor wrapper, as the ORM's statements do:
# query logging, execute wrappers and error translation all still apply.


def fetch(
    statement: Statement, alias: str, values: tuple[Any, ...]
) -> list[Any] | None:
    """The row a read finds, converted; None when there is none."""
    connection = connections[alias]
    with connection.cursor() as cursor:
        cursor.execute(statement.sql, _params(statement, connection, values))
        row = cursor.fetchone()
    if row is None:
        return None
    row = list(row)
    for position, convs, expression in statement.converters:
        value = row[position]
        for convert in convs:
            value = convert(value, expression, connection)
        row[position] = value
    return row


def execute(statement: Statement, alias: str, values: tuple[Any, ...]) -> int:
    """Run a write; the number of rows it matched."""
    connection = connections[alias]
    # As QuerySet.update and Model.save: an error inside a transaction marks
    # it for rollback.
    with transaction.mark_for_rollback_on_error(using=alias):
        params = _params(statement, connection, values)
        with connection.cursor() as cursor:
            cursor.execute(statement.sql, params)
            count: int = cursor.rowcount
            return count
