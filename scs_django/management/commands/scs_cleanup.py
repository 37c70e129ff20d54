"""``manage.py scs_cleanup``: delete expired sessions, for cron."""

from __future__ import annotations

import argparse
import contextlib
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError

from ... import conf
from ...backends.cache import SessionStore as CacheStore
from ...backends.db import SessionStore as DBStore
from ...cleanup import DEFAULT_BATCH_SIZE, delete_expired
from ..progress import progress_bar


def configured_engine() -> type[Any]:
    """The engine class ``SESSION_ENGINE`` names; ``CommandError`` when it
    names none (the commands ask the class, never the setting's text)."""
    try:
        return conf.session_engine()
    except (ImportError, AttributeError) as exc:
        raise CommandError(
            f"SESSION_ENGINE {settings.SESSION_ENGINE!r} cannot be imported: {exc}"
        ) from exc


def positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive number")
    return number


def positive_float(value: str) -> float:
    number = float(value)
    if not number > 0:
        raise argparse.ArgumentTypeError(f"{value} is not a positive number")
    return number


class Command(BaseCommand):
    help = (
        "Delete expired sessions in small batches, each its own short "
        "transaction. Safe to run from cron on tables of millions of rows."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--batch-size",
            type=positive_int,
            default=DEFAULT_BATCH_SIZE,
            help=f"Rows deleted per statement (default: {DEFAULT_BATCH_SIZE}).",
        )
        parser.add_argument(
            "--max-seconds",
            type=positive_float,
            default=None,
            help="Start no batch after this many seconds; report what is left.",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Count the expired sessions without deleting them.",
        )

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
        done = 0
        bar: Any = contextlib.nullcontext(None)
        if verbosity >= 1 and not dry_run and self.stdout.isatty():
            bar = progress_bar(self.stdout, "Deleting expired sessions")
        try:
            with bar as draw:

                def progress(deleted: int, total: int) -> None:
                    nonlocal done
                    done = deleted
                    if draw is not None:
                        draw(deleted, total)

                result = delete_expired(
                    batch_size=batch_size,
                    max_seconds=max_seconds,
                    dry_run=dry_run,
                    progress=progress,
                    model=engine.get_model_class(),
                )
        except DatabaseError as exc:
            raise CommandError(
                f"Deleting expired sessions failed after {done} were deleted: {exc}"
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
