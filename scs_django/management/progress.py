"""Progress display for long commands on a terminal.

``rich`` or ``tqdm`` draw the bar when one of them is installed; neither is a
dependency, and without them a single self-overwriting line does the job.
"""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import Callable, Iterator
from typing import Any

from django.core.management.base import OutputWrapper

Update = Callable[[int, int], None]


def _installed(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


@contextlib.contextmanager
def progress_bar(stdout: OutputWrapper, description: str) -> Iterator[Update]:
    """Yield ``update(done, total)``, drawing a bar on ``stdout``."""
    # The wrapper appends a newline to every write; bars need the raw stream.
    stream = getattr(stdout, "_out", stdout)
    if _installed("rich"):
        with _rich(stream, description) as update:
            yield update
    elif _installed("tqdm"):
        with _tqdm(stream, description) as update:
            yield update
    else:
        with _line(stream, description) as update:
            yield update


@contextlib.contextmanager
def _rich(stream: Any, description: str) -> Iterator[Update]:
    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(file=stream), transient=True) as bar:
        task = bar.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=max(done, total))

        yield update


@contextlib.contextmanager
def _tqdm(stream: Any, description: str) -> Iterator[Update]:
    from tqdm import tqdm

    with tqdm(file=stream, desc=description, unit=" sessions", leave=False) as bar:

        def update(done: int, total: int) -> None:
            bar.total = max(done, total)
            bar.update(done - bar.n)

        yield update


@contextlib.contextmanager
def _line(stream: Any, description: str) -> Iterator[Update]:
    width = 0

    def update(done: int, total: int) -> None:
        nonlocal width
        total = max(done, total)
        percent = 100 * done // total if total else 100
        text = f"{description}: {done}/{total} ({percent}%)"
        stream.write("\r" + text.ljust(width))
        stream.flush()
        width = len(text)

    try:
        yield update
    finally:
        if width:
            # Clear the line, so that the summary printed next stands alone.
            stream.write("\r" + " " * width + "\r")
            stream.flush()
