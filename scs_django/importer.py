"""Copying live sessions from django.contrib.sessions' table into ours.

Each row of ``django_session`` is read with raw SQL (its app need not be
installed any more), its signed data decoded by Django's own engine, and
stored under the SHA-256 of its key: the raw key is never written. With
``SCS["ACCEPT_LEGACY_TOKENS"]`` on, the visitor's existing cookie then finds
the copy, and the next login gives it a token of our own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from time import monotonic
from typing import Any, cast

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.db import SessionStore as DjangoSessionStore
from django.db import connections, router
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from . import codec, conf, tokens
from .exceptions import SessionNotSerializable, SessionTooLarge
from .lifetime import as_datetime, deadline, fixed_deadline, idle_seconds, to_micros
from .users import user_id_of

DJANGO_TABLE = "django_session"
DEFAULT_BATCH_SIZE = 1000


class SourceTableMissing(LookupError):
    """There is no django.contrib.sessions table to import from."""


@dataclass(frozen=True)
class ImportResult:
    """What :func:`import_django_sessions` did."""

    imported: int  # rows copied (with dry_run: rows that would be)
    already_present: int  # rows whose key hash was in our table already
    skipped: int  # odd key, undecodable, empty, too large, or of a user that is gone
    seconds: float
    started_at: datetime  # pass as saved_after to a later run
    dry_run: bool = False


def _model() -> Any:
    # Imported here so that this module can be imported before the app
    # registry is ready.
    from .models import Session

    return Session


def import_django_sessions(
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    saved_after: datetime | None = None,
    dry_run: bool = False,
    progress: Callable[[int, int], Any] | None = None,
) -> ImportResult:
    """Copy the live sessions of ``django_session`` into scs_django's table.

    Rows whose key hash is already stored are left alone, so a second run
    only adds sessions that are new since the first. ``saved_after`` limits
    the run to sessions Django saved after that time, judged by their
    ``expire_date`` (last save + ``SESSION_COOKIE_AGE``); see the migration
    docs for why a second run should pass it. ``progress(done, total)`` is
    called after each batch of ``batch_size`` rows.

    An imported session starts a new lifetime now (Django does not record
    when a session began), capped at Django's ``expire_date``.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1.")
    started = monotonic()
    model = _model()
    using = router.db_for_write(model)
    connection = connections[using]
    with connection.cursor() as cursor:
        if DJANGO_TABLE not in connection.introspection.table_names(cursor):
            raise SourceTableMissing(
                f"The database {using!r} has no {DJANGO_TABLE} table to import "
                "sessions from."
            )
    now = timezone.now()
    threshold = now
    if saved_after is not None:
        threshold = max(
            now, saved_after + timedelta(seconds=settings.SESSION_COOKIE_AGE)
        )
    source = _Source(connection, threshold)
    total = source.count()
    imported = present = skipped = done = 0
    decoder = DjangoSessionStore()
    for rows in source.batches(batch_size):
        done += len(rows)
        # A key not in Django's format could never be presented as a cookie.
        usable = [row for row in rows if tokens.is_legacy(row[0])]
        skipped += len(rows) - len(usable)
        hashes = {tokens.hash_token(key): (data, exp) for key, data, exp in usable}
        stored = set(
            model._default_manager.using(using)
            .filter(key_hash__in=list(hashes))
            .values_list("key_hash", flat=True)
        )
        present += len(stored)
        candidates = []
        for key_hash, (raw, expire_date) in hashes.items():
            if key_hash in stored:
                continue
            session = _session(model, key_hash, decoder.decode(raw), expire_date, now)
            if session is None:
                skipped += 1
            else:
                candidates.append(session)
        sessions = _of_existing_users(candidates)
        skipped += len(candidates) - len(sessions)
        if sessions and not dry_run:
            # A session stored meanwhile under the same hash (a concurrent run)
            # wins; ours is dropped, never an error.
            model._default_manager.using(using).bulk_create(
                sessions, ignore_conflicts=True
            )
        imported += len(sessions)
        if progress is not None:
            progress(done, total)
    return ImportResult(
        imported=imported,
        already_present=present,
        skipped=skipped,
        seconds=monotonic() - started,
        started_at=now,
        dry_run=dry_run,
    )


class _Source:
    """Live rows of django_session, in key order, a batch at a time."""

    def __init__(self, connection: Any, threshold: datetime) -> None:
        self.connection = connection
        quote = connection.ops.quote_name
        self.table = quote(DJANGO_TABLE)
        self.key, self.data, self.expire = (
            quote(name) for name in ("session_key", "session_data", "expire_date")
        )
        self.threshold = connection.ops.adapt_datetimefield_value(threshold)

    def count(self) -> int:
        with self.connection.cursor() as cursor:
            cursor.execute(
                f"SELECT COUNT(*) FROM {self.table} WHERE {self.expire} > %s",  # noqa: S608 - quoted names
                [self.threshold],
            )
            count: int = cursor.fetchone()[0]
            return count

    def batches(self, size: int) -> Any:
        # Keyset pagination on the primary key: each batch is one short
        # indexed query, however large the table.
        sql = (
            f"SELECT {self.key}, {self.data}, {self.expire} FROM {self.table} "  # noqa: S608
            f"WHERE {self.expire} > %s AND {self.key} > %s "
            f"ORDER BY {self.key} LIMIT %s"
        )
        last = ""
        while True:
            with self.connection.cursor() as cursor:
                cursor.execute(sql, [self.threshold, last, size])
                rows = [
                    (key, data, self._datetime(expire))
                    for key, data, expire in cursor.fetchall()
                ]
            if not rows:
                return
            yield rows
            if len(rows) < size:
                return
            last = rows[-1][0]

    def _datetime(self, value: Any) -> datetime:
        # Django keeps datetimes as text on SQLite, naive in the connection's
        # time zone on databases without time zone support.
        if isinstance(value, str):
            value = parse_datetime(value)
        if settings.USE_TZ and timezone.is_naive(value):
            value = timezone.make_aware(value, self.connection.timezone)
        return cast(datetime, value)


def _session(
    model: Any,
    key_hash: str,
    data: dict[str, Any],
    expire_date: datetime,
    now: datetime,
) -> Any:
    if not data:  # undecodable (another SECRET_KEY, tampering) or empty
        return None
    use_tz = conf.use_tz()
    expire_date = as_datetime(expire_date, use_tz)
    absolute = min(expire_date, now + timedelta(seconds=conf.get("ABSOLUTE_TIMEOUT")))
    try:
        payload = codec.encode(
            data,
            created=to_micros(now),
            absolute=to_micros(absolute),
            key_hash=key_hash,
        )
    except (SessionTooLarge, SessionNotSerializable):
        return None
    # The same deadlines the engine sets on a save.
    custom = data.get("_session_expiry")
    try:
        fixed = fixed_deadline(custom, use_tz)
    except ValueError:
        return None
    idle = idle_seconds(custom, conf.get("IDLE_TIMEOUT"))
    expiry = deadline(absolute, fixed, now, idle)
    user_id = user_id_of(data, unusable=_NO_USER)
    if expiry <= now or user_id is _NO_USER:
        return None
    return model(
        key_hash=key_hash,
        data=payload,
        created_at=now,
        absolute_expiry=absolute,
        expiry=expiry,
        last_seen=now,
        user_id=user_id,
    )


_NO_USER = object()


def _of_existing_users(sessions: list[Any]) -> list[Any]:
    """The sessions that are anonymous or belong to a user that still exists."""
    ids = {s.user_id for s in sessions if s.user_id is not None}
    if not ids:
        return sessions
    # From the users' database, which a router may keep apart from ours.
    existing = set(
        get_user_model()
        ._default_manager.filter(pk__in=ids)
        .values_list("pk", flat=True)
    )
    return [s for s in sessions if s.user_id is None or s.user_id in existing]
