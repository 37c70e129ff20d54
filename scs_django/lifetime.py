"""Deadline arithmetic: pure functions over datetimes and integer microseconds.

Nothing here reads a setting or a store; callers pass the timeouts in. A
session has three deadlines (DESIGN §4): the absolute one, fixed at creation
or login; an optional fixed one set with ``set_expiry(datetime)``; and an
optional idle one that slides with activity. It ends at the earliest.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from typing import Any

from django.utils import timezone

EPOCH = datetime(1970, 1, 1, tzinfo=dt_timezone.utc)
_MICROSECOND = timedelta(microseconds=1)
MICROS_PER_SECOND = 1_000_000
# The range of microseconds (since the epoch) that datetimes hold, a day
# inside either end so that a local time zone cannot push one past it.
EARLIEST = (datetime.min.replace(tzinfo=dt_timezone.utc) - EPOCH) // _MICROSECOND + (
    86_400 * MICROS_PER_SECOND
)
LATEST = (datetime.max.replace(tzinfo=dt_timezone.utc) - EPOCH) // _MICROSECOND - (
    86_400 * MICROS_PER_SECOND
)


def to_micros(value: datetime) -> int:
    """Microseconds since the epoch; a naive ``value`` is in the current time zone."""
    # Exact integer arithmetic: floats would lose microseconds at this magnitude.
    if value.tzinfo is not dt_timezone.utc and timezone.is_naive(value):
        value = timezone.make_aware(value)
    return (value - EPOCH) // _MICROSECOND


def from_micros(micros: int, use_tz: bool) -> datetime:
    """The datetime ``micros`` after the epoch: aware in UTC when ``use_tz``,
    naive in the current time zone otherwise (as Django's ORM returns them)."""
    value = EPOCH + micros * _MICROSECOND
    return value if use_tz else timezone.make_naive(value)


def as_datetime(value: datetime | str, use_tz: bool) -> datetime:
    """``value`` (a datetime or its ISO text, as JSON serialisers store it)
    made aware or naive to match ``use_tz``. Raises ``ValueError`` for text
    that is no date."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if use_tz and timezone.is_naive(value):
        return timezone.make_aware(value)
    if not use_tz and timezone.is_aware(value):
        return timezone.make_naive(value)
    return value


def idle_seconds(expiry: Any, default: int | None) -> int | None:
    """The idle timeout of a session whose ``_session_expiry`` is ``expiry``.

    ``set_expiry(int)`` is a per-session idle timeout; 0 means "browser
    session", which keeps the site-wide ``default`` (None or 0: no idle
    timeout)."""
    if isinstance(expiry, int) and not isinstance(expiry, bool) and expiry > 0:
        return expiry
    return default or None


def fixed_deadline(expiry: Any, use_tz: bool) -> datetime | None:
    """The deadline ``set_expiry(datetime)`` stored as ``expiry``, if any."""
    if isinstance(expiry, (datetime, str)):
        return as_datetime(expiry, use_tz)
    return None


def capped_absolute(created: int, absolute: int, timeout: int) -> int:
    """The absolute deadline (micros) of a session created at ``created``
    whose envelope says ``absolute``: a lowered ``timeout`` (seconds) applies
    to existing sessions, a raised one never extends them."""
    return min(absolute, created + timeout * MICROS_PER_SECOND)


def deadline(
    absolute: datetime,
    fixed: datetime | None,
    last_seen: datetime,
    idle: int | None,
) -> datetime:
    """When a session seen at ``last_seen`` ends: the earliest deadline."""
    end = absolute if fixed is None or fixed > absolute else fixed
    if idle is not None:
        end = min(end, last_seen + timedelta(seconds=idle))
    return end


def seconds_until(end: datetime, now: datetime) -> int:
    """Whole seconds from ``now`` to ``end``, rounded down (negative when past),
    as Django's ``get_expiry_age`` counts them."""
    delta = end - now
    return delta.days * 86400 + delta.seconds


def touch_due(now: datetime, last_seen: datetime, interval: int) -> bool:
    """True when the idle deadline should move forward: at least ``interval``
    seconds since it last did."""
    return (now - last_seen).total_seconds() >= interval
