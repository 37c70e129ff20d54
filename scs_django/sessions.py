"""A user's sessions: list them, end them ("your devices", "log out everywhere else").

Everything here goes through the engine named by ``SESSION_ENGINE``, so it
works on every engine that can list a user's sessions. Ending sessions sends
:data:`scs_django.signals.session_revoked`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass, fields
from typing import Any, cast

from django.conf import settings

from . import conf
from .backends.base import ScsSessionStore, SessionInfo
from .backends.steps import Io, Steps, arun, run
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
    return run(_listing(user, request))


async def afor_user(user: Any, request: Any = None) -> list[UserSession]:
    """Async twin of :func:`for_user`."""
    return await arun(_listing(user, request))


def _listing(user: Any, request: Any) -> Steps[list[UserSession]]:
    if user.pk is None:
        return []
    store = conf.session_engine()
    with store.guard():
        infos = yield Io(store.user_sessions, store.auser_sessions, user.pk)
    return _listed(infos, request)


def _others(infos: Iterable[SessionInfo], keep_hash: str | None) -> list[str]:
    return [info.key_hash for info in infos if info.key_hash != keep_hash]


def _revoked(store: Any, user: Any, count: int, key_hashes: Iterable[str]) -> Io:
    kwargs = {
        "sender": store,
        "user": user,
        "count": count,
        "key_hashes": tuple(key_hashes),
    }
    return Io(
        functools.partial(session_revoked.send, **kwargs),
        functools.partial(session_revoked.asend, **kwargs),
    )


def revoke(user: Any, keep: Any = None) -> int:
    """End every live session of ``user`` except ``keep``; return how many ended.

    ``keep`` is a session store, usually ``request.session`` ("log out
    everywhere else"), or None to end them all. Raises
    :class:`~scs_django.exceptions.SessionStoreUnavailable` (a 503) when the
    store is unavailable, ``FAIL_OPEN`` or not.
    """
    return run(_revoking(user, keep))


async def arevoke(user: Any, keep: Any = None) -> int:
    """Async twin of :func:`revoke`."""
    return await arun(_revoking(user, keep))


def _revoking(user: Any, keep: Any) -> Steps[int]:
    # Under FAIL_OPEN, a request whose session could not be loaded has an
    # anonymous user: "log out everywhere else" would end nothing and pass.
    # request.user loads request.session on first use, so only after asking
    # for its pk is it known whether the store could be reached.
    anonymous = user.pk is None
    if isinstance(keep, ScsSessionStore):
        keep.refuse_unreached()
    if anonymous:
        return 0
    store = conf.session_engine()
    keep_hash = _stored_hash(keep)
    # The hashes are listed only for receivers; the revoke itself goes by user,
    # so a session started meanwhile ends too.
    listening = session_revoked.has_listeners(store)
    hashes: list[str] = []
    with store.guard():
        if listening:
            infos = yield Io(store.user_sessions, store.auser_sessions, user.pk)
            hashes = _others(infos, keep_hash)
        count: int = yield Io(store.revoke_user, store.arevoke_user, user.pk, keep_hash)
    if count and listening:
        yield _revoked(store, user, count, hashes)
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


def revoke_hashes(user: Any, key_hashes: list[str]) -> int:
    """End the live sessions of ``user`` stored under ``key_hashes`` (as the
    admin holds them); return how many ended."""
    return run(_ending(user, key_hashes, conf.session_engine()))


def _ending(user: Any, key_hashes: list[str], store: Any) -> Steps[int]:
    count = 0
    if key_hashes:
        with store.guard():
            count = yield Io(store.revoke_keys, store.arevoke_keys, key_hashes)
    if count:
        yield _revoked(store, user, count, key_hashes)
    return count


def revoke_session(hash_prefix_or_id: str | int, *, user: Any) -> int:
    """End one live session of ``user``; return 1, or 0 when none matched.

    The session is named by a prefix of its hash (at least 8 hex characters,
    e.g. :attr:`UserSession.hash_prefix`) that must match only one of the
    user's sessions, or by its ``id`` on the database engines. Raises
    ``ValueError`` for anything else.
    """
    return run(_revoking_one(hash_prefix_or_id, user))


async def arevoke_session(hash_prefix_or_id: str | int, *, user: Any) -> int:
    """Async twin of :func:`revoke_session`."""
    return await arun(_revoking_one(hash_prefix_or_id, user))


def _revoking_one(hash_prefix_or_id: str | int, user: Any) -> Steps[int]:
    store = conf.session_engine()
    if user.pk is None:
        return 0
    with store.guard():
        if _is_id(hash_prefix_or_id):
            rows = _model(store).objects.filter(pk=hash_prefix_or_id, user_id=user.pk)
            hashes = rows.values_list("key_hash", flat=True)
            hashes = yield Io(list, _alist, hashes)
        else:
            prefix = _prefix(cast(str, hash_prefix_or_id))
            infos = yield Io(store.user_sessions, store.auser_sessions, user.pk)
            hashes = _matching(infos, prefix)
    return (yield from _ending(user, hashes, store))


async def _alist(rows: Any) -> list[Any]:
    return [row async for row in rows]
