"""Helpers shared by the tests."""

from __future__ import annotations

from django.db import DEFAULT_DB_ALIAS, connections
from django.test.utils import CaptureQueriesContext

SESSION_TABLE = "scs_django_session"


class SessionQueries(CaptureQueriesContext):
    """Captures the SQL run on one connection, and picks out the session table's."""

    @property
    def queries(self) -> list[dict[str, str]]:
        """Every statement captured, as ``{"sql": ..., "time": ...}`` dicts."""
        return self.captured_queries

    @property
    def session_queries(self) -> list[dict[str, str]]:
        """The captured statements that mention the session table."""
        return [q for q in self.captured_queries if SESSION_TABLE in q["sql"]]


def count_session_queries(alias: str = DEFAULT_DB_ALIAS) -> SessionQueries:
    """Capture the queries run on *alias* inside a ``with`` block.

    ``with count_session_queries("sqlite") as ctx: ...`` then
    ``len(ctx.session_queries)``.
    """
    return SessionQueries(connections[alias])
