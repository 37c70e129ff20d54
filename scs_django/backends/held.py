"""What one request knows of its session besides the data.

:class:`RequestState` is the contract between the middleware and the store;
:class:`Held` is the lifetime and version the request read from the store (or
started), from which every record it writes is made.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from .. import codec, conf, lifetime
from ..users import user_id_of
from .engine import Loaded, Record


@dataclass
class RequestState:
    """What the middleware and the store tell each other during one request.

    The middleware sets the first three before the view runs; the store sets
    the others, and the middleware answers by them.
    """

    #: The request came with a well-formed session cookie.
    cookie_sent: bool = False
    #: False for a request that must not move the idle deadline (a status poll):
    #: it reads the session but is not the user's activity.
    count_activity: bool = True
    #: (IP, user agent) to record with the session, when recording is on.
    client: tuple[str | None, str] = (None, "")
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


class Held:
    """The lifetime and version of the stored session one request holds."""

    __slots__ = (
        "absolute_expiry",
        "created_at",
        "last_seen",
        "needs_touch",
        "stored_hash",
        "stored_payload",
        "version",
    )

    def __init__(self) -> None:
        self.created_at: datetime | None = None
        self.absolute_expiry: datetime | None = None
        self.last_seen: datetime | None = None
        self.needs_touch = False
        # What the store held when this request read or last wrote the
        # session: the base for merging with a concurrent writer.
        self.version: int | None = None
        self.stored_payload: bytes | None = None
        self.stored_hash = ""  # the hash stored_payload is sealed for

    def start(self, now: datetime) -> None:
        """Begin a new absolute lifetime at ``now``."""
        self.created_at = now
        self.absolute_expiry = now + timedelta(seconds=conf.get("ABSOLUTE_TIMEOUT"))
        self.last_seen = now

    def take(
        self, envelope: codec.Envelope, loaded: Loaded, now: datetime, key_hash: str
    ) -> bool:
        """Hold what ``loaded`` says; False (holding nothing) when it is past a
        deadline. ``ValueError``, ``TypeError`` or ``OverflowError`` for
        deadlines no calendar holds: not an envelope this code wrote."""
        # Settings read once here: this runs on every read of a session.
        scs, use_tz = conf.get_settings(), conf.use_tz()
        expiry = envelope.data.get("_session_expiry")
        idle = lifetime.idle_seconds(expiry, scs["IDLE_TIMEOUT"])
        created_at, absolute = self._lifetime_of(
            envelope, scs["ABSOLUTE_TIMEOUT"], use_tz
        )
        fixed = lifetime.fixed_deadline(expiry, use_tz)
        if now >= lifetime.deadline(absolute, fixed, loaded.last_seen, idle):
            return False
        self.created_at, self.absolute_expiry = created_at, absolute
        self.last_seen = loaded.last_seen
        self.version = loaded.version
        self.stored_payload = bytes(loaded.payload)
        self.stored_hash = key_hash
        if idle is not None and lifetime.touch_due(
            now, loaded.last_seen, scs["TOUCH_INTERVAL"]
        ):
            self.needs_touch = True
            self.last_seen = now
        return True

    def take_latest(
        self, envelope: codec.Envelope, latest: Loaded, key_hash: str
    ) -> None:
        """Hold the lifetime and version another request stored (to merge)."""
        self.created_at, self.absolute_expiry = self._lifetime_of(
            envelope, conf.get("ABSOLUTE_TIMEOUT"), conf.use_tz()
        )
        self.version = latest.version
        self.stored_payload = bytes(latest.payload)
        self.stored_hash = key_hash

    @staticmethod
    def _lifetime_of(
        envelope: codec.Envelope, timeout: int, use_tz: bool
    ) -> tuple[datetime, datetime]:
        # A lowered ABSOLUTE_TIMEOUT applies to existing sessions; a raised one
        # never extends them.
        absolute = lifetime.capped_absolute(
            envelope.created, envelope.absolute, timeout
        )
        return (
            lifetime.from_micros(envelope.created, use_tz),
            lifetime.from_micros(absolute, use_tz),
        )

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

    def idle_expiry(self, expiry: Any) -> datetime | None:
        """When the session ends without further requests (None: no idle timeout)."""
        idle = lifetime.idle_seconds(expiry, conf.get("IDLE_TIMEOUT"))
        if idle is None or self.last_seen is None:
            return None
        return self.last_seen + timedelta(seconds=idle)

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
        if self.created_at is None or self.absolute_expiry is None:
            self.start(now)
        created, absolute = self.created_at, self.absolute_expiry
        assert created is not None and absolute is not None  # noqa: S101 - set above
        payload = codec.encode(
            data,
            created=lifetime.to_micros(created),
            absolute=lifetime.to_micros(absolute),
            key_hash=key_hash,
        )
        return Record(
            payload=payload,
            created_at=created,
            absolute_expiry=absolute,
            expiry=self.end_if_seen_at(now, data.get("_session_expiry")),
            last_seen=now,
            version=(self.version or 0) + 1,
            user_id=user_id_of(data),
            ip=client[0],
            user_agent=client[1],
        )

    def saved(self, record: Record, key_hash: str) -> None:
        """Hold what was just written under ``key_hash``."""
        self.last_seen = record.last_seen
        self.needs_touch = False
        self.version = record.version
        self.stored_payload = record.payload
        self.stored_hash = key_hash
