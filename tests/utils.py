"""Helpers shared by the tests.

The browser helpers read the cookie name from the settings at call time, so
they follow a test that changes ``SESSION_COOKIE_NAME``.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import datetime
from datetime import timezone as dt_timezone
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.test import Client
from django.test.utils import CaptureQueriesContext

from scs_django import tokens
from scs_django.models import Session
from tests.factories import PASSWORD
from tests.security.transport import Transport, json_body, session_cookie

SESSION_TABLE = "scs_django_session"

# Where tests/conftest.py's ``clock`` fixture stops the application's clock.
START = datetime(2026, 3, 2, 9, 0, tzinfo=dt_timezone.utc)


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


def every_cell(alias: str) -> Iterator[Any]:
    """Every cell of every row of the session table on ``alias`` (bytes for
    binary columns); fails when the table is empty."""
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT * FROM scs_django_session")
        rows = cursor.fetchall()
    assert rows, "expected stored sessions"
    for row in rows:
        for cell in row:
            yield bytes(cell) if isinstance(cell, memoryview) else cell


def ids_and_messages(messages: list[Any]) -> list[tuple[str, str]]:
    """The ``(id, msg)`` of each system check message."""
    return [(m.id, m.msg) for m in messages]


class Tty(io.StringIO):
    """A command's output that says it is a terminal, so progress is shown."""

    def isatty(self) -> bool:
        return True


# -- browsers: django.test.Client ---------------------------------------------------


def token_of(client: Client) -> str:
    """The session token in the client's cookie jar."""
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def hash_of(client: Client) -> str:
    """The hash the db engine stores the client's session under."""
    return tokens.hash_token(token_of(client))


def row_of(client: Client) -> Session:
    """The db engine's row of the client's session."""
    return Session.objects.get(key_hash=hash_of(client))


def is_live(client: Client) -> bool:
    """Whether the db engine still holds a row for the client's session."""
    return Session.objects.filter(key_hash=hash_of(client)).exists()


def user_of(client: Client) -> str | None:
    """The id of the user the client's session is logged in as (tests/views.py)."""
    return client.get("/read/").json()["user"]


def start_session(client: Client, value: str = "cart") -> str:
    """Store ``value`` in a session of the client; its token."""
    client.get("/write/", {"value": value})
    return token_of(client)


def client_with(token: str) -> Client:
    """A browser whose session cookie holds ``token``."""
    other = Client()
    other.cookies[settings.SESSION_COOKIE_NAME] = token
    return other


def logged_in(user: Any) -> Client:
    """A browser with a session of ``user`` made by ``Client.force_login()``."""
    client = Client()
    client.force_login(user)
    return client


def post_login(
    client: Client, user: Any, password: str = PASSWORD, **extra: Any
) -> Any:
    """Submit the login form as ``user``; the response (``extra``: WSGI environ)."""
    return client.post(
        "/accounts/login/",
        {"username": user.username, "password": password},
        **extra,
    )


def logged_in_by_form(user: Any) -> Client:
    """A browser that signed in as ``user`` through the login form."""
    client = Client()
    response = post_login(client, user)
    assert response.status_code == 302, response.content
    return client


# -- browsers that are only their token: tests.security.transport ----------------------


def cookie(token: str | None) -> str | None:
    """The ``Cookie`` header sending ``token``; None (no header) without one."""
    return f"{settings.SESSION_COOKIE_NAME}={token}" if token else None


def read(transport: Transport, token: str | None, path: str = "/read/") -> Any:
    """What a reading view (``{"value": ..., "user": ...}``) answers to ``token``."""
    response = transport.get(path, cookie=cookie(token))
    assert response.status_code == 200, response.content
    return json_body(response)


def issued_token(response: Any) -> str:
    """The session token the response sets; fails when it sets none."""
    morsel = session_cookie(response)
    assert morsel is not None and morsel.value, "expected a session cookie"
    return morsel.value


def log_in(transport: Transport, user: Any, token: str | None = None) -> str:
    """Log ``user`` in through the login form, sending ``token`` if given; the
    token of the logged-in session."""
    response = transport.post(
        "/accounts/login/",
        cookie=cookie(token),
        form={"username": user.username, "password": PASSWORD},
    )
    assert response.status_code == 302, response.content
    return issued_token(response)


def stored_logins(engine: Any, user: Any, count: int) -> list[Any]:
    """``count`` stored sessions of ``user``, as logins leave them, made
    through the store's own API; the stores."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY

    made = []
    for _ in range(count):
        session = engine.store_class()
        session[SESSION_KEY] = str(user.pk)
        session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session.save()
        made.append(session)
    return made
