"""``manage.py scs_cleanup``: delete expired sessions, for cron."""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.core.management.base import CommandError
from django.db import DatabaseError

from ...backends.cache import SessionStore as CacheStore
from ...backends.db import SessionStore as DBStore
from ...cleanup import DEFAULT_BATCH_SIZE, delete_expired
from ..batches import BatchCommand, configured_engine


class Command(BatchCommand):
    help = (
        "Delete expired sessions in small batches, each its own short "
        "transaction. Safe to run from cron on tables of millions of rows."
    )

    default_batch_size = DEFAULT_BATCH_SIZE
    batch_size_help = "Rows deleted per statement"
    max_seconds_help = "Start no batch after this many seconds; report what is left."
    dry_run_help = "Count the expired sessions without deleting them."

    def handle(
        self,
        *args: Any,
        batch_size: int,
        max_seconds: float | None,
        dry_run: bool,
        verbosity: int,
        **options: Any,
    ) -> None:
        engine = configured_engine()
        # The db engine, cached_db and their subclasses keep sessions in a table.
        if not issubclass(engine, DBStore):
            return self.clear_other_engine(engine, dry_run, verbosity)
        try:
            result = self.in_batches(
                "Deleting expired sessions",
                lambda progress: delete_expired(
                    batch_size=batch_size,
                    max_seconds=max_seconds,
                    dry_run=dry_run,
                    progress=progress,
                    model=engine.get_model_class(),
                ),
                dry_run=dry_run,
                verbosity=verbosity,
            )
        except DatabaseError as exc:
            raise CommandError(
                f"Deleting expired sessions failed after {self.done} were deleted: "
                f"{exc}"
            ) from exc
        if verbosity < 1:
            return
        if result.dry_run:
            self.stdout.write(
                f"would delete {result.deleted} expired sessions (dry run, "
                "nothing deleted)"
            )
            return
        self.stdout.write(
            f"deleted {result.deleted} expired sessions in {result.seconds:.2f}s; "
            f"{result.left} left"
        )
        if verbosity >= 2:
            self.stdout.write(
                f"{result.batches} batches of at most {batch_size} rows; the "
                f"longest took {result.longest_batch_seconds:.3f}s"
            )

    def clear_other_engine(
        self, engine: type[Any], dry_run: bool, verbosity: int
    ) -> None:
        """Leave the work to ``clear_expired()`` of an engine without our table."""
        name = settings.SESSION_ENGINE
        if issubclass(engine, CacheStore):
            note = (
                "the cache expires sessions itself; clear_expired() prunes the "
                "per-user indexes"
            )
        else:
            note = f"{name} keeps no scs_django session table"
        if dry_run:
            if verbosity >= 1:
                self.stdout.write(
                    f"{note}; would call SessionStore.clear_expired() (dry run)"
                )
            return
        started = time.monotonic()
        try:
            engine.clear_expired()
        except NotImplementedError as exc:
            raise CommandError(
                f"Session engine {name} cannot clear expired sessions."
            ) from exc
        except Exception as exc:
            raise CommandError(f"{name}: clear_expired() failed: {exc}") from exc
        if verbosity >= 1:
            self.stdout.write(
                f"{note}; SessionStore.clear_expired() done in "
                f"{time.monotonic() - started:.2f}s"
            )
