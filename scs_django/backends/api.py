"""The part of Django's ``SessionBase`` API that needs no store: how a
session is named (tokens and their hashes) and when it ends, read from the
:class:`~scs_django.backends.held.Held` lifetime."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.utils import timezone

from .. import tokens
from .held import Held, RequestState
from .remember import RememberMe


class SessionAPI(RememberMe):
    """Tokens, expiry and ``modified`` for
    :class:`~scs_django.backends.base.ScsSessionStore`, which sets the
    attributes declared here."""

    _held: Held
    state: RequestState
    _hash_of: str | None
    _hash: str | None
    _renaming_from: str | None
    _cookie_due: bool

    if TYPE_CHECKING:
        # SessionBase's private data cache, which django-stubs leaves out.
        _session: dict[str, Any]

        async def _aget_session(self, no_load: bool = False) -> dict[str, Any]: ...

    # Django's SessionMiddleware saves and sends the cookie when ``modified``:
    # a renewal written on the spot leaves nothing to save, but its new token
    # must still reach the browser, so it reads as modified while the write
    # itself is skipped (see _saving()).
    @property
    def modified(self) -> bool:
        return self._modified or self._cookie_due

    @modified.setter
    def modified(self, value: bool) -> None:
        self._modified = value

    # -- tokens ------------------------------------------------------------------

    def _validate_session_key(self, key: Any) -> bool:
        return tokens.is_well_formed(key)

    # The token, kept in an attribute of ours instead of SessionBase's private
    # one, so that a store can be made (on every request) with one check of
    # the cookie instead of three calls deep; assignments still validate.
    _token: str | None = None

    def _get_token(self) -> str | None:
        return self._token

    def _set_token(self, value: Any) -> None:
        self._token = value if self._validate_session_key(value) else None

    session_key = property(_get_token)
    _session_key = property(_get_token, _set_token)

    def _get_new_session_key(self) -> str:
        # No exists() round trip: creation is an insert that fails on a clash.
        return tokens.new_token()

    async def _aget_new_session_key(self) -> str:
        return tokens.new_token()

    @property
    def key_hash(self) -> str | None:
        """SHA-256 hex of the current token: the only key the store ever sees."""
        key = self._token
        if key is None:
            return None
        if self._hash_of != key:
            self._hash_of, self._hash = key, tokens.hash_token(key)
        return self._hash

    @property
    def stored_hash(self) -> str | None:
        """The hash the store holds this session under right now: the previous
        token's while a renewal waits for the end of the request."""
        return self._renaming_from or self.key_hash

    def _renewal_token(self, old_hash: str) -> tuple[str, str]:
        """The token (and its hash) that replaces the one hashed to ``old_hash``."""
        token = tokens.new_token()
        return token, tokens.hash_token(token)

    # -- expiry ------------------------------------------------------------------

    def restart_lifetime(self) -> None:
        """Start a new absolute lifetime now (done at every login)."""
        self._session  # noqa: B018 - make sure the data is loaded first
        self._held.start(timezone.now())
        self.modified = True

    @property
    def created_at(self) -> datetime | None:
        """When this session's current lifetime began (None before it is stored)."""
        self._session  # noqa: B018
        return self._held.created_at

    @property
    def absolute_expiry(self) -> datetime | None:
        """The hard deadline; activity never moves it (None before it is stored)."""
        self._session  # noqa: B018
        return self._held.absolute_expiry

    @property
    def idle_expiry(self) -> datetime | None:
        """When the session ends without further requests; None with no idle timeout."""
        return self._held.idle_expiry(
            self._session.get("_session_expiry"), counting=self.state.count_activity
        )

    def _expiry_kwargs(self, kwargs: dict[str, Any]) -> tuple[datetime, Any]:
        modification = kwargs.get("modification") or timezone.now()
        if "expiry" in kwargs:
            return modification, kwargs["expiry"]
        return modification, self.get("_session_expiry")

    def get_expiry_date(self, **kwargs: Any) -> datetime:
        """When the session ends if a request arrives at ``modification`` (default: now)."""
        return self._held.end_if_seen_at(*self._expiry_kwargs(kwargs))

    def get_expiry_age(self, **kwargs: Any) -> int:
        """Seconds from ``modification`` (default: now) until the session ends."""
        modification, expiry = self._expiry_kwargs(kwargs)
        end = self._held.end_if_seen_at(modification, expiry)
        delta = end - modification
        return delta.days * 86400 + delta.seconds

    async def aget_expiry_date(self, **kwargs: Any) -> datetime:
        await self._aget_session()
        return self.get_expiry_date(**kwargs)

    async def aget_expiry_age(self, **kwargs: Any) -> int:
        await self._aget_session()
        return self.get_expiry_age(**kwargs)

    def get_cookie_age(self) -> int | None:
        """Max-Age for the cookie: None for a browser session, never past the
        absolute (or fixed) deadline. Idle deadlines are enforced by the store,
        so touches need no new cookie."""
        if self.get_expire_at_browser_close():
            return None
        return self._held.cookie_age(self.get("_session_expiry"))

    @property
    def needs_touch(self) -> bool:
        """True when the idle deadline is due to move forward at the end of the request."""
        return (
            self._held.needs_touch
            and self.state.count_activity
            and self.session_key is not None
        )
