"""What one request knows of its session besides the data.

:class:`RequestState` is the contract between the middleware and the store;
:class:`Held` is the lifetime and version the request read from the store (or
started), from which every record it writes is made.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import SESSION_KEY
from django.utils import timezone

from .. import codec, conf, lifetime
from ..lifetime import EARLIEST, LATEST, MICROS_PER_SECOND
from ..metadata import client_of
from ..users import user_id_of
from .engine import Loaded, Record


class RequestState:
    """What the middleware and the store tell each other during one request.

    The middleware sets ``cookie_sent``, ``request`` and ``defer_renewal``
    before the view runs; the store sets the others, and the middleware
    answers by them.
    """

    # Defaults live on the class: a request that never writes its session
    # (most of them) sets two attributes and builds nothing else here.

    #: The request came with a well-formed session cookie.
    cookie_sent: bool = False
    #: False for a request that must not move the idle deadline (a status poll):
    #: it reads the session but is not the user's activity.
    count_activity: bool = True
    #: The request being served, from which ``client`` is read when a write
    #: first needs it.
    request: Any = None
    #: Write a renewal with the request's final save, in one operation, so a
    #: login costs one write and the old token never holds logged-in data.
    defer_renewal: bool = False
    #: The token changed, or the session was flushed: a new cookie (or none).
    renewed: bool = False
    #: A stored session was deleted by this request.
    ended: bool = False
    #: The store failed at least once.
    store_error: bool = False
    #: Ending or renewing could not reach the store: answer 503 even with
    #: FAIL_OPEN, so no one believes they logged out (or in) when they did not.
    end_failed: bool = False
    _client: tuple[str | None, str] | None = None

    @property
    def client(self) -> tuple[str | None, str]:
        """(IP, user agent) to record with the session, when recording is on:
        read from ``request`` under the ``RECORD_*`` settings when first asked
        (by a write), so that reads never look at them."""
        if self._client is None:
            request = self.request
            self._client = (None, "") if request is None else client_of(request)
        return self._client

    @client.setter
    def client(self, value: tuple[str | None, str]) -> None:
        self._client = value

    def __repr__(self) -> str:
        shown = ("cookie_sent", "count_activity", "defer_renewal", "renewed")
        flags = ", ".join(f"{name}={getattr(self, name)!r}" for name in shown)
        return f"<RequestState {flags}, ended={self.ended!r}>"


class Held:
    """The lifetime and version of the stored session one request holds.

    Deadlines are kept as integer microseconds since the epoch, as the
    envelope stores them: a read compares integers against one clock reading,
    and builds a datetime only for code that asks for one.
    """

    # Defaults on the class: a store that never loads builds nothing here.
    _created: int | None = None
    _absolute: int | None = None
    _seen: datetime | int | None = None  # as the store gave it (see Loaded)
    needs_touch = False
    # What the store held when this request read or last wrote the session:
    # the base for merging with a concurrent writer.
    version: int | None = None
    stored_payload: bytes | None = None
    stored_hash = ""  # the hash stored_payload is sealed for
    # (user id as stored in the data, absolute deadline) of the session as
    # read: a write that keeps both needs no new link to the user (Record.linked).
    _linked_as: tuple[Any, int] | None = None

    @property
    def created_at(self) -> datetime | None:
        created = self._created
        return None if created is None else lifetime.from_micros(created, conf.use_tz())

    @property
    def absolute_expiry(self) -> datetime | None:
        absolute = self._absolute
        if absolute is None:
            return None
        return lifetime.from_micros(absolute, conf.use_tz())

    # When this request's touch (due, not yet sent) will have moved last_seen.
    _touch_at: datetime | None = None

    @property
    def last_seen(self) -> datetime | None:
        """The last activity, counting this request's touch when one is due."""
        return self._touch_at or self.stored_last_seen

    @last_seen.setter
    def last_seen(self, value: datetime | None) -> None:
        self._seen, self._touch_at = value, None

    @property
    def stored_last_seen(self) -> datetime | None:
        """The last activity the store holds."""
        seen = self._seen
        if isinstance(seen, int):
            seen = self._seen = lifetime.from_micros(seen, conf.use_tz())
        return seen

    def start(self, now: datetime) -> None:
        """Begin a new absolute lifetime at ``now``."""
        self._created = created = lifetime.to_micros(now)
        self._absolute = created + conf.get("ABSOLUTE_TIMEOUT") * MICROS_PER_SECOND
        self._seen = now
        self._linked_as = None

    def take(
        self, envelope: codec.Envelope, loaded: Loaded, now: datetime, key_hash: str
    ) -> bool:
        """Hold what ``loaded`` says; False (holding nothing) when it is past a
        deadline. ``ValueError``, ``TypeError`` or ``OverflowError`` for
        deadlines no calendar holds: not an envelope this code wrote."""
        # Every read of a session runs this: integers and one settings look-up.
        scs = conf.get_settings()
        data, created, absolute = envelope
        # A lowered ABSOLUTE_TIMEOUT applies to existing sessions; a raised one
        # never extends them.
        absolute = lifetime.capped_absolute(created, absolute, scs["ABSOLUTE_TIMEOUT"])
        if not (EARLIEST <= created <= LATEST and EARLIEST <= absolute <= LATEST):
            raise OverflowError("a deadline no calendar holds")
        seen = loaded.last_seen
        seen_us = seen if isinstance(seen, int) else lifetime.to_micros(seen)
        now_us = lifetime.to_micros(now)
        end = absolute
        expiry = data.get("_session_expiry")
        if expiry is None:
            idle = scs["IDLE_TIMEOUT"] or None
        else:  # set with set_expiry(): lifetime knows its meanings
            idle = lifetime.idle_seconds(expiry, scs["IDLE_TIMEOUT"])
            fixed = lifetime.fixed_deadline(expiry, conf.use_tz())
            if fixed is not None:
                end = min(end, lifetime.to_micros(fixed))
        if idle is not None:
            end = min(end, seen_us + idle * MICROS_PER_SECOND)
        if now_us >= end:
            return False
        self._created, self._absolute, self._seen = created, absolute, seen
        # The deadline as stored, before any capping: a lowered cap is a new one.
        self._linked_as = (data.get(SESSION_KEY), envelope.absolute)
        self.version = loaded.version
        self.stored_payload = bytes(loaded.payload)
        self.stored_hash = key_hash
        interval = scs["TOUCH_INTERVAL"] * MICROS_PER_SECOND
        if idle is not None and now_us - seen_us >= interval:
            self.needs_touch = True
            self._touch_at = now
        return True

    def take_latest(
        self, envelope: codec.Envelope, latest: Loaded, key_hash: str
    ) -> None:
        """Hold the lifetime and version another request stored (to merge)."""
        self._linked_as = None  # (a merged write links again)
        self._created = envelope.created
        self._absolute = lifetime.capped_absolute(
            envelope.created, envelope.absolute, conf.get("ABSOLUTE_TIMEOUT")
        )
        self.version = latest.version
        self.stored_payload = bytes(latest.payload)
        self.stored_hash = key_hash

    def read_data(self) -> dict[str, Any]:
        """The data as this request read it (or last wrote it)."""
        payload = self.stored_payload
        read = codec.decode(payload, self.stored_hash) if payload else None
        return read.data if read is not None else {}

    def absolute_or_new(self, now: datetime) -> datetime:
        """The absolute deadline; for a session not stored yet, the one it would
        get if stored at ``now``."""
        return self.absolute_expiry or now + timedelta(
            seconds=conf.get("ABSOLUTE_TIMEOUT")
        )

    def end_if_seen_at(self, now: datetime, expiry: Any) -> datetime:
        """When the session ends if seen at ``now`` with ``_session_expiry``."""
        return lifetime.deadline(
            self.absolute_or_new(now),
            lifetime.fixed_deadline(expiry, conf.use_tz()),
            now,
            lifetime.idle_seconds(expiry, conf.get("IDLE_TIMEOUT")),
        )

    def idle_expiry(self, expiry: Any, *, counting: bool = True) -> datetime | None:
        """When the session ends without further requests (None: no idle
        timeout); with ``counting`` False, as if this request were not
        activity (its due touch is not sent)."""
        idle = lifetime.idle_seconds(expiry, conf.get("IDLE_TIMEOUT"))
        seen = self.last_seen if counting else self.stored_last_seen
        if idle is None or seen is None:
            return None
        return seen + timedelta(seconds=idle)

    def cookie_age(self, expiry: Any) -> int:
        """Seconds the cookie may live: up to the absolute or fixed deadline,
        counted from the write that precedes it."""
        now = self.last_seen or timezone.now()
        fixed = lifetime.fixed_deadline(expiry, conf.use_tz())
        end = lifetime.deadline(self.absolute_or_new(now), fixed, now, None)
        return max(0, int((end - now).total_seconds()))

    def record(
        self,
        data: dict[str, Any],
        now: datetime,
        client: tuple[str | None, str],
        key_hash: str,
    ) -> Record:
        """What the store should hold under ``key_hash`` for ``data`` written
        at ``now``."""
        if self._created is None or self._absolute is None:
            self.start(now)
        created, absolute = self._created, self._absolute
        assert created is not None and absolute is not None  # noqa: S101 - set above
        payload = codec.encode(
            data, created=created, absolute=absolute, key_hash=key_hash
        )
        use_tz = conf.use_tz()
        return Record(
            payload=payload,
            created_at=lifetime.from_micros(created, use_tz),
            absolute_expiry=lifetime.from_micros(absolute, use_tz),
            expiry=self.end_if_seen_at(now, data.get("_session_expiry")),
            last_seen=now,
            version=(self.version or 0) + 1,
            user_id=user_id_of(data),
            ip=client[0],
            user_agent=client[1],
            linked=self._linked_as == (data.get(SESSION_KEY), absolute),
        )

    def saved(self, record: Record, key_hash: str) -> None:
        """Hold what was just written under ``key_hash``."""
        self.last_seen = record.last_seen
        self.needs_touch = False
        self._linked_as = None  # (a second write in the request links again)
        self.version = record.version
        self.stored_payload = record.payload
        self.stored_hash = key_hash
