"""``manage.py scs_rotate_keys``: seal every stored session under the current key."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import CommandError
from django.db import DatabaseError

from ...backends.cookie import SessionStore as CookieStore
from ...rotation import DEFAULT_BATCH_SIZE, RotationUnsupported, rotate_keys
from ..batches import BatchCommand, configured_engine


class Command(BatchCommand):
    help = (
        "Seal every stored session again under the first key (and seal plain "
        "ones stored while encryption was off), in batches. Safe while the "
        "site serves traffic."
    )

    default_batch_size = DEFAULT_BATCH_SIZE
    batch_size_help = "Sessions read per batch"
    max_seconds_help = "Start no batch after this many seconds; run again to go on."
    dry_run_help = "Count the sessions to seal again without writing anything."

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
        if issubclass(engine, CookieStore):
            if verbosity >= 1:
                self.stdout.write(
                    "the cookie engine stores nothing on the server: nothing to "
                    "seal again (a cookie sealed under a removed key is no session)"
                )
            return
        try:
            result = self.in_batches(
                "Sealing sessions again",
                lambda progress: rotate_keys(
                    engine,
                    batch_size=batch_size,
                    max_seconds=max_seconds,
                    dry_run=dry_run,
                    progress=progress,
                ),
                dry_run=dry_run,
                verbosity=verbosity,
            )
        except (ImproperlyConfigured, RotationUnsupported) as exc:
            raise CommandError(str(exc)) from exc
        except Exception as exc:
            if not engine.is_unavailable(exc) and not isinstance(exc, DatabaseError):
                raise
            raise CommandError(
                f"Sealing sessions again failed after {self.done} were read: {exc}"
            ) from exc
        if verbosity < 1:
            return
        key = result.key_id.hex()
        if result.dry_run:
            self.stdout.write(
                f"would re-seal {result.resealed} sessions under key {key}; "
                f"{result.current} already current; {result.unreadable} unreadable "
                "(dry run, nothing written)"
            )
            return
        self.stdout.write(
            f"re-sealed {result.resealed} sessions under key {key} in "
            f"{result.seconds:.2f}s; {result.current} already current; "
            f"{result.unreadable} unreadable; {result.changed} changed meanwhile"
            + ("" if result.finished else "; stopped by --max-seconds, run again")
        )
