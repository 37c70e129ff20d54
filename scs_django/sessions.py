"""A user's sessions: list them, end them ("your devices", "log out everywhere else").

Everything here goes through the engine named by ``SESSION_ENGINE``, so it
works on every engine that can list a user's sessions. Ending sessions sends
:data:`scs_django.signals.session_revoked`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, fields
from typing import Any, cast

from django.conf import settings

from . import conf
from .backends.base import ScsSessionStore, SessionInfo
from .signals import session_revoked

_HASH_PREFIX = re.compile(r"[0-9a-f]{8,64}")


@dataclass(frozen=True)
class UserSession(SessionInfo):
    """One of a user's live sessions, as :func:`for_user` lists it."""

    is_current: bool = False


def _stored_hash(session: Any) -> str | None:
    # While a renewal waits for the end of the request, the session is still
    # stored under its previous hash.
    return getattr(session, "stored_hash", None)


def _listed(infos: Iterable[SessionInfo], request: Any) -> list[UserSession]:
    current = _stored_hash(getattr(request, "session", None))
    names = [f.name for f in fields(SessionInfo)]
    listed = [
        UserSession(
            **{name: getattr(info, name) for name in names},
            is_current=current is not None and info.key_hash == current,
        )
        for info in infos
    ]
    return sorted(listed, key=lambda s: s.last_seen, reverse=True)


def for_user(user: Any, request: Any = None) -> list[UserSession]:
    """The live sessions of ``user``, most recently seen first.

    With ``request``, the session making it is marked ``is_current``.
    """
    if user.pk is None:
        return []
    store = conf.session_engine()
    with store.guard():
        return _listed(store.user_sessions(user.pk), request)


async def afor_user(user: Any, request: Any = None) -> list[UserSession]:
    """Async twin of :func:`for_user`."""
    if user.pk is None:
        return []
    store = conf.session_engine()
    with store.guard():
        return _listed(await store.auser_sessions(user.pk), request)


def _others(infos: Iterable[SessionInfo], keep_hash: str | None) -> list[str]:
    return [info.key_hash for info in infos if info.key_hash != keep_hash]


def _refuse_unreached(keep: Any) -> None:
    # Under FAIL_OPEN, a request whose session could not be loaded has an
    # anonymous user: "log out everywhere else" would end nothing and pass.
    if isinstance(keep, ScsSessionStore):
        keep.refuse_unreached()


def revoke(user: Any, keep: Any = None) -> int:
    """End every live session of ``user`` except ``keep``; return how many ended.

    ``keep`` is a session store, usually ``request.session`` ("log out
    everywhere else"), or None to end them all. Raises
    :class:`~scs_django.exceptions.SessionStoreUnavailable` (a 503) when the
    store is unavailable, ``FAIL_OPEN`` or not.
    """
    # request.user loads request.session on first use: only then is it known
    # whether the store could be reached.
    if user.pk is None:
        _refuse_unreached(keep)
        return 0
    _refuse_unreached(keep)
    store = conf.session_engine()
    keep_hash = _stored_hash(keep)
    # The hashes are listed only for receivers; the revoke itself goes by user,
    # so a session started meanwhile ends too.
    listening = session_revoked.has_listeners(store)
    with store.guard():
        hashes = _others(store.user_sessions(user.pk), keep_hash) if listening else []
        count: int = store.revoke_user(user.pk, keep_hash=keep_hash)
    if count and listening:
        session_revoked.send(
            sender=store, user=user, count=count, key_hashes=tuple(hashes)
        )
    return count


async def arevoke(user: Any, keep: Any = None) -> int:
    """Async twin of :func:`revoke`."""
    if user.pk is None:
        _refuse_unreached(keep)
        return 0
    _refuse_unreached(keep)
    store = conf.session_engine()
    keep_hash = _stored_hash(keep)
    listening = session_revoked.has_listeners(store)
    with store.guard():
        hashes = (
            _others(await store.auser_sessions(user.pk), keep_hash) if listening else []
        )
        count: int = await store.arevoke_user(user.pk, keep_hash=keep_hash)
    if count and listening:
        await session_revoked.asend(
            sender=store, user=user, count=count, key_hashes=tuple(hashes)
        )
    return count


def _prefix(value: str) -> str:
    prefix = value.strip().lower()
    if not _HASH_PREFIX.fullmatch(prefix):
        raise ValueError(
            "A session is named by at least 8 hexadecimal characters of its hash "
            f"(UserSession.hash_prefix), not {value[:70]!r}."
        )
    return prefix


def _matching(infos: Iterable[SessionInfo], prefix: str) -> list[str]:
    hashes = [info.key_hash for info in infos if info.key_hash.startswith(prefix)]
    if len(hashes) > 1:
        raise ValueError(
            f"{len(hashes)} sessions of this user start with {prefix!r}; "
            "give more characters of the hash."
        )
    return hashes


def _is_id(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(
            f"A session is named by a hash prefix (str) or a session id (int), "
            f"not {type(value).__name__}."
        )
    return isinstance(value, int)


def _model(store: Any) -> Any:
    get_model_class = getattr(store, "get_model_class", None)
    if get_model_class is None:
        raise ValueError(
            f"{settings.SESSION_ENGINE} stores no session ids; "
            "name the session by its hash prefix instead."
        )
    return get_model_class()


def _end(user: Any, key_hashes: list[str], store: Any = None) -> int:
    # Also used by the admin, which holds the hashes already.
    store = store or conf.session_engine()
    with store.guard():
        count = store.revoke_keys(key_hashes) if key_hashes else 0
    if count:
        session_revoked.send(
            sender=store, user=user, count=count, key_hashes=tuple(key_hashes)
        )
    return count


def revoke_session(hash_prefix_or_id: str | int, *, user: Any) -> int:
    """End one live session of ``user``; return 1, or 0 when none matched.

    The session is named by a prefix of its hash (at least 8 hex characters,
    e.g. :attr:`UserSession.hash_prefix`) that must match only one of the
    user's sessions, or by its ``id`` on the database engines. Raises
    ``ValueError`` for anything else.
    """
    store = conf.session_engine()
    if user.pk is None:
        return 0
    with store.guard():
        if _is_id(hash_prefix_or_id):
            hashes = list(
                _model(store)
                .objects.filter(pk=hash_prefix_or_id, user_id=user.pk)
                .values_list("key_hash", flat=True)
            )
        else:
            prefix = _prefix(cast(str, hash_prefix_or_id))
            hashes = _matching(store.user_sessions(user.pk), prefix)
    return _end(user, hashes, store)


async def arevoke_session(hash_prefix_or_id: str | int, *, user: Any) -> int:
    """Async twin of :func:`revoke_session`."""
    store = conf.session_engine()
    if user.pk is None:
        return 0
    with store.guard():
        if _is_id(hash_prefix_or_id):
            rows = _model(store).objects.filter(pk=hash_prefix_or_id, user_id=user.pk)
            hashes = [h async for h in rows.values_list("key_hash", flat=True)]
        else:
            prefix = _prefix(cast(str, hash_prefix_or_id))
            hashes = _matching(await store.auser_sessions(user.pk), prefix)
        count = await store.arevoke_keys(hashes) if hashes else 0
    if count:
        await session_revoked.asend(
            sender=store, user=user, count=count, key_hashes=tuple(hashes)
        )
    return count
