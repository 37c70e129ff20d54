"""A database router that sends every query to one alias, switchable by tests."""

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


class PinnedRouter:
    """Route all reads and writes to the alias chosen with ``use_database``."""

    def db_for_read(self, model, **hints):
        return _alias

    def db_for_write(self, model, **hints):
        return _alias

    def allow_relation(self, obj1, obj2, **hints):
        return True

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return True
