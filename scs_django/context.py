"""The request being served, for code that has none at hand.

Model signals (a password saved, a user deactivated) fire deep inside a view
without the request. The middleware records it here, in a context variable
(per thread under WSGI, per task under ASGI), so their receivers can tell
which session is the one making the change.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

#: The request being served.
serving: ContextVar[Any] = ContextVar("scs_django_request", default=None)


def enter(request: Any) -> None:
    """Record ``request`` as the one being served (the middleware calls this)."""
    serving.set(request)


def leave(request: Any) -> None:
    """Forget ``request`` once its response is finished."""
    if serving.get() is request:
        serving.set(None)


def current_session() -> Any:
    """The session of the request being served, or None outside a request."""
    return getattr(serving.get(), "session", None)


def request_of(session: Any) -> Any:
    """The request being served when ``session`` is its session, else None."""
    request = serving.get()
    return request if getattr(request, "session", None) is session else None
