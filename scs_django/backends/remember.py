"""Remember me: a session that ends with the browser, or one that outlives it.

One call after ``login()`` chooses, as Go's SCS does with ``RememberMe``::

    login(request, user)
    request.session.remember_me(form.cleaned_data["remember"], idle=30 * 60)

A remembered session gets a persistent cookie (``Max-Age`` up to its absolute
deadline) and the site's idle timeout, even where
``SESSION_EXPIRE_AT_BROWSER_CLOSE`` is on. A forgotten one gets a cookie the
browser drops when it closes and, with ``idle``, that shorter idle timeout.
The absolute deadline bounds both: nothing here extends a session.

The choice is kept in the session's data (``_scs_remember``, and
``_session_expiry`` for ``idle``), so it survives the token renewal of a later
login and reaches every engine, the cookie engine included.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.sessions.backends.base import SessionBase

#: The session key that holds the choice: True, False, or absent (the site's
#: ``SESSION_EXPIRE_AT_BROWSER_CLOSE`` and ``set_expiry()`` decide).
REMEMBER_KEY = "_scs_remember"


def _idle(idle: int | None) -> int | None:
    if idle is None:
        return None
    if isinstance(idle, bool) or not isinstance(idle, int) or idle <= 0:
        raise ValueError(f"idle must be a positive number of seconds, not {idle!r}")
    return idle


class RememberMe(SessionBase):
    """``remember_me()`` and the cookie rule it sets, for every engine."""

    def remember_me(self, remember: bool, *, idle: int | None = None) -> None:
        """Keep the session across browser restarts (``remember``) or end it
        with the browser, then after ``idle`` seconds without a request when
        given. Call it after ``login()``, which starts a new lifetime."""
        seconds = None if remember else _idle(idle)
        self[REMEMBER_KEY] = bool(remember)
        # None: the site's idle timeout; an int: this session's own.
        self.set_expiry(seconds)

    async def aremember_me(self, remember: bool, *, idle: int | None = None) -> None:
        seconds = None if remember else _idle(idle)
        await self.aset(REMEMBER_KEY, bool(remember))
        await self.aset_expiry(seconds)

    def get_expire_at_browser_close(self) -> bool:
        remembered = self.get(REMEMBER_KEY)
        if remembered is not None:
            return not remembered
        return _browser_close(self.get("_session_expiry"))

    async def aget_expire_at_browser_close(self) -> bool:
        remembered = await self.aget(REMEMBER_KEY)
        if remembered is not None:
            return not remembered
        return _browser_close(await self.aget("_session_expiry"))


def _browser_close(expiry: Any) -> bool:
    # Django's rule, for a session that made no choice.
    if expiry is None:
        return bool(settings.SESSION_EXPIRE_AT_BROWSER_CLOSE)
    return bool(expiry == 0)
