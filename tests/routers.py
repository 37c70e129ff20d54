"""Database routers for the tests.

``PinnedRouter`` (settings.DATABASE_ROUTERS) sends every query to one alias,
switchable by tests. ``AuthRouter`` is what a site that keeps its users and
its sessions in different databases installs instead (tests/test_multiple_databases.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import DEFAULT_DB_ALIAS

# Process-global, not thread-local: threads started by a test (race tests)
# must use the alias the test chose.
_alias = DEFAULT_DB_ALIAS


def current_database() -> str:
    """Return the alias every read and write goes to right now."""
    return _alias


@contextmanager
def use_database(alias: str) -> Iterator[str]:
    """Route every read and write to *alias* inside the block."""
    global _alias
    previous, _alias = _alias, alias
    try:
        yield alias
    finally:
        _alias = previous


class AuthRouter:
    """The AuthRouter of Django's multi-database docs, with a database for
    scs_django's sessions added.

    The users' apps (auth, contenttypes, and the admin's log, whose foreign
    keys point at them) are read, written and migrated in ``users`` only;
    scs_django in ``sessions`` only.
    """

    users_apps = frozenset({"auth", "contenttypes", "admin"})

    def __init__(self, users: str, sessions: str) -> None:
        self.users = users
        self.sessions = sessions

    def _database(self, model) -> str | None:
        if model._meta.app_label in self.users_apps:
            return self.users
        if model._meta.app_label == "scs_django":
            return self.sessions
        return None

    def db_for_read(self, model, **hints):
        return self._database(model)

    def db_for_write(self, model, **hints):
        return self._database(model)

    def allow_relation(self, obj1, obj2, **hints):
        labels = {obj1._meta.app_label, obj2._meta.app_label}
        if labels <= self.users_apps or labels <= {"scs_django", "auth"}:
            return True
        return None

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        if db == self.users:
            return app_label in self.users_apps
        if db == self.sessions:
            return app_label == "scs_django"
        return None


# Per database vendor, the split the tests route to (aliases of tests/settings.py).
SPLITS = {
    "postgresql": AuthRouter("users", "sessions"),
    "sqlite": AuthRouter("sqlite_users", "sqlite_sessions"),
}


class PinnedRouter:
    """Route all reads and writes to the alias chosen with ``use_database``.

    The split databases of :data:`SPLITS` get only their own apps' tables.
    """

    def db_for_read(self, model, **hints):
        return _alias

    def db_for_write(self, model, **hints):
        return _alias

    def allow_relation(self, obj1, obj2, **hints):
        return True

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        for split in SPLITS.values():
            allowed = split.allow_migrate(db, app_label, model_name, **hints)
            if allowed is not None:
                return allowed
        return True


class EnvironmentRouter(PinnedRouter):
    """Route everything to the alias in ``SCS_SERVER_DATABASE``: the router of
    a server process a test started (tests/realserver.py)."""

    def db_for_read(self, model, **hints):
        import os

        return os.environ.get("SCS_SERVER_DATABASE", DEFAULT_DB_ALIAS)

    db_for_write = db_for_read
