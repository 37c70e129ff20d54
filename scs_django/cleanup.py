"""Deleting expired sessions from the database in small, short batches.

One ``DELETE`` of the whole expired range would hold its locks, and on
PostgreSQL write its WAL, for as long as it takes to remove millions of rows.
Here every batch deletes at most ``batch_size`` expired rows, oldest first
through the ``expiry`` index, in one short statement committed on its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from time import monotonic
from typing import Any

from django.db import connections, router
from django.utils import timezone

DEFAULT_BATCH_SIZE = 1000


@dataclass(frozen=True)
class CleanupResult:
    """What :func:`delete_expired` did."""

    deleted: int  # rows deleted (with dry_run: rows that would be)
    left: int  # expired rows still stored when it stopped (max_seconds)
    seconds: float
    batches: int
    longest_batch_seconds: float
    dry_run: bool = False


def _model() -> Any:
    # Imported here so that this module, and the engines that import it, can
    # be imported before the app registry is ready.
    from .models import Session

    return Session


def delete_expired(
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_seconds: float | None = None,
    dry_run: bool = False,
    progress: Callable[[int, int], Any] | None = None,
    now: datetime | None = None,
    model: Any = None,
) -> CleanupResult:
    """Delete the sessions whose expiry is at or before ``now`` (default: now).

    Rows go in batches of at most ``batch_size``, each one ``DELETE`` in its
    own short transaction (unless the caller holds one open), after a
    ``SELECT`` of one row that finds where the next batch starts (on MySQL, of
    the batch's ids). No batch starts after ``max_seconds``; the expired rows
    it did not reach are reported as ``left``. ``dry_run`` only counts.
    ``progress(deleted, total)`` is called after each batch, ``total`` being
    the number of expired rows found at the start.

    ``model`` defaults to :class:`scs_django.models.Session`; an engine with
    its own model passes it. Database errors propagate; the batches committed
    before stay deleted.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1.")
    started = monotonic()
    model = model or _model()
    using = router.db_for_write(model)
    now = now or timezone.now()
    expired = model._default_manager.using(using).filter(expiry__lte=now)
    total = expired.count()
    if dry_run or not total:
        return CleanupResult(
            deleted=total if dry_run else 0,
            left=0,
            seconds=monotonic() - started,
            batches=0,
            longest_batch_seconds=0.0,
            dry_run=dry_run,
        )
    oldest_first = expired.order_by("expiry")
    # MySQL refuses LIMIT inside IN (...): there the ids are read first.
    one_statement = connections[using].features.allow_sliced_subqueries_with_in
    deleted = batches = 0
    longest = 0.0
    lower: datetime | None = None
    while True:
        if max_seconds is not None and monotonic() - started >= max_seconds:
            return CleanupResult(
                deleted=deleted,
                left=expired.count(),
                seconds=monotonic() - started,
                batches=batches,
                longest_batch_seconds=longest,
            )
        batch_started = monotonic()
        # Each batch starts at the expiry where the last one ended: an index
        # scan from the oldest expiry would wade through the dead entries of
        # every batch before it until vacuum removes them, slower and slower.
        page = oldest_first if lower is None else oldest_first.filter(expiry__gte=lower)
        if one_statement:
            next_start = list(
                page.values_list("expiry", flat=True)[batch_size - 1 : batch_size]
            )
            batch = expired.filter(pk__in=page.values("pk")[:batch_size])
        else:
            rows = list(page.values_list("pk", "expiry")[:batch_size])
            next_start = [rows[-1][1]] if len(rows) == batch_size else []
            batch = expired.filter(pk__in=[pk for pk, _ in rows])
        # ``expired`` checks the expiry again at the DELETE, for a row that
        # was given a new one meanwhile.
        count = batch.delete()[1].get(model._meta.label, 0)
        longest = max(longest, monotonic() - batch_started)
        batches += 1
        deleted += count
        if progress is not None:
            progress(deleted, total)
        if not next_start:
            break
        lower = next_start[0]
    return CleanupResult(
        deleted=deleted,
        left=0,
        seconds=monotonic() - started,
        batches=batches,
        longest_batch_seconds=longest,
    )
