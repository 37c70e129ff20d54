""":class:`ScsSessionStore`: one request's session, the same for every engine.

Read it top to bottom as a request goes: the middleware makes a store for the
cookie's token (``state`` carries what they tell each other), the first
access loads it and checks its deadlines, the view reads and writes, login
renews the token, logout ends the session, and the middleware saves or
touches at the end. Engines supply only the storage primitives of
:class:`~scs_django.backends.engine.StoragePrimitives`; tokens, deadlines and
the order of operations live here, so every engine keeps the same
invariants. Each I/O method is written once, as steps that
:mod:`~scs_django.backends.steps` runs sync or async.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.contrib.sessions.backends.base import CreateError, UpdateError
from django.utils import timezone

from .. import codec, conf, tokens
from ..exceptions import SessionStoreUnavailable
from ..signals import session_created, session_expired
from .engine import (
    Loaded,
    Record,
    SessionInfo,
    unavailable,
    wait_for_lock,
)
from .held import Held, RequestState
from .steps import Io, Steps, arun, run
from .writes import CREATE_ATTEMPTS, Writes

__all__ = [
    "Loaded",
    "Record",
    "RequestState",
    "ScsSessionStore",
    "SessionInfo",
    "wait_for_lock",
]

logger = logging.getLogger("scs_django")
security_logger = logging.getLogger("scs_django.security")


class ScsSessionStore(Writes):
    """Django's ``SessionBase`` with hashed tokens and idle/absolute deadlines."""

    if TYPE_CHECKING:
        # SessionBase's private data cache, which django-stubs leaves out.
        _session_cache: dict[str, Any]
        _session: dict[str, Any]

        def _get_session(self, no_load: bool = False) -> dict[str, Any]: ...
        async def _aget_session(self, no_load: bool = False) -> dict[str, Any]: ...

    # Per-request defaults live on the class, so that making a store (which
    # every request does, most never touching the session) sets little.
    _hash_of: str | None = None
    _hash: str | None = None
    # A renewal not yet written: the hash the session is stored under.
    _renaming_from: str | None = None
    # The store failed at load under FAIL_OPEN: the cookie's session may
    # well be alive, so it cannot be ended or renewed now.
    _unreached = False
    # Written already; only the new cookie is due (see ``modified``).
    _cookie_due = False

    def __init__(self, session_key: str | None = None) -> None:
        # SessionBase.__init__, but for its import_string() of the serializer
        # on every request: ``serializer`` is looked up when asked.
        if session_key is not None and self._validate_session_key(session_key):
            self._token = session_key
        self.accessed = False
        self._modified = False
        self.state = RequestState()
        self._held = Held()

    @property
    def serializer(self) -> Any:
        """The ``SESSION_SERIALIZER`` class, as ``SessionBase`` offers it."""
        return codec.serializer_class()

    # -- 1. loading ---------------------------------------------------------------

    def load(self) -> dict[str, Any]:
        return run(self._loading())

    async def aload(self) -> dict[str, Any]:
        return await arun(self._loading())

    def ensure_loaded(self) -> None:
        """Load the session unless this request did already: what tells an
        unknown or expired token from a live session."""
        self._get_session()

    def _loading(self) -> Steps[dict[str, Any]]:
        key_hash = self.key_hash
        if key_hash is None:
            return self._forget()
        now = conf.now()
        self._dead_hash = None
        try:
            loaded = yield Io(self._fetch, self._afetch, key_hash, now)
            data, expired = self._adopt(key_hash, loaded, now)
            if expired:
                yield self._signal(session_expired, key_hash=key_hash)
        except Exception as exc:
            return self._unavailable_at_load(exc)
        return data

    def _adopt(
        self, key_hash: str, loaded: Loaded | None, now: datetime
    ) -> tuple[dict[str, Any], bool]:
        """The data of ``loaded`` with its lifetime held (empty when there is
        no live session), and whether a session was found past a deadline."""
        if loaded is None:
            return self._forget(), self._dead_hash == key_hash
        envelope = self._decode(loaded.payload, key_hash)
        if envelope is None:
            return self._forget(), False
        try:
            live = self._held.take(envelope, loaded, now, key_hash)
        except (OverflowError, ValueError, TypeError):
            # Deadlines no calendar holds, or a deadline that is not a date:
            # not an envelope this code wrote.
            security_logger.warning(
                "Session %s has impossible deadlines; treated as no session.",
                tokens.hash_prefix(key_hash),
            )
            return self._forget(), False
        if not live:
            return self._forget(), True
        return envelope.data, False

    def _unavailable_at_load(self, exc: Exception) -> dict[str, Any]:
        if not (isinstance(exc, SessionStoreUnavailable) or self.is_unavailable(exc)):
            raise exc  # a bug or a schema error: a 500 with its own traceback
        self.state.store_error = True
        self._unreached = True
        if not conf.get("FAIL_OPEN"):
            if isinstance(exc, SessionStoreUnavailable):
                raise exc
            raise unavailable(exc) from exc
        logger.warning("Session store unavailable; going on without a session.")
        return self._forget()

    def _forget(self) -> dict[str, Any]:
        self._session_key = None
        self._held = Held()
        self._renaming_from = None
        return {}

    def exists(self, session_key: str | None) -> bool:
        return run(self._existing(session_key))

    async def aexists(self, session_key: str | None) -> bool:
        return await arun(self._existing(session_key))

    def _existing(self, session_key: str | None) -> Steps[bool]:
        if not tokens.is_well_formed(session_key):
            return False
        key_hash, now = tokens.hash_token(session_key), timezone.now()
        with self._guard():
            found = yield Io(self._fetch, self._afetch, key_hash, now)
        return found is not None

    # -- 2. writing ------------------------------------------------------------------

    def save(self, must_create: bool = False) -> None:
        """Store the session: insert when ``must_create``, otherwise a conditional
        update that raises ``UpdateError`` when the session ended elsewhere."""
        run(self._saving(must_create))

    async def asave(self, must_create: bool = False) -> None:
        await arun(self._saving(must_create))

    def _saving(self, must_create: bool) -> Steps[None]:
        if self.session_key is None:
            return (yield from self._creating())
        if not must_create and self._cookie_due and not self._modified:
            # A renewal wrote everything and nothing changed since: only its
            # cookie is due (Django's middleware saves before sending it).
            return None
        data = yield Io(self._get_session, self._aget_session, must_create)
        if self.session_key is None:  # the token was unknown or expired
            return (yield from self._creating())
        now = timezone.now()
        if must_create:
            self._held.start(now)
        record = self._held.record(data, now, self.state.client, self._hash_now())
        with self._guard():
            if must_create:
                key_hash = self.key_hash
                if not (yield Io(self._insert, self._ainsert, key_hash, record)):
                    raise CreateError
            else:
                written = yield from self._storing(record, now)
                if written is None:
                    raise UpdateError
                record = written
        self._held.saved(record, self._hash_now())
        return None

    def create(self) -> None:
        run(self._creating())

    async def acreate(self) -> None:
        await arun(self._creating())

    def _creating(self) -> Steps[None]:
        for _ in range(CREATE_ATTEMPTS):
            self._session_key = tokens.new_token()
            try:
                yield from self._saving(must_create=True)
            except CreateError:
                continue
            except BaseException:
                # Nothing was stored (too large, not serialisable, store down):
                # leave no token behind that a later save would try to update.
                self._forget()
                raise
            self.modified = True
            yield self._signal(session_created, session=self)
            return None
        raise CreateError("Could not store a new session under a unique token.")

    def touch(self) -> None:
        """Move the idle deadline forward without rewriting data.

        Raises ``UpdateError`` when the session ended elsewhere meanwhile.
        """
        run(self._touching())

    async def atouch(self) -> None:
        await arun(self._touching())

    def _touching(self) -> Steps[None]:
        if not self.needs_touch:
            return None
        data = yield Io(self._get_session, self._aget_session)
        now = timezone.now()
        expiry = self._held.end_if_seen_at(now, data.get("_session_expiry"))
        with self._guard():
            touched = yield Io(self._bump, self._abump, self.key_hash, now, expiry)
        self._held.needs_touch = False
        self._held.last_seen = now
        if not touched:
            raise UpdateError
        return None

    # -- 3. renewal -------------------------------------------------------------------

    def renew_token(self) -> None:
        """Give the session a new token and kill the old one, keeping the data.

        On the store this is one operation (old key renamed to the new), so no
        moment exists where both tokens, or neither, are valid.
        """
        run(self._renewing())

    async def arenew_token(self) -> None:
        await arun(self._renewing())

    def cycle_key(self) -> None:
        """Same as :meth:`renew_token`."""
        self.renew_token()

    async def acycle_key(self) -> None:
        await self.arenew_token()

    def _renewing(self) -> Steps[None]:
        data = yield Io(self._get_session, self._aget_session)
        self.refuse_unreached()
        self.state.renewed = True
        self.modified = True
        source = self._renaming_from or self.key_hash
        if source is None:
            return (
                None  # nothing stored yet: the next save creates it under a new token
            )
        self._session_key, _ = self._renewal_token(source)
        self._renaming_from = source
        if self.state.defer_renewal:
            return None  # written with the request's final save
        now = timezone.now()
        record = self._held.record(data, now, self.state.client, self._hash_now())
        try:
            with self._guard():
                written = yield from self._renaming(source, record, now)
        except SessionStoreUnavailable:
            self.state.end_failed = True
            raise
        if written is None:
            # The session ended elsewhere (logout, revoke, expiry) while this
            # request held it: its data must not live on under a new token.
            logger.info("Session ended elsewhere before its token could be renewed.")
            self._session_cache = {}
            self._forget()
            return None
        self._held.saved(written, self._hash_now())
        self._modified, self._cookie_due = False, True
        return None

    # -- 4. ending ----------------------------------------------------------------------

    def delete(self, session_key: str | None = None) -> None:
        run(self._deleting(session_key))

    async def adelete(self, session_key: str | None = None) -> None:
        await arun(self._deleting(session_key))

    def _deleting(self, session_key: str | None) -> Steps[None]:
        if session_key is None:
            if self._renaming_from is not None:
                # A renewal waits for the end of the request: the session is
                # still stored under its previous hash only.
                with self._guard():
                    yield Io(self._remove, self._aremove, self._renaming_from)
                self._renaming_from = None
                return None
            session_key = self.session_key
        if not tokens.is_well_formed(session_key):
            return None
        with self._guard():
            yield Io(self._remove, self._aremove, tokens.hash_token(session_key))
        return None

    def flush(self) -> None:
        """Delete the stored session and start an empty one without a token."""
        run(self._flushing())

    async def aflush(self) -> None:
        await arun(self._flushing())

    def _flushing(self) -> Steps[None]:
        # The one lookup that tells a live session: ending an unknown one
        # writes nothing and sends no statement.
        yield Io(self._get_session, self._aget_session)
        self.refuse_unreached()
        state = self.state
        state.ended = (
            state.ended
            or self.session_key is not None
            or self._renaming_from is not None
        )
        state.renewed = True
        self.clear()
        try:
            yield from self._deleting(None)
        except SessionStoreUnavailable:
            state.end_failed = True
            raise
        self._forget()
        return None

    async def adelete_test_cookie(self) -> None:
        # Django's twin forgets to mark the session modified; the sync one does.
        await self.apop(self.TEST_COOKIE_NAME)

    def refuse_unreached(self) -> None:
        """Raise :class:`SessionStoreUnavailable` (and fail the request with a
        503) when the store could not be reached to load this session.

        Under FAIL_OPEN a failed load looks like "no session", but the
        cookie's session may be alive: ending, renewing or revoking must not
        pass for done.
        """
        if self._unreached:
            self.state.end_failed = True
            raise SessionStoreUnavailable(
                "The session store is unavailable, so the session cannot be "
                "ended or renewed now; nothing was changed."
            )
