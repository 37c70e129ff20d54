"""``manage.py scs_import_sessions``: copy django.contrib.sessions' sessions."""

from __future__ import annotations

import argparse
import contextlib
from datetime import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from ... import conf
from ...importer import (
    DEFAULT_BATCH_SIZE,
    DJANGO_TABLE,
    SourceTableMissing,
    import_django_sessions,
)
from ..batches import positive_int
from ..progress import progress_bar


def moment(value: str) -> datetime:
    parsed = parse_datetime(value)
    if parsed is None:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a date and time such as 2026-05-04T10:30:00+00:00"
        )
    return timezone.make_aware(parsed) if timezone.is_naive(parsed) else parsed


class Command(BaseCommand):
    help = (
        f"Copy the live sessions of django.contrib.sessions' {DJANGO_TABLE} table "
        "into scs_django's, stored under the hash of their key. Sessions already "
        "copied are left alone."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--batch-size",
            type=positive_int,
            default=DEFAULT_BATCH_SIZE,
            help=f"Rows read and written per batch (default: {DEFAULT_BATCH_SIZE}).",
        )
        parser.add_argument(
            "--saved-after",
            type=moment,
            default=None,
            help="Only sessions Django saved after this time (ISO 8601), "
            "as printed by the previous run.",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Count what would be imported without writing anything.",
        )

    def handle(
        self,
        *args: Any,
        batch_size: int,
        saved_after: datetime | None,
        dry_run: bool,
        verbosity: int,
        **options: Any,
    ) -> None:
        bar: Any = contextlib.nullcontext(None)
        if verbosity >= 1 and self.stdout.isatty():
            bar = progress_bar(self.stdout, f"Importing from {DJANGO_TABLE}")
        try:
            with bar as draw:
                result = import_django_sessions(
                    batch_size=batch_size,
                    saved_after=saved_after,
                    dry_run=dry_run,
                    progress=draw,
                )
        except SourceTableMissing as exc:
            raise CommandError(str(exc)) from exc
        except DatabaseError as exc:
            raise CommandError(f"Importing sessions failed: {exc}") from exc
        if verbosity < 1:
            return
        verb = "would import" if dry_run else "imported"
        self.stdout.write(
            f"{verb} {result.imported} sessions from {DJANGO_TABLE} in "
            f"{result.seconds:.2f}s; {result.already_present} already present, "
            f"{result.skipped} skipped"
        )
        if dry_run:
            return
        if not conf.get("ACCEPT_LEGACY_TOKENS"):
            self.stdout.write(
                self.style.WARNING(
                    'SCS["ACCEPT_LEGACY_TOKENS"] is off: imported sessions do not '
                    "answer to their cookies until you turn it on."
                )
            )
        self.stdout.write(
            "To copy the sessions Django saves after this run, run again with "
            f"--saved-after {result.started_at.isoformat()}"
        )
