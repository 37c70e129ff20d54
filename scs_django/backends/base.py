"""What every scs_django engine shares: tokens, lifetimes, renewal, async twins.

An engine subclasses :class:`ScsSessionStore` and implements a handful of
storage primitives (``_fetch``, ``_insert``, ``_update``, ``_bump``,
``_remove`` and their ``a``-prefixed twins). Everything about tokens, deadlines
and the order of operations lives here, so every engine keeps the same
invariants.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from typing import TYPE_CHECKING, Any, NamedTuple, cast

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.sessions.backends.base import CreateError, SessionBase, UpdateError
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils import timezone

from .. import codec, conf, context, tokens
from ..exceptions import SessionStoreUnavailable
from ..signals import session_created, session_expired, session_renewed

logger = logging.getLogger("scs_django")
security_logger = logging.getLogger("scs_django.security")

# 256-bit tokens do not collide; the bound only stops a broken random source
# from looping forever.
CREATE_ATTEMPTS = 5


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


class Loaded(NamedTuple):
    """What a store returns for a live session."""

    payload: bytes
    last_seen: datetime
    version: int


_EPOCH = datetime(1970, 1, 1, tzinfo=dt_timezone.utc)
_MICROSECOND = timedelta(microseconds=1)


def _to_micros(value: datetime) -> int:
    # Exact integer arithmetic: floats would lose microseconds at this magnitude.
    if value.tzinfo is not dt_timezone.utc and timezone.is_naive(value):
        value = timezone.make_aware(value)
    return (value - _EPOCH) // _MICROSECOND


def _from_micros(micros: int) -> datetime:
    value = _EPOCH + micros * _MICROSECOND
    if not _USE_TZ:
        _USE_TZ.append(settings.USE_TZ)
    return value if _USE_TZ[0] else timezone.make_naive(value)


_USE_TZ: list[bool] = []  # settings.USE_TZ, read once: this runs on every read


@receiver(setting_changed)
def _reset_use_tz(*, setting: str, **kwargs: Any) -> None:
    if setting == "USE_TZ":
        _USE_TZ.clear()


def _as_datetime(value: datetime | str) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if settings.USE_TZ and timezone.is_naive(value):
        return timezone.make_aware(value)
    if not settings.USE_TZ and timezone.is_aware(value):
        return timezone.make_naive(value)
    return value


def _user_id(data: dict[str, Any], unusable: Any = None) -> Any:
    """The user id django.contrib.auth stored in ``data``: None when anonymous,
    ``unusable`` when it is no id of the user model."""
    from django.contrib.auth import SESSION_KEY, get_user_model

    raw = data.get(SESSION_KEY)
    if raw is None:
        return None
    try:
        return get_user_model()._meta.pk.to_python(raw)
    except Exception:  # noqa: BLE001 - a bad id is no user, never a crash
        return unusable


def _idle_seconds(expiry: Any) -> int | None:
    # set_expiry(int) is a per-session idle timeout; 0 means "browser session",
    # which keeps the site-wide idle timeout.
    if isinstance(expiry, int) and not isinstance(expiry, bool) and expiry > 0:
        return expiry
    return conf.get("IDLE_TIMEOUT") or None


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


def _unavailable(exc: BaseException) -> SessionStoreUnavailable:
    return SessionStoreUnavailable(
        f"The session store is unavailable ({exc.__class__.__name__})."
    )


class _Guard:
    # A class rather than a @contextmanager: this wraps every store call, and
    # a generator-based context costs several times more.
    __slots__ = ("engine", "store")

    def __init__(self, engine: type[ScsSessionStore], store: Any = None) -> None:
        self.engine = engine
        self.store = store

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, exc: Any, traceback: Any) -> None:
        if kind is None:
            return
        if issubclass(kind, SessionStoreUnavailable):
            if self.store is not None:
                self.store.store_error = True
        elif self.engine.is_unavailable(exc):
            if self.store is not None:
                self.store.store_error = True
            raise _unavailable(exc) from exc


class ScsSessionStore(SessionBase):
    """Django's ``SessionBase`` with hashed tokens and idle/absolute deadlines."""

    # Exceptions of the engine's client that mean "the store is unreachable".
    unavailable_errors: tuple[type[BaseException], ...] = ()
    # (ip, user agent) of the request's client, set by the middleware when
    # SCS["RECORD_IP"] or ["RECORD_USER_AGENT"] is on.
    client: tuple[str | None, str] = (None, "")
    # Set by the middleware: the request came with a well-formed session cookie.
    cookie_sent = False
    # Hash of a session that load() found stored but past its deadlines.
    _dead_hash: str | None = None

    if TYPE_CHECKING:
        # SessionBase's private data cache, which django-stubs leaves out.
        _session_cache: dict[str, Any]
        _session: dict[str, Any]

        def _get_session(self, no_load: bool = False) -> dict[str, Any]: ...
        async def _aget_session(self, no_load: bool = False) -> dict[str, Any]: ...

    @classmethod
    def is_unavailable(cls, exc: BaseException) -> bool:
        """True when ``exc`` means the store cannot be reached or cannot answer
        now (answered 503), rather than a bug or a schema error (a 500)."""
        return isinstance(exc, cls.unavailable_errors)

    def __init__(self, session_key: str | None = None) -> None:
        super().__init__(session_key)
        self._hash_of: str | None = None
        self._hash: str | None = None
        self._reset_lifetime()
        # Set during a request; the middleware reads them.
        self.renewed = False  # the token changed (or the session was flushed)
        self.ended = False  # a stored session was deleted by this request
        self.store_error = False  # the store failed at least once
        # Set by the middleware: a renewal is written with the request's final
        # save, in the same operation, so login costs one write and the old
        # token can never be left holding the logged-in data.
        self.defer_renewal = False
        # The request asked to end or renew a session the store could not be
        # reached for: it must fail (503), even with FAIL_OPEN.
        self.end_failed = False
        # The store failed at load under FAIL_OPEN: the cookie's session may
        # well be alive, so it cannot be ended or renewed now.
        self._unreached = False
        # Written already; only the new cookie is due (see ``modified``).
        self._cookie_due = False

    # Django's SessionMiddleware saves and sends the cookie when ``modified``:
    # a renewal written on the spot leaves nothing to save, but its new token
    # must still reach the browser, so it reads as modified while the write
    # itself is skipped (see save()).
    @property
    def modified(self) -> bool:
        return self._modified or self._cookie_due

    @modified.setter
    def modified(self, value: bool) -> None:
        self._modified = value

    # -- tokens ---------------------------------------------------------------

    def _validate_session_key(self, key: Any) -> bool:
        return tokens.is_well_formed(key)

    def _get_new_session_key(self) -> str:
        # No exists() round trip: creation is an insert that fails on a clash.
        return tokens.new_token()

    async def _aget_new_session_key(self) -> str:
        return tokens.new_token()

    @property
    def key_hash(self) -> str | None:
        """SHA-256 hex of the current token: the only key the store ever sees."""
        key = self.session_key
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

    # -- lifetime ---------------------------------------------------------------

    def _reset_lifetime(self) -> None:
        self._created_at: datetime | None = None
        self._absolute_expiry: datetime | None = None
        self._last_seen: datetime | None = None
        self._needs_touch = False
        # What the store held when this request read or last wrote the session:
        # the base for merging with a concurrent writer.
        self._version: int | None = None
        self._stored_payload: bytes | None = None
        # A renewal not yet written: the hash the session is stored under.
        self._renaming_from: str | None = None

    def _start_lifetime(self, now: datetime) -> None:
        self._created_at = now
        self._absolute_expiry = now + timedelta(seconds=conf.get("ABSOLUTE_TIMEOUT"))
        self._last_seen = now

    def restart_lifetime(self) -> None:
        """Start a new absolute lifetime now (done at every login)."""
        self._session  # noqa: B018 - make sure the data is loaded first
        self._start_lifetime(timezone.now())
        self.modified = True

    @property
    def created_at(self) -> datetime | None:
        """When this session's current lifetime began (None before it is stored)."""
        self._session  # noqa: B018
        return self._created_at

    @property
    def absolute_expiry(self) -> datetime | None:
        """The hard deadline; activity never moves it (None before it is stored)."""
        self._session  # noqa: B018
        return self._absolute_expiry

    @property
    def idle_expiry(self) -> datetime | None:
        """When the session ends without further requests; None with no idle timeout."""
        data = self._session
        idle = _idle_seconds(data.get("_session_expiry"))
        if idle is None or self._last_seen is None:
            return None
        return self._last_seen + timedelta(seconds=idle)

    def _deadline(self, now: datetime, last_seen: datetime, expiry: Any) -> datetime:
        candidates = [
            self._absolute_expiry
            or now + timedelta(seconds=conf.get("ABSOLUTE_TIMEOUT"))
        ]
        if isinstance(expiry, (datetime, str)):
            candidates.append(_as_datetime(expiry))
        idle = _idle_seconds(expiry)
        if idle is not None:
            candidates.append(last_seen + timedelta(seconds=idle))
        return min(candidates)

    def _expiry_kwargs(self, kwargs: dict[str, Any]) -> tuple[datetime, Any]:
        now = timezone.now()
        modification = kwargs.get("modification") or now
        if "expiry" in kwargs:
            return modification, kwargs["expiry"]
        return modification, self.get("_session_expiry")

    def get_expiry_date(self, **kwargs: Any) -> datetime:
        """When the session ends if a request arrives at ``modification`` (default: now)."""
        modification, expiry = self._expiry_kwargs(kwargs)
        return self._deadline(modification, modification, expiry)

    def get_expiry_age(self, **kwargs: Any) -> int:
        """Seconds from ``modification`` (default: now) until the session ends."""
        modification, expiry = self._expiry_kwargs(kwargs)
        delta = self._deadline(modification, modification, expiry) - modification
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
        # Counted from the write that precedes the cookie, so a new session's
        # cookie gets exactly ABSOLUTE_TIMEOUT.
        now = self._last_seen or timezone.now()
        candidates = [
            self._absolute_expiry
            or now + timedelta(seconds=conf.get("ABSOLUTE_TIMEOUT"))
        ]
        expiry = self.get("_session_expiry")
        if isinstance(expiry, (datetime, str)):
            candidates.append(_as_datetime(expiry))
        return max(0, int((min(candidates) - now).total_seconds()))

    @property
    def needs_touch(self) -> bool:
        """True when the idle deadline is due to move forward at the end of the request."""
        return self._needs_touch and self.session_key is not None

    # -- loading ------------------------------------------------------------------

    def _guard(self) -> _Guard:
        """A context in which the errors of an unavailable store become
        :class:`SessionStoreUnavailable` (and mark the session)."""
        return _Guard(type(self), self)

    @classmethod
    def guard(cls) -> _Guard:
        """A context in which the errors of an unavailable store become
        :class:`SessionStoreUnavailable`, for work on no one session."""
        return _Guard(cls)

    def _forget(self) -> dict[str, Any]:
        self._session_key = None
        self._reset_lifetime()
        return {}

    def _decode(self, payload: bytes) -> codec.Envelope | None:
        envelope = codec.decode(payload)
        if envelope is None:
            security_logger.warning(
                "Session %s could not be decoded; treated as no session.",
                tokens.hash_prefix(self.key_hash),
            )
        return envelope

    @staticmethod
    def _absolute_of(envelope: codec.Envelope) -> datetime:
        # A lowered ABSOLUTE_TIMEOUT applies to existing sessions; a raised one
        # never extends them.
        return _from_micros(
            min(
                envelope.absolute,
                envelope.created + conf.get("ABSOLUTE_TIMEOUT") * 1_000_000,
            )
        )

    def _adopt(self, loaded: Loaded | None, now: datetime) -> dict[str, Any]:
        if loaded is None:
            return self._forget()
        envelope = self._decode(loaded.payload)
        if envelope is None:
            return self._forget()
        data = envelope.data
        expiry = data.get("_session_expiry")
        idle = _idle_seconds(expiry)
        last_seen = loaded.last_seen
        try:
            created_at = _from_micros(envelope.created)
            absolute_expiry = self._absolute_of(envelope)
            dead = now >= absolute_expiry or (
                idle is not None and now >= last_seen + timedelta(seconds=idle)
            )
            if not dead and isinstance(expiry, (datetime, str)):
                dead = now >= _as_datetime(expiry)
        except (OverflowError, ValueError, TypeError):
            # Deadlines no calendar holds, or a deadline that is not a date:
            # not an envelope this code wrote.
            security_logger.warning(
                "Session %s has impossible deadlines; treated as no session.",
                tokens.hash_prefix(self.key_hash),
            )
            return self._forget()
        if dead:
            self._dead_hash = self.key_hash
            return self._forget()
        self._created_at = created_at
        self._absolute_expiry = absolute_expiry
        self._last_seen = last_seen
        self._version = loaded.version
        self._stored_payload = bytes(loaded.payload)
        if idle is not None and (now - last_seen).total_seconds() >= conf.get(
            "TOUCH_INTERVAL"
        ):
            self._needs_touch = True
            self._last_seen = now
        return data

    def load(self) -> dict[str, Any]:
        key_hash = self.key_hash
        if key_hash is None:
            return self._forget()
        now = timezone.now()
        self._dead_hash = None  # not one an exists() or a merge left behind
        try:
            return self._seen(self._adopt(self._fetch(key_hash, now), now))
        except Exception as exc:
            return self._unavailable_at_load(exc)

    async def aload(self) -> dict[str, Any]:
        key_hash = self.key_hash
        if key_hash is None:
            return self._forget()
        now = timezone.now()
        self._dead_hash = None
        try:
            data = self._adopt(await self._afetch(key_hash, now), now)
            return await self._aseen(data)
        except Exception as exc:
            return self._unavailable_at_load(exc)

    def _unavailable_at_load(self, exc: Exception) -> dict[str, Any]:
        if not (isinstance(exc, SessionStoreUnavailable) or self.is_unavailable(exc)):
            raise exc  # a bug or a schema error: a 500 with its own traceback
        self.store_error = True
        self._unreached = True
        if not conf.get("FAIL_OPEN"):
            if isinstance(exc, SessionStoreUnavailable):
                raise exc
            raise _unavailable(exc) from exc
        logger.warning("Session store unavailable; going on without a session.")
        return self._forget()

    def _seen(self, data: dict[str, Any]) -> dict[str, Any]:
        dead, self._dead_hash = self._dead_hash, None
        if dead is not None:
            session_expired.send(
                sender=type(self), key_hash=dead, request=context.request_of(self)
            )
        return data

    async def _aseen(self, data: dict[str, Any]) -> dict[str, Any]:
        dead, self._dead_hash = self._dead_hash, None
        if dead is not None:
            await session_expired.asend(
                sender=type(self), key_hash=dead, request=context.request_of(self)
            )
        return data

    def exists(self, session_key: str | None) -> bool:
        if not tokens.is_well_formed(session_key):
            return False
        with self._guard():
            return (
                self._fetch(tokens.hash_token(session_key), timezone.now()) is not None
            )

    async def aexists(self, session_key: str | None) -> bool:
        if not tokens.is_well_formed(session_key):
            return False
        with self._guard():
            found = await self._afetch(tokens.hash_token(session_key), timezone.now())
        return found is not None

    # -- writing -------------------------------------------------------------------

    def _record(self, data: dict[str, Any], now: datetime) -> Record:
        if self._created_at is None or self._absolute_expiry is None:
            self._start_lifetime(now)
        created = cast(datetime, self._created_at)  # set just above if missing
        absolute = cast(datetime, self._absolute_expiry)
        payload = codec.encode(
            data,
            created=_to_micros(created),
            absolute=_to_micros(absolute),
        )
        return Record(
            payload=payload,
            created_at=created,
            absolute_expiry=absolute,
            expiry=self._deadline(now, now, data.get("_session_expiry")),
            last_seen=now,
            version=(self._version or 0) + 1,
            user_id=_user_id(data),
            ip=self.client[0],
            user_agent=self.client[1],
        )

    def _prepare_save(
        self, must_create: bool, data: dict[str, Any]
    ) -> tuple[datetime, Record]:
        now = timezone.now()
        if must_create:
            self._start_lifetime(now)
        return now, self._record(data, now)

    def _saved(self, record: Record) -> None:
        self._last_seen = record.last_seen
        self._needs_touch = False
        self._version = record.version
        self._stored_payload = record.payload

    def _merge(self, latest: Loaded, now: datetime) -> Record | None:
        """Re-apply this request's changes on top of what another request stored.

        The changes are found by comparing the data with what this request read,
        so values mutated in place count too. Keys both changed: this write wins.
        """
        theirs = self._decode(latest.payload)
        if theirs is None:
            return None
        mine = self._session_cache
        read = codec.decode(self._stored_payload) if self._stored_payload else None
        base = read.data if read is not None else {}
        merged = dict(theirs.data)
        merged.update({k: v for k, v in mine.items() if k not in base or base[k] != v})
        for key in base.keys() - mine.keys():
            merged.pop(key, None)
        self._session_cache = merged
        try:
            self._created_at = _from_micros(theirs.created)
            self._absolute_expiry = self._absolute_of(theirs)
        except (OverflowError, ValueError, TypeError):
            return None  # not an envelope this code wrote: treat it as gone
        self._version = latest.version
        self._stored_payload = bytes(latest.payload)
        return self._record(merged, now)

    def _write(
        self, key_hash: str, record: Record, now: datetime, new_hash: str | None = None
    ) -> Record | None:
        """Conditional update, merging with concurrent writers; None when the
        session ended elsewhere."""
        if self._update(key_hash, record, now, self._version, new_hash):
            return record
        # Another request wrote in between (or the session ended). Contention is
        # normal load, so rather than retrying optimistically (which can keep
        # losing), re-apply this request's changes under the engine's lock on
        # the session, where no other writer can get in between.
        return self._update_locked(key_hash, now, new_hash, self._merger(now))

    async def _awrite(
        self, key_hash: str, record: Record, now: datetime, new_hash: str | None = None
    ) -> Record | None:
        if await self._aupdate(key_hash, record, now, self._version, new_hash):
            return record
        return await self._aupdate_locked(key_hash, now, new_hash, self._merger(now))

    def _merger(self, now: datetime) -> Callable[[Loaded], Record | None]:
        return lambda latest: self._merge(latest, now)

    def create(self) -> None:
        for _ in range(CREATE_ATTEMPTS):
            self._session_key = tokens.new_token()
            try:
                self.save(must_create=True)
            except CreateError:
                continue
            except BaseException:
                # Nothing was stored (too large, not serialisable, store down):
                # leave no token behind that a later save would try to update.
                self._forget()
                raise
            self.modified = True
            session_created.send(
                sender=type(self), session=self, request=context.request_of(self)
            )
            return
        raise CreateError("Could not store a new session under a unique token.")

    async def acreate(self) -> None:
        for _ in range(CREATE_ATTEMPTS):
            self._session_key = tokens.new_token()
            try:
                await self.asave(must_create=True)
            except CreateError:
                continue
            except BaseException:
                # Nothing was stored (too large, not serialisable, store down):
                # leave no token behind that a later save would try to update.
                self._forget()
                raise
            self.modified = True
            await session_created.asend(
                sender=type(self), session=self, request=context.request_of(self)
            )
            return
        raise CreateError("Could not store a new session under a unique token.")

    def _written_already(self, must_create: bool) -> bool:
        # A renewal wrote everything and nothing changed since: only its cookie
        # is due (Django's middleware saves before sending it).
        return not must_create and self._cookie_due and not self._modified

    def save(self, must_create: bool = False) -> None:
        """Store the session: insert when ``must_create``, otherwise a conditional
        update that raises ``UpdateError`` when the session ended elsewhere."""
        if self.session_key is None:
            return self.create()
        if self._written_already(must_create):
            return
        data = self._get_session(no_load=must_create)
        if self.session_key is None:  # the token was unknown or expired
            return self.create()
        now, record = self._prepare_save(must_create, data)
        with self._guard():
            if must_create:
                if not self._insert(cast(str, self.key_hash), record):
                    raise CreateError
            else:
                written = self._store(record, now)
                if written is None:
                    raise UpdateError
                record = written
        self._saved(record)

    async def asave(self, must_create: bool = False) -> None:
        if self.session_key is None:
            return await self.acreate()
        if self._written_already(must_create):
            return
        data = await self._aget_session(no_load=must_create)
        if self.session_key is None:
            return await self.acreate()
        now, record = self._prepare_save(must_create, data)
        with self._guard():
            if must_create:
                if not await self._ainsert(cast(str, self.key_hash), record):
                    raise CreateError
            else:
                written = await self._astore(record, now)
                if written is None:
                    raise UpdateError
                record = written
        self._saved(record)

    def touch(self) -> None:
        """Move the idle deadline forward without rewriting data.

        Raises ``UpdateError`` when the session ended elsewhere meanwhile.
        """
        if not self.needs_touch:
            return
        now = timezone.now()
        expiry = self._deadline(now, now, self._session.get("_session_expiry"))
        with self._guard():
            touched = self._bump(cast(str, self.key_hash), now, expiry)
        self._needs_touch = False
        if not touched:
            raise UpdateError

    async def atouch(self) -> None:
        if not self.needs_touch:
            return
        now = timezone.now()
        expiry = self._deadline(
            now, now, (await self._aget_session()).get("_session_expiry")
        )
        with self._guard():
            touched = await self._abump(cast(str, self.key_hash), now, expiry)
        self._needs_touch = False
        if not touched:
            raise UpdateError

    # -- renewal --------------------------------------------------------------------

    def _renew_start(self, data: dict[str, Any]) -> tuple[str | None, datetime]:
        """Switch to a new token; returns the hash the session is stored under."""
        self.renewed = True
        self.modified = True
        source = self._renaming_from or self.key_hash
        if source is not None:
            self._session_key, _ = self._renewal_token(source)
            self._renaming_from = source
        return source, timezone.now()

    def _store(self, record: Record, now: datetime) -> Record | None:
        if self._renaming_from is None:
            return self._write(cast(str, self.key_hash), record, now)
        return self._rename(self._renaming_from, record, now)

    async def _astore(self, record: Record, now: datetime) -> Record | None:
        if self._renaming_from is None:
            return await self._awrite(cast(str, self.key_hash), record, now)
        return await self._arename(self._renaming_from, record, now)

    def _rename(self, source: str, record: Record, now: datetime) -> Record | None:
        for _ in range(CREATE_ATTEMPTS):
            try:
                written = self._write(source, record, now, self.key_hash)
            except CreateError:  # the new token's hash is taken: draw another
                self._session_key, _ = self._renewal_token(source)
                continue
            if written is not None:
                self._renaming_from = None
                session_renewed.send(**self._renewed_args(source))
            return written
        raise CreateError("Could not renew the session under a unique token.")

    async def _arename(
        self, source: str, record: Record, now: datetime
    ) -> Record | None:
        for _ in range(CREATE_ATTEMPTS):
            try:
                written = await self._awrite(source, record, now, self.key_hash)
            except CreateError:
                self._session_key, _ = self._renewal_token(source)
                continue
            if written is not None:
                self._renaming_from = None
                await session_renewed.asend(**self._renewed_args(source))
            return written
        raise CreateError("Could not renew the session under a unique token.")

    def _renewed_args(self, previous_key_hash: str) -> dict[str, Any]:
        return {
            "sender": type(self),
            "session": self,
            "request": context.request_of(self),
            "previous_key_hash": previous_key_hash,
        }

    def _renew_lost(self) -> None:
        # The session ended elsewhere (logout, revoke, expiry) while this request
        # held it: its data must not live on under a new token.
        logger.info("Session ended elsewhere before its token could be renewed.")
        self._session_cache = {}
        self._forget()

    def renew_token(self) -> None:
        """Give the session a new token and kill the old one, keeping the data.

        On the store this is one operation (old key renamed to the new), so no
        moment exists where both tokens, or neither, are valid.
        """
        data = self._session
        self.refuse_unreached()
        source, now = self._renew_start(data)
        if source is None:
            return  # nothing stored yet: the next save creates it under a new token
        if self.defer_renewal:
            return
        try:
            with self._guard():
                written = self._rename(source, self._record(data, now), now)
        except SessionStoreUnavailable:
            self.end_failed = True
            raise
        if written is None:
            return self._renew_lost()
        self._saved(written)
        self._modified, self._cookie_due = False, True

    async def arenew_token(self) -> None:
        data = await self._aget_session()
        self.refuse_unreached()
        source, now = self._renew_start(data)
        if source is None:
            return
        if self.defer_renewal:
            return
        try:
            with self._guard():
                written = await self._arename(source, self._record(data, now), now)
        except SessionStoreUnavailable:
            self.end_failed = True
            raise
        if written is None:
            return self._renew_lost()
        self._saved(written)
        self._modified, self._cookie_due = False, True

    def _renewal_token(self, old_hash: str) -> tuple[str, str]:
        """The token (and its hash) that replaces the one hashed to ``old_hash``."""
        token = tokens.new_token()
        return token, tokens.hash_token(token)

    def cycle_key(self) -> None:
        """Same as :meth:`renew_token`."""
        self.renew_token()

    async def acycle_key(self) -> None:
        await self.arenew_token()

    # -- ending -----------------------------------------------------------------------

    async def adelete_test_cookie(self) -> None:
        # Django's twin forgets to mark the session modified; the sync one does.
        await self.apop(self.TEST_COOKIE_NAME)

    def delete(self, session_key: str | None = None) -> None:
        if session_key is None:
            if self._renaming_from is not None:
                # A renewal waits for the end of the request: the session is
                # still stored under its previous hash only.
                with self._guard():
                    self._remove(self._renaming_from)
                self._renaming_from = None
                return
            session_key = self.session_key
        if not tokens.is_well_formed(session_key):
            return
        with self._guard():
            self._remove(tokens.hash_token(session_key))

    async def adelete(self, session_key: str | None = None) -> None:
        if session_key is None:
            if self._renaming_from is not None:
                with self._guard():
                    await self._aremove(self._renaming_from)
                self._renaming_from = None
                return
            session_key = self.session_key
        if not tokens.is_well_formed(session_key):
            return
        with self._guard():
            await self._aremove(tokens.hash_token(session_key))

    def refuse_unreached(self) -> None:
        """Raise :class:`SessionStoreUnavailable` (and fail the request with a
        503) when the store could not be reached to load this session.

        Under FAIL_OPEN a failed load looks like "no session", but the
        cookie's session may be alive: ending, renewing or revoking must not
        pass for done.
        """
        if self._unreached:
            self.end_failed = True
            raise SessionStoreUnavailable(
                "The session store is unavailable, so the session cannot be "
                "ended or renewed now; nothing was changed."
            )

    def _ending(self) -> None:
        self.refuse_unreached()
        # After the load, the token is None unless a stored session is live:
        # ending an unknown one writes nothing and sends no statement.
        self.ended = (
            self.ended
            or self.session_key is not None
            or self._renaming_from is not None
        )
        self.renewed = True

    def flush(self) -> None:
        """Delete the stored session and start an empty one without a token."""
        self._session  # noqa: B018 - the one lookup that tells a live session
        self._ending()
        try:
            super().flush()
        except SessionStoreUnavailable:
            self.end_failed = True
            raise
        self._reset_lifetime()

    async def aflush(self) -> None:
        await self._aget_session()
        self._ending()
        try:
            await super().aflush()
        except SessionStoreUnavailable:
            self.end_failed = True
            raise
        self._reset_lifetime()

    # -- what an engine implements ------------------------------------------------------

    def _fetch(self, key_hash: str, now: datetime) -> Loaded | None:
        """The live session stored under ``key_hash`` (expiry after ``now``)."""
        raise NotImplementedError

    async def _afetch(self, key_hash: str, now: datetime) -> Loaded | None:
        return await sync_to_async(self._fetch)(key_hash, now)

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
        ``new_hash`` if given).

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

    def _bump(self, key_hash: str, now: datetime, expiry: datetime) -> bool:
        """Set last-seen and expiry of a live session; False when it is gone."""
        raise NotImplementedError

    async def _abump(self, key_hash: str, now: datetime, expiry: datetime) -> bool:
        return await sync_to_async(self._bump)(key_hash, now, expiry)

    def _remove(self, key_hash: str) -> None:
        raise NotImplementedError

    async def _aremove(self, key_hash: str) -> None:
        return await sync_to_async(self._remove)(key_hash)

    # -- a user's sessions (scs_django.sessions sends the signals) ---------------------

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
