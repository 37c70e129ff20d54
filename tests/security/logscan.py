"""Every log record of the test run, checked for session tokens and token hashes.

DESIGN §3.2: nothing in logs beyond a short hash prefix. A record factory sees
each record any logger creates (whatever its handlers or ``propagate``), and
every token ``scs_django.tokens.new_token`` hands out is remembered, so a test
fails when a record carries a token it issued, anything shaped like a token,
or a full SHA-256 hex digest.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
from collections.abc import Callable
from typing import Any

from scs_django import tokens

# Shapes checked in every record, besides the exact tokens issued: 43
# base64url characters (a token) and 64 hex digits (a token hash), not part
# of a longer run of the same alphabet.
TOKEN_SHAPE = re.compile(r"(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-])")
HASH_SHAPE = re.compile(r"(?<![0-9A-Fa-f])[0-9A-Fa-f]{64}(?![0-9A-Fa-f])")

_formatter = logging.Formatter()


def record_text(record: logging.LogRecord) -> str:
    """Everything a handler could write for ``record``: message, args, traceback."""
    parts = [str(record.msg), repr(record.args)]
    # A record whose format string does not match its args still gets scanned.
    with contextlib.suppress(Exception):
        parts.append(record.getMessage())
    if record.exc_info:
        parts.append(_formatter.formatException(record.exc_info))
    if record.stack_info:
        parts.append(str(record.stack_info))
    return "\n".join(parts)


def leaks(record: logging.LogRecord, issued: set[str]) -> list[str]:
    """Why ``record`` must not be logged, or [] when it is clean."""
    text = record_text(record)
    found = [f"an issued token ({token[:4]}…)" for token in issued if token in text]
    if any(tokens.is_well_formed(m) for m in TOKEN_SHAPE.findall(text)):
        found.append("a 43-character base64url token")
    if HASH_SHAPE.search(text):
        found.append("a 64-hex-digit hash")
    return found


class LogScan:
    """Records every log record and issued token; installed for the whole run."""

    def __init__(self) -> None:
        self.records: list[logging.LogRecord] = []
        self.issued: set[str] = set()
        self._lock = threading.Lock()
        self._factory: Callable[..., logging.LogRecord] | None = None
        self._new_token: Callable[[], str] | None = None
        self._root_level = logging.WARNING

    def install(self) -> None:
        self._factory = previous = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            with self._lock:
                self.records.append(record)
            return record

        logging.setLogRecordFactory(factory)
        # Loggers without a level of their own (scs_django's among them) then
        # create records at every level, so debug lines get scanned too.
        root = logging.getLogger()
        self._root_level = root.level
        root.setLevel(logging.DEBUG)

        self._new_token = original = tokens.new_token

        def new_token() -> str:
            token = original()
            with self._lock:
                self.issued.add(token)
            return token

        tokens.new_token = new_token

    def uninstall(self) -> None:
        if self._factory is not None:
            logging.setLogRecordFactory(self._factory)
        if self._new_token is not None:
            tokens.new_token = self._new_token
        logging.getLogger().setLevel(self._root_level)

    def take(self) -> tuple[list[logging.LogRecord], set[str]]:
        """The records and tokens since the last call, forgetting them."""
        with self._lock:
            records, issued = self.records, self.issued
            self.records, self.issued = [], set()
        return records, issued

    def problems(self) -> list[str]:
        """One line per leaking record since the last call."""
        records, issued = self.take()
        lines = []
        for record in records:
            for reason in leaks(record, issued):
                lines.append(
                    f"{record.name}:{record.levelname} {record.pathname}:{record.lineno} "
                    f"logs {reason}"
                )
        return lines
