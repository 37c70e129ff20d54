"""What the commands that work through sessions in batches share:
``--batch-size``, ``--max-seconds`` and ``--dry-run``, the configured engine,
and a progress bar on a terminal."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Callable
from typing import Any, TypeVar

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from .. import conf
from .progress import Update, progress_bar

T = TypeVar("T")


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


class BatchCommand(BaseCommand):
    """A command with the three batch options; subclasses word their help."""

    default_batch_size: int
    batch_size_help: str
    max_seconds_help: str
    dry_run_help: str
    #: Sessions counted so far by the running work, for an error message.
    done = 0

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--batch-size",
            type=positive_int,
            default=self.default_batch_size,
            help=f"{self.batch_size_help} (default: {self.default_batch_size}).",
        )
        parser.add_argument(
            "--max-seconds",
            type=positive_float,
            default=None,
            help=self.max_seconds_help,
        )
        parser.add_argument("--dry-run", action="store_true", help=self.dry_run_help)

    def in_batches(
        self,
        description: str,
        work: Callable[[Update], T],
        *,
        dry_run: bool,
        verbosity: int,
    ) -> T:
        """Run ``work(progress)``, with a bar on a terminal unless it is a dry
        run; ``self.done`` follows the progress it reports."""
        self.done = 0
        bar: Any = contextlib.nullcontext(None)
        if verbosity >= 1 and not dry_run and self.stdout.isatty():
            bar = progress_bar(self.stdout, description)
        with bar as draw:

            def progress(done: int, total: int) -> None:
                self.done = done
                if draw is not None:
                    draw(done, total)

            return work(progress)
