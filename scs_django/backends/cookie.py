"""The sealed-cookie engine: the whole session in its cookie, for sites with
no server-side store (Go's SCS ships the same as its cookie store).

The cookie's value *is* the session: its data, its created time, its absolute
deadline and when it was last seen, serialised with ``SESSION_SERIALIZER``,
sealed by :mod:`scs_django.crypto` (purpose ``b"cookie"``, bound to the
cookie's name) and written in base64url without padding. It is not
compressed: the length of a compressed cookie would tell what it holds.

How it fits Django's ``SessionBase`` (as ``signed_cookies`` does):
``session_key`` is the cookie's value, and every ``save()`` seals a new one;
``exists()`` is always False; ``delete()`` and ``flush()`` only forget the
data, and the middleware clears the cookie. ``renew_token()``,
``cycle_key()`` and an idle deadline due to move all read as ``modified``, so
the session is sealed again (with a fresh nonce) and the cookie re-sent.

Nothing is kept on the server, so nothing there can end a session: a copy of
the cookie opens until one of its deadlines passes, whatever logout did to
the browser's copy, and a user's sessions cannot be listed or revoked. The
docs' backends page and the ``scs_django.W050`` deploy check say so.
"""

from __future__ import annotations

import logging
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, NoReturn

from django.utils import timezone

from .. import conf, lifetime
from ..exceptions import SessionTooLarge
from .cookie_seal import (
    COOKIE_LIMIT,
    PURPOSE,
    VALUE,
    Lifetime,
    Opened,
    open_cookie,
    require_sealing,
    seal_cookie,
    set_cookie_length,
)
from .engine import SessionInfo
from .held import RequestState
from .remember import RememberMe

__all__ = ["COOKIE_LIMIT", "PURPOSE", "SessionStore", "set_cookie_length"]

security_logger = logging.getLogger("scs_django.security")


class SessionStore(RememberMe):
    """Django's ``SessionBase`` with the whole session sealed into its cookie."""

    if TYPE_CHECKING:
        # SessionBase's private data cache, which django-stubs leaves out.
        _session_cache: dict[str, Any]
        _session: dict[str, Any]

        def _get_session(self, no_load: bool = False) -> dict[str, Any]: ...
        async def _aget_session(self, no_load: bool = False) -> dict[str, Any]: ...

    def __init__(self, session_key: str | None = None) -> None:
        self._life: Lifetime | None = None
        self._reseal_due = False
        super().__init__(session_key)
        self.state = RequestState()

    # -- the cookie's value -----------------------------------------------------------

    @classmethod
    def accepts_cookie(cls, value: str) -> bool:
        """True when ``value`` has the shape of a sealed session; the middleware
        asks before making a store. Whether it opens is for ``load()`` to tell."""
        return VALUE.fullmatch(value) is not None

    def _validate_session_key(self, key: Any) -> bool:
        return isinstance(key, str) and self.accepts_cookie(key)

    # Django's SessionMiddleware sends the cookie when ``modified``: an idle
    # deadline due to move is a new seal, so a new cookie, with no data changed.
    @property
    def modified(self) -> bool:
        return self._modified or (self._reseal_due and self.state.count_activity)

    @modified.setter
    def modified(self, value: bool) -> None:
        self._modified = value

    def _sealed(self, data: dict[str, Any], life: Lifetime) -> str:
        return seal_cookie(self.serializer(), data, life)

    def _opened(self, value: str) -> Opened | None:
        return open_cookie(self.serializer(), value)

    # -- loading ----------------------------------------------------------------------

    def load(self) -> dict[str, Any]:
        """The data the cookie holds; empty (and no ``session_key``) when it
        does not open or is past a deadline."""
        if self.session_key is None:
            return self._forget()
        require_sealing()
        opened = self._opened(self.session_key)
        if opened is None:
            security_logger.info(
                "Ignored a session cookie that does not open (%d characters).",
                len(self.session_key),
            )
            return self._forget()
        scs = conf.get_settings()
        use_tz, now = conf.use_tz(), timezone.now()
        expiry = opened.data.get("_session_expiry")
        idle = lifetime.idle_seconds(expiry, scs["IDLE_TIMEOUT"])
        absolute = lifetime.capped_absolute(
            opened.created, opened.absolute, scs["ABSOLUTE_TIMEOUT"]
        )
        try:
            life = Lifetime(
                lifetime.from_micros(opened.created, use_tz),
                lifetime.from_micros(absolute, use_tz),
                lifetime.from_micros(opened.last_seen, use_tz),
            )
            fixed = lifetime.fixed_deadline(expiry, use_tz)
            end = lifetime.deadline(life.absolute, fixed, life.last_seen, idle)
        except (OverflowError, ValueError, TypeError):
            # Only our keys seal a cookie, so this is a bug, not an attack.
            security_logger.warning(
                "A session cookie has impossible deadlines; treated as no session."
            )
            return self._forget()
        if now >= end:
            return self._forget()
        self._life = life
        self._reseal_due = idle is not None and lifetime.touch_due(
            now, life.last_seen, scs["TOUCH_INTERVAL"]
        )
        return opened.data

    async def aload(self) -> dict[str, Any]:
        # No I/O anywhere in this engine: the async twins run the sync code.
        return self.load()

    def ensure_loaded(self) -> None:
        """Open the cookie unless this request did already: what tells a live
        session from a cookie that does not open or has expired."""
        self._get_session()

    def _forget(self) -> dict[str, Any]:
        self._session_key = None
        self._life = None
        self._reseal_due = False
        return {}

    def exists(self, session_key: str | None) -> bool:
        """Always False: nothing is stored, and a cookie that opens may well
        have been logged out of."""
        return False

    async def aexists(self, session_key: str | None) -> bool:
        return False

    # -- writing ----------------------------------------------------------------------

    def save(self, must_create: bool = False) -> None:
        """Seal the session into a new ``session_key``, the cookie's next value.

        Raises ``SessionTooLarge`` when the cookie would pass what browsers
        keep (:data:`COOKIE_LIMIT`) or the sealed session ``SCS["MAX_BYTES"]``,
        and ``SessionNotSerializable`` for values the serializer refuses; the
        session keeps its previous value then.
        """
        require_sealing()
        data = self._get_session()
        now = timezone.now()
        life = (self._life or Lifetime.starting(now))._replace(last_seen=now)
        value = self._sealed(data, life)
        length = set_cookie_length(value, self._cookie_age(life))
        if length > COOKIE_LIMIT:
            raise SessionTooLarge(
                f"The session cookie would be {length} bytes, more than the "
                f"{COOKIE_LIMIT} browsers keep. Store less in the session (the "
                "cookie engine carries all of it in the cookie), or use a "
                "server-side engine."
            )
        self._session_key = value
        self._life = life
        self._reseal_due = False
        self.modified = True  # whoever saves, the new value must reach the browser

    async def asave(self, must_create: bool = False) -> None:
        self.save(must_create)

    def create(self) -> None:
        """Start a new, empty session and seal it."""
        self._session_cache = self._forget()
        self.save()

    async def acreate(self) -> None:
        self.create()

    # -- renewal ----------------------------------------------------------------------

    def renew_token(self) -> None:
        """Seal the session again (a fresh nonce), so the cookie changes.

        The previous value still opens until its deadlines: nothing on the
        server can end it.
        """
        self._get_session()
        self.state.renewed = True
        self.modified = True

    async def arenew_token(self) -> None:
        self.renew_token()

    def cycle_key(self) -> None:
        """Same as :meth:`renew_token`."""
        self.renew_token()

    async def acycle_key(self) -> None:
        self.renew_token()

    def restart_lifetime(self) -> None:
        """Start a new absolute lifetime now (done at every login)."""
        self._get_session()
        self._life = Lifetime.starting(timezone.now())
        self.modified = True

    # -- ending -----------------------------------------------------------------------

    def delete(self, session_key: str | None = None) -> None:
        """Forget this request's session; the middleware clears the cookie.

        Another value than the current one names nothing that could be
        deleted, and is ignored.
        """
        if session_key is not None and session_key != self.session_key:
            return
        state = self.state
        state.ended = state.ended or self.session_key is not None
        self._session_cache = self._forget()
        self.modified = True

    async def adelete(self, session_key: str | None = None) -> None:
        self.delete(session_key)

    def flush(self) -> None:
        """End the session for this browser and start an empty one."""
        self._get_session()  # a live session, or a cookie that did not open
        self.state.renewed = True
        self.clear()
        self.delete()

    async def aflush(self) -> None:
        self.flush()

    async def adelete_test_cookie(self) -> None:
        # Django's twin forgets to mark the session modified; the sync one does.
        self.delete_test_cookie()

    @classmethod
    def clear_expired(cls) -> None:
        """Nothing to do: expired sessions are cookies the server no longer opens."""

    @classmethod
    async def aclear_expired(cls) -> None:
        """Nothing to do, as :meth:`clear_expired`."""

    # -- expiry -----------------------------------------------------------------------

    @property
    def created_at(self) -> datetime | None:
        """When this session's current lifetime began (None before it is sealed)."""
        self._session  # noqa: B018 - make sure the cookie is opened first
        return None if self._life is None else self._life.created

    @property
    def absolute_expiry(self) -> datetime | None:
        """The hard deadline; activity never moves it (None before it is sealed)."""
        self._session  # noqa: B018
        return None if self._life is None else self._life.absolute

    @property
    def idle_expiry(self) -> datetime | None:
        """When the session ends without further requests; None with no idle timeout."""
        idle = lifetime.idle_seconds(
            self._session.get("_session_expiry"), conf.get("IDLE_TIMEOUT")
        )
        if idle is None or self._life is None:
            return None
        return self._life.last_seen + timedelta(seconds=idle)

    def _expiry_kwargs(self, kwargs: dict[str, Any]) -> tuple[datetime, Any]:
        modification = kwargs.get("modification") or timezone.now()
        if "expiry" in kwargs:
            return modification, kwargs["expiry"]
        return modification, self.get("_session_expiry")

    def get_expiry_date(self, **kwargs: Any) -> datetime:
        """When the session ends if a request arrives at ``modification`` (default: now)."""
        modification, expiry = self._expiry_kwargs(kwargs)
        absolute = (self._life or Lifetime.starting(modification)).absolute
        return lifetime.deadline(
            absolute,
            lifetime.fixed_deadline(expiry, conf.use_tz()),
            modification,
            lifetime.idle_seconds(expiry, conf.get("IDLE_TIMEOUT")),
        )

    def get_expiry_age(self, **kwargs: Any) -> int:
        """Seconds from ``modification`` (default: now) until the session ends."""
        modification = kwargs.get("modification") or timezone.now()
        end = self.get_expiry_date(**{**kwargs, "modification": modification})
        return lifetime.seconds_until(end, modification)

    async def aget_expiry_date(self, **kwargs: Any) -> datetime:
        return self.get_expiry_date(**kwargs)

    async def aget_expiry_age(self, **kwargs: Any) -> int:
        return self.get_expiry_age(**kwargs)

    def _cookie_age(self, life: Lifetime) -> int | None:
        # Counted from the seal the cookie carries, as browsers count it.
        if self.get_expire_at_browser_close():
            return None
        expiry = self.get("_session_expiry")
        end = lifetime.deadline(
            life.absolute,
            lifetime.fixed_deadline(expiry, conf.use_tz()),
            life.last_seen,
            lifetime.idle_seconds(expiry, conf.get("IDLE_TIMEOUT")),
        )
        return max(0, lifetime.seconds_until(end, life.last_seen))

    def get_cookie_age(self) -> int | None:
        """Max-Age for the cookie: None for a browser session, otherwise up to
        the earliest deadline as of the last seal. Unlike the server-side
        engines' cookie this includes the idle deadline, since every move of
        it sends a new cookie."""
        return self._cookie_age(self._life or Lifetime.starting(timezone.now()))

    # -- a user's sessions: none to find ----------------------------------------------

    @classmethod
    def guard(cls) -> AbstractContextManager[None]:
        """No store that could fail: a context that changes nothing."""
        return nullcontext()

    @classmethod
    def _no_index(cls) -> NoReturn:
        raise NotImplementedError(
            "The cookie session engine keeps nothing on the server, so it cannot "
            "list or revoke a user's sessions; use the db or cache engine for that."
        )

    @classmethod
    def user_sessions(cls, user_id: Any) -> list[SessionInfo]:
        cls._no_index()

    @classmethod
    async def auser_sessions(cls, user_id: Any) -> list[SessionInfo]:
        cls._no_index()

    @classmethod
    def revoke_keys(cls, key_hashes: Any) -> int:
        cls._no_index()

    @classmethod
    async def arevoke_keys(cls, key_hashes: Any) -> int:
        cls._no_index()

    @classmethod
    def revoke_user(cls, user_id: Any, keep_hash: str | None = None) -> int:
        cls._no_index()

    @classmethod
    async def arevoke_user(cls, user_id: Any, keep_hash: str | None = None) -> int:
        cls._no_index()
