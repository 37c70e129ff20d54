"""Session middleware: put it where Django's ``SessionMiddleware`` was."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, cast

from django.conf import settings
from django.contrib.sessions.backends.base import UpdateError
from django.contrib.sessions.exceptions import SessionInterrupted
from django.contrib.sessions.middleware import (
    SessionMiddleware as DjangoSessionMiddleware,
)
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.utils.cache import patch_cache_control, patch_vary_headers
from django.utils.http import http_date

from . import ajax, conf, context, tokens
from .backends.base import ScsSessionStore
from .backends.cookie import SessionStore as CookieStore
from .exceptions import SessionStoreUnavailable

logger = logging.getLogger("scs_django")
security_logger = logging.getLogger("scs_django.security")

UNAVAILABLE_BODY = "The session store is temporarily unavailable. Please try again."

# The stores whose cookies this middleware manages; any other gets Django's rules.
_MANAGED = (ScsSessionStore, CookieStore)
_Managed = ScsSessionStore | CookieStore


def _sent_once_as_is(request: HttpRequest, token: str, name: str) -> bool:
    # Django's cookie parser keeps the last of repeated names and undoes
    # cookie quoting ('"\\101..."' becomes "A..."). A token we issued comes
    # back once and bare; anything else is ambiguous, so it is no session.
    header = request.META.get("HTTP_COOKIE") or ""
    if name not in header:
        # request.COOKIES was filled in by hand, as with RequestFactory (which
        # always sets the header, empty or holding other cookies).
        return True
    if header.count(name) == 1 and f"{name}={token}" in header:
        # The usual case, without splitting the header: the name appears once,
        # followed by the bare token (a quoted value would not contain it).
        return True
    sent = [
        value.strip()
        for key, eq, value in (chunk.partition("=") for chunk in header.split(";"))
        if eq and key.strip() == name
    ]
    # No chunk named exactly so: the name was part of another cookie's.
    return not sent or sent == [token]


def _ignored(token: str) -> None:
    security_logger.info(
        "Ignored a malformed session cookie (%d characters).", len(token)
    )


class SessionMiddleware(DjangoSessionMiddleware):
    """Django's session middleware with scs_django's rules for cookies and writes.

    * A cookie that is not a well-formed token never reaches the store.
    * A session that stays empty is never written and gets no cookie.
    * ``Set-Cookie`` follows only a successful write; a store outage answers 503
      and leaves the browser's cookie alone.
    * An idle deadline moves forward with a small update, without a new cookie.

    With the cookie engine (``scs_django.backends.cookie``), whose cookie holds
    the sealed session, the cookie is sent whenever the sealed value changes (a
    write, a renewal, an idle deadline moved) and cleared at logout.
    """

    def __init__(self, get_response: Any) -> None:
        super().__init__(get_response)
        # A store may say which cookie values it takes (the cookie engine's are
        # sealed sessions); the others take tokens. Asked once, not per request.
        self.accepts_cookie: Callable[[str], bool] = getattr(
            self.SessionStore, "accepts_cookie", tokens.is_well_formed
        )
        # The engine is fixed for this middleware's life, as Django's is.
        self.managed = issubclass(self.SessionStore, _MANAGED)
        self.renews = issubclass(self.SessionStore, ScsSessionStore)

    def process_request(self, request: HttpRequest) -> None:
        name = settings.SESSION_COOKIE_NAME
        token = request.COOKIES.get(name)
        # Our stores check the cookie's shape as they are made; others are
        # asked first. Either way a malformed cookie never reaches a store.
        if token is not None and not (
            (self.managed or self.accepts_cookie(token))
            and _sent_once_as_is(request, token, name)
        ):
            _ignored(token)
            token = None
        session = request.session = self.SessionStore(token)
        if self.managed:
            if token is not None and session.session_key is None:
                _ignored(token)  # refused by the store's own check
                token = None
            state = session.state  # type: ignore[attr-defined]
            state.cookie_sent = token is not None
            # What the session records (IP, user agent) is read from the
            # request only when a write needs it.
            state.request = request
            if self.renews:
                state.defer_renewal = True
        context.enter(request)

    def process_exception(
        self, request: HttpRequest, exception: Exception
    ) -> HttpResponse | None:
        if isinstance(exception, SessionStoreUnavailable):
            return self._unavailable()
        return None

    @staticmethod
    def _unavailable() -> HttpResponse:
        response = HttpResponse(UNAVAILABLE_BODY, status=503, content_type="text/plain")
        response["Retry-After"] = "5"
        patch_cache_control(response, no_store=True)
        return response

    # django-stubs narrows SessionMiddleware to HttpResponse; Django's takes any
    # response (a FileResponse or a StreamingHttpResponse too).
    def process_response(  # type: ignore[override]
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        if response.status_code == 302:
            # A script that asked for JSON gets a 401 it can act on, not the
            # login page's HTML (see ajax.py).
            response = ajax.login_redirect_as_401(request, response)
        session = getattr(request, "session", None)
        if not isinstance(session, _MANAGED):
            context.leave(request)
            return super().process_response(request, response)  # type: ignore[arg-type]
        try:
            return self._finish(request, response, session)
        except SessionStoreUnavailable:
            # Ending or renewing a session never fails open: the user must not
            # believe they logged out (or in) when the store did not change.
            state = session.state
            if conf.get("FAIL_OPEN") and not (
                state.end_failed or state.renewed or state.ended
            ):
                # As when loading failed: serve the request, store nothing.
                logger.warning("Session store unavailable; the session was not saved.")
                return response
            return self._unavailable()
        finally:
            # No cycle (request, session, state) left for the garbage collector.
            session.state.request = None
            context.leave(request)

    def _finish(
        self, request: HttpRequest, response: HttpResponseBase, session: _Managed
    ) -> HttpResponseBase:
        state = session.state
        if state.end_failed:
            return self._unavailable()
        if state.store_error:
            if conf.get("FAIL_OPEN"):
                return response
            return self._unavailable()
        if session.accessed:
            patch_vary_headers(response, ("Cookie",))
        if response.status_code >= 500:
            return response  # a failed request persists nothing

        # (Only a well-formed cookie counts: a malformed one named no session.)
        cookie_sent = state.cookie_sent
        save_every = settings.SESSION_SAVE_EVERY_REQUEST and (
            session.accessed or session.session_key is not None
        )
        if session.modified or save_every:
            # Loading here (when nothing did yet) is what tells an unknown token
            # from a live session, so an unknown one is never written.
            session.ensure_loaded()
            if session.is_empty():
                if cookie_sent and (state.ended or self._gone(session)):
                    self._delete_cookie(request, response)
                return response
            try:
                session.save()
            except UpdateError:
                raise SessionInterrupted(
                    "The request's session was ended before the request completed. "
                    "The user may have logged out in another request, for example."
                ) from None
            self._set_cookie(request, response, session)
        elif state.renewed and session.session_key is not None:
            self._set_cookie(request, response, session)
        elif cookie_sent and (
            state.ended or (session.accessed and session.session_key is None)
        ):
            # Ended here, or unknown, expired or ended elsewhere (_gone(),
            # inline): the browser would send it forever otherwise (Django
            # clears it too).
            self._delete_cookie(request, response)
        elif isinstance(session, ScsSessionStore) and session.needs_touch:
            # (The cookie engine moves its idle deadline with a new seal, so its
            # store reads as modified instead, and is saved above.)
            try:
                session.touch()
            except UpdateError:
                raise SessionInterrupted(
                    "The request's session was ended before the request completed."
                ) from None
        return response

    @staticmethod
    def _gone(session: _Managed) -> bool:
        # The request's well-formed cookie named no live session when loaded.
        return (
            session.state.cookie_sent
            and session.accessed
            and session.session_key is None
        )

    def _cookie_options(self, request: HttpRequest) -> dict[str, Any]:
        return {
            "domain": settings.SESSION_COOKIE_DOMAIN,
            "path": settings.SESSION_COOKIE_PATH,
            "secure": settings.SESSION_COOKIE_SECURE or request.is_secure() or None,
            "httponly": settings.SESSION_COOKIE_HTTPONLY or None,
            "samesite": settings.SESSION_COOKIE_SAMESITE,
        }

    def _set_cookie(
        self, request: HttpRequest, response: HttpResponseBase, session: _Managed
    ) -> None:
        max_age = session.get_cookie_age()
        response.set_cookie(
            settings.SESSION_COOKIE_NAME,
            cast(str, session.session_key),  # only a stored session gets a cookie
            max_age=max_age,
            expires=None if max_age is None else http_date(time.time() + max_age),
            **self._cookie_options(request),
        )
        self._mark_private(response)

    def _delete_cookie(self, request: HttpRequest, response: HttpResponseBase) -> None:
        # Same attributes as when it was set, or browsers keep the old cookie.
        response.set_cookie(
            settings.SESSION_COOKIE_NAME,
            "",
            max_age=0,
            expires="Thu, 01 Jan 1970 00:00:00 GMT",
            **self._cookie_options(request),
        )
        self._mark_private(response)

    @staticmethod
    def _mark_private(response: HttpResponseBase) -> None:
        patch_vary_headers(response, ("Cookie",))
        if "Cache-Control" in response:
            patch_cache_control(response, private=True)
        else:
            response["Cache-Control"] = "private"  # what patching would write
