"""How the db engine tells a database out of reach from a bug, and outlasts
InnoDB's deadlocks."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import TypeVar, cast

from django.db import OperationalError, connections

from .base import wait_for_lock

# SQLite's messages for SQLITE_BUSY, _LOCKED, _CANTOPEN, _IOERR, _FULL and
# _PROTOCOL: a database locked, out of reach or out of space. Every other
# OperationalError of SQLite (no such table, no such column, a syntax error)
# is a bug or a schema that was never migrated. (Messages rather than
# sqlite_errorname, which Python 3.10 lacks.)
_SQLITE_UNAVAILABLE = (
    "database is locked",
    "database table is locked",
    "database schema is locked",
    "unable to open database file",
    "disk I/O error",
    "database or disk is full",
    "locking protocol",
)
# mysqlclient's OperationalError codes that mean a schema error: unknown
# column, unknown table (1146 is a ProgrammingError already, on most versions).
_MYSQL_SCHEMA_ERRORS = frozenset({1054, 1146})
# "Deadlock found when trying to get lock; try restarting transaction".
_MYSQL_DEADLOCK = 1213
# How long a write keeps being chosen as a deadlock's victim before the
# session counts as unavailable; as long as the cache engines wait for a lock.
DEADLOCK_WAIT_SECONDS = 10.0

_T = TypeVar("_T")


def _mysql_code(exc: BaseException) -> int | None:
    # The driver's exception, which Django wrapped (None has no MySQLdb module).
    cause = cast(BaseException, exc.__cause__)
    if type(cause).__module__.startswith("MySQLdb") and cause.args:
        code: int = cause.args[0]
        return code
    return None


def retrying_deadlocks(using: str, run: Callable[[], _T]) -> _T:
    """``run()``, run again while InnoDB makes it a deadlock's victim.

    Two writes of one session can deadlock on InnoDB when they reach its row
    through different indexes (the optimizer may take the expiry index, which
    the write also changes): one is rolled back whole, and the server asks for
    it to be run again. Contention is not an outage, so it is, after a
    jittered pause, unless the caller's own transaction was the one rolled
    back: that is the caller's to run again.
    """

    def victim(exc: OperationalError) -> bool:
        return (
            _mysql_code(exc) == _MYSQL_DEADLOCK
            and not connections[using].in_atomic_block
        )

    try:
        return run()  # on every write: no waiting loop to set up until needed
    except OperationalError as exc:
        if not victim(exc):
            raise
    done: list[_T] = []

    def attempt() -> bool:
        try:
            done.append(run())
        except OperationalError as exc:
            if not victim(exc):
                raise
            return False
        return True

    wait_for_lock(attempt, DEADLOCK_WAIT_SECONDS)
    return done[0]


def out_of_reach(exc: BaseException) -> bool:
    """For an error Django raised as ``OperationalError`` or
    ``InterfaceError``: True unless the driver says it is a schema or
    programming error, which SQLite and MySQL report so too (a missing
    table is a 500, not a 503)."""
    cause = exc.__cause__  # the driver's exception, which Django wrapped
    if isinstance(cause, sqlite3.Error):
        return str(cause).startswith(_SQLITE_UNAVAILABLE)
    code = _mysql_code(exc)
    if code is not None:
        return code not in _MYSQL_SCHEMA_ERRORS
    return True
