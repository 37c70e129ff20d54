"""The storage interface every scs_django engine implements.

An engine is a :class:`~scs_django.backends.base.ScsSessionStore` subclass
that fills in the primitives of :class:`StoragePrimitives`. Each primitive
works on one session named by its token hash and is told the time, so the
engine never decides a deadline: ``base.py`` does, the same way for every
engine. The ``a``-prefixed twins default to running the sync primitive in a
thread; an engine with an async client overrides them.

The per-user class methods are optional (an engine without a per-user index
leaves them raising ``NotImplementedError``); ``scs_django.sessions`` wraps
them and sends the signals.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from asgiref.sync import sync_to_async

from .. import tokens
from ..exceptions import SessionStoreUnavailable


class Record(NamedTuple):
    """One session as a store writes it."""

    payload: bytes
    created_at: datetime
    absolute_expiry: datetime
    expiry: datetime  # min(idle, fixed, absolute): when the store forgets it
    last_seen: datetime
    version: int  # one more than the version it replaces
    user_id: Any
    # Client metadata (SCS["RECORD_IP"], ["RECORD_USER_AGENT"]); stored at
    # creation and renewal.
    ip: str | None = None
    user_agent: str = ""
    # The store already links this session to user_id with this absolute
    # deadline: it was read so, and this request changed neither. An engine
    # that keeps a per-user index may leave the index as it is.
    linked: bool = False


class Loaded(NamedTuple):
    """What a store returns for a live session.

    ``last_seen`` may be given as integer microseconds since the epoch by a
    store that keeps it so (Redis): the read path compares integers, and a
    datetime is built only if someone asks for one."""

    payload: bytes
    last_seen: datetime | int
    version: int


@dataclass(frozen=True)
class SessionInfo:
    """What may be shown about a stored session: never its token or its data."""

    key_hash: str = field(repr=False)  # full hash: kept out of repr and logs
    user_id: Any
    created_at: datetime
    last_seen: datetime
    expiry: datetime
    absolute_expiry: datetime
    ip: str | None = None
    user_agent: str = ""

    @property
    def hash_prefix(self) -> str:
        """The first 8 hex characters of the hash: enough to name it, safe to show."""
        return tokens.hash_prefix(self.key_hash)

    def __str__(self) -> str:
        return f"session {self.hash_prefix}"


def wait_for_lock(take: Callable[[], bool], wait_seconds: float) -> None:
    """Call ``take()`` until it takes a lock, pausing a little longer each time;
    :class:`SessionStoreUnavailable` after ``wait_seconds``."""
    deadline = time.monotonic() + wait_seconds
    pause = 0.001
    while not take():
        if time.monotonic() > deadline:
            raise SessionStoreUnavailable(
                "A session stayed locked by another writer for longer than "
                f"{wait_seconds:g} s."
            )
        # Jittered, so that the waiters do not come back in step.
        time.sleep(pause * (0.5 + random.random()))  # noqa: S311
        pause = min(pause * 2, 0.02)


def unavailable(exc: BaseException) -> SessionStoreUnavailable:
    """The :class:`SessionStoreUnavailable` that stands for the client's ``exc``."""
    return SessionStoreUnavailable(
        f"The session store is unavailable ({exc.__class__.__name__})."
    )


class Guard:
    """A context in which the errors of an unavailable store become
    :class:`SessionStoreUnavailable`; with a ``state``, it also records that
    the store failed during the request."""

    # A class rather than a @contextmanager: this wraps every store call, and
    # a generator-based context costs several times more.
    __slots__ = ("is_unavailable", "state")

    def __init__(
        self, is_unavailable: Callable[[BaseException], bool], state: Any = None
    ) -> None:
        self.is_unavailable = is_unavailable
        self.state = state

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, exc: Any, traceback: Any) -> None:
        if kind is None:
            return
        if issubclass(kind, SessionStoreUnavailable):
            if self.state is not None:
                self.state.store_error = True
        elif self.is_unavailable(exc):
            if self.state is not None:
                self.state.store_error = True
            raise unavailable(exc) from exc


class StoragePrimitives:
    """What an engine implements: six operations on one session, and the
    optional per-user ones.

    Every primitive is given the token hash (never the token) and, where a
    deadline matters, ``now``. A session is *live* when its stored expiry is
    after ``now``; primitives act on live sessions only, and report "gone"
    rather than raise when there is none.
    """

    # Exceptions of the engine's client that mean "the store is unreachable".
    unavailable_errors: tuple[type[BaseException], ...] = ()
    # Set by ``_fetch`` to the hash it was given when the session is still
    # stored but past its expiry (where the engine can tell), so that loading
    # reports it with the ``session_expired`` signal rather than as unknown.
    _dead_hash: str | None = None

    @classmethod
    def is_unavailable(cls, exc: BaseException) -> bool:
        """True when ``exc`` means the store cannot be reached or cannot answer
        now (answered 503), rather than a bug or a schema error (a 500)."""
        return isinstance(exc, cls.unavailable_errors)

    @classmethod
    def guard(cls) -> Guard:
        """A context in which the errors of an unavailable store become
        :class:`SessionStoreUnavailable`, for work on no one session."""
        return Guard(cls.is_unavailable)

    # -- one session -------------------------------------------------------------

    def _fetch(self, key_hash: str, now: datetime) -> Loaded | None:
        """The live session stored under ``key_hash``."""
        raise NotImplementedError

    async def _afetch(self, key_hash: str, now: datetime) -> Loaded | None:
        return await sync_to_async(self._fetch)(key_hash, now)

    def _insert(self, key_hash: str, record: Record) -> bool:
        """Store a new session; False when ``key_hash`` is taken."""
        raise NotImplementedError

    async def _ainsert(self, key_hash: str, record: Record) -> bool:
        return await sync_to_async(self._insert)(key_hash, record)

    def _update(
        self,
        key_hash: str,
        record: Record,
        now: datetime,
        version: int | None,
        new_hash: str | None = None,
    ) -> bool:
        """Overwrite a live session still at ``version`` (renaming it to
        ``new_hash`` if given), optimistically: one attempt, no lock.

        False when no live session at that version is stored under
        ``key_hash``; raises ``CreateError`` when ``new_hash`` is taken.
        """
        raise NotImplementedError

    async def _aupdate(
        self,
        key_hash: str,
        record: Record,
        now: datetime,
        version: int | None,
        new_hash: str | None = None,
    ) -> bool:
        return await sync_to_async(self._update)(
            key_hash, record, now, version, new_hash
        )

    def _update_locked(
        self,
        key_hash: str,
        now: datetime,
        new_hash: str | None,
        apply: Callable[[Loaded], Record | None],
    ) -> Record | None:
        """Lock the live session stored under ``key_hash`` against other
        writers, read its latest state from the store of record, write
        ``apply(latest)`` (renamed to ``new_hash`` if given) and return it.

        Must finish whatever other requests do meanwhile: None only when the
        session is gone (or ``apply`` returns None); raises ``CreateError``
        when ``new_hash`` is taken.
        """
        raise NotImplementedError

    async def _aupdate_locked(
        self,
        key_hash: str,
        now: datetime,
        new_hash: str | None,
        apply: Callable[[Loaded], Record | None],
    ) -> Record | None:
        return await sync_to_async(self._update_locked)(key_hash, now, new_hash, apply)

    def _bump(self, key_hash: str, now: datetime, expiry: datetime) -> bool:
        """Set last-seen and expiry of a live session, leaving its data alone;
        False when it is gone."""
        raise NotImplementedError

    async def _abump(self, key_hash: str, now: datetime, expiry: datetime) -> bool:
        return await sync_to_async(self._bump)(key_hash, now, expiry)

    def _remove(self, key_hash: str) -> None:
        """Delete the session stored under ``key_hash``, if any."""
        raise NotImplementedError

    async def _aremove(self, key_hash: str) -> None:
        return await sync_to_async(self._remove)(key_hash)

    # -- a user's sessions -------------------------------------------------------

    @classmethod
    def user_sessions(cls, user_id: Any) -> list[SessionInfo]:
        """The live sessions of ``user_id``, in no particular order."""
        raise NotImplementedError

    @classmethod
    async def auser_sessions(cls, user_id: Any) -> list[SessionInfo]:
        return await sync_to_async(cls.user_sessions)(user_id)

    @classmethod
    def revoke_keys(cls, key_hashes: Iterable[str]) -> int:
        """End the live sessions stored under ``key_hashes``; returns how many."""
        raise NotImplementedError

    @classmethod
    async def arevoke_keys(cls, key_hashes: Iterable[str]) -> int:
        return await sync_to_async(cls.revoke_keys)(key_hashes)

    @classmethod
    def revoke_user(cls, user_id: Any, keep_hash: str | None = None) -> int:
        """End every live session of ``user_id`` but ``keep_hash``'s; returns how many.

        Engines that can should override this with a single operation.
        """
        return cls.revoke_keys(
            info.key_hash
            for info in cls.user_sessions(user_id)
            if info.key_hash != keep_hash
        )

    @classmethod
    async def arevoke_user(cls, user_id: Any, keep_hash: str | None = None) -> int:
        return await sync_to_async(cls.revoke_user)(user_id, keep_hash)
