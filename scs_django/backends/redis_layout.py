"""The value of a session in Redis, defined once.

Each session is one Redis string. It starts with a fixed header of ASCII
digits, so that the Lua scripts can check and bump it in place, and Python can
slice it without a parser:

======  ====  =============================================================
offset  size  field
======  ====  =============================================================
0       1     ``s`` a session; other kinds are followed by less (below)
1       16    expiry (min of idle, fixed and absolute deadlines), µs
17      16    last seen, µs
33      16    version, bumped by every data write
49      16    created, µs
65      16    absolute expiry, µs
81      6     U, the length of the user id (empty when anonymous)
87      6     M, the length of the client metadata (JSON; empty when not recorded)
93      U     the user id
93+U    M     the client metadata: ``{"ip": ..., "ua": ...}``
93+U+M  rest  the encoded envelope (raw bytes, never unpickled)
======  ====  =============================================================

Times are microseconds since the epoch, zero-padded to 16 digits (enough until
the year 2286). :data:`FIELDS` is that header as a table: the slices below and
the offsets in the Lua scripts (:data:`LUA`, see
:mod:`scs_django.backends.redis_scripts`) are both computed from it.

Other values under a session's key: ``x`` a cached_db tombstone (nothing
follows); ``p`` and the version field alone (:func:`pending_marker`), a
cached_db marker of a version being written to the database; ``r`` and a
token hash, the forward a renewal leaves under the old key.
"""

from __future__ import annotations

import json
from typing import Any

from ..lifetime import to_micros as micros
from .base import Record

# The header: (field, width in bytes), in order.
FIELDS: tuple[tuple[str, int], ...] = (
    ("kind", 1),
    ("expiry", 16),
    ("last_seen", 16),
    ("version", 16),
    ("created_at", 16),
    ("absolute_expiry", 16),
    ("user_length", 6),
    ("client_length", 6),
)


WIDTHS = dict(FIELDS)
OFFSETS = {name: sum(w for _, w in FIELDS[:i]) for i, (name, _) in enumerate(FIELDS)}
HEAD = sum(WIDTHS.values())  # bytes before the user id
SPANS = {name: slice(OFFSETS[name], OFFSETS[name] + WIDTHS[name]) for name in WIDTHS}
KIND, EXPIRY, LAST_SEEN, VERSION = (
    SPANS[name] for name in ("kind", "expiry", "last_seen", "version")
)
USER_LENGTH, CLIENT_LENGTH = SPANS["user_length"], SPANS["client_length"]
# The times and the version: every field between the kind and the two lengths.
NUMBERS = tuple(name for name, _ in FIELDS[1:-2])
assert FIELDS[0][0] == "kind"  # noqa: S101
assert [name for name, _ in FIELDS[-2:]] == ["user_length", "client_length"]  # noqa: S101
# An idle touch rewrites expiry and last seen with one SETRANGE.
assert OFFSETS["expiry"] + WIDTHS["expiry"] == OFFSETS["last_seen"]  # noqa: S101
# Every number has the same width.
assert len({WIDTHS[name] for name in NUMBERS}) == 1  # noqa: S101

SESSION, TOMBSTONE, PENDING, FORWARD = b"s", b"x", b"p", b"r"
_LARGEST: int = 10 ** WIDTHS["expiry"] - 1  # int ** int is Any to mypy
_NUMBER = b"%%0%dd" % WIDTHS["expiry"]
_LENGTHS = b"%%0%dd%%0%dd" % (WIDTHS["user_length"], WIDTHS["client_length"])


def digits(value: int) -> bytes:
    """``value`` as a number field of the header."""
    # A fixed width keeps every field at its offset; past the year 2286 a
    # deadline is as good as never.
    return _NUMBER % min(max(value, 0), _LARGEST)


def times(expiry: int, last_seen: int) -> bytes:
    """The expiry and last-seen fields, which an idle touch writes in place."""
    return digits(expiry) + digits(last_seen)


def fixed_header(record: Record) -> bytes:
    """The header of ``record``'s value up to the lengths: kind and the numbers."""
    numbers = {
        "expiry": micros(record.expiry),
        "last_seen": micros(record.last_seen),
        "version": record.version,
        "created_at": micros(record.created_at),
        "absolute_expiry": micros(record.absolute_expiry),
    }
    return SESSION + b"".join(digits(numbers[name]) for name in NUMBERS)


def lengths(user: bytes, client: bytes) -> bytes:
    """The two length fields that end the header."""
    return _LENGTHS % (len(user), len(client))


def client_metadata(record: Record) -> bytes:
    """The client metadata of ``record`` as stored, or b"" when none was recorded."""
    if not record.ip and not record.user_agent:
        return b""
    return json.dumps({"ip": record.ip or None, "ua": record.user_agent or ""}).encode()


def user_field(record: Record) -> bytes:
    """``record``'s user id as stored, b"" when anonymous."""
    return b"" if record.user_id is None else str(record.user_id).encode()


def pack(record: Record, client: bytes = b"") -> bytes:
    """``record`` as one Redis value."""
    user = user_field(record)
    return b"".join(
        (fixed_header(record), lengths(user, client), user, client, record.payload)
    )


def pending_marker(version: int) -> bytes:
    """The cached_db marker of ``version`` being written: the version field at
    its offset, zeros before it."""
    return PENDING + b"0" * (OFFSETS["version"] - WIDTHS["kind"]) + digits(version)


def live_session(value: Any, now: int) -> tuple[bytes, int, int] | None:
    """Payload, last seen and version of a session value expiring after ``now``
    (µs); None for anything else."""
    # The hot path: slice the header rather than unpack() all of it.
    if value is None or len(value) < HEAD or value[KIND] != SESSION:
        return None
    try:
        if int(value[EXPIRY]) <= now:
            return None
        skip = HEAD + int(value[USER_LENGTH]) + int(value[CLIENT_LENGTH])
        return value[skip:], int(value[LAST_SEEN]), int(value[VERSION])
    except ValueError:
        return None


def unpack(value: Any) -> dict[str, Any] | None:
    """Every field of a stored session value, or None for anything else
    (a tombstone, a value of another shape)."""
    if not isinstance(value, bytes) or len(value) < HEAD or value[KIND] != SESSION:
        return None
    try:
        row: dict[str, Any] = {name: int(value[SPANS[name]]) for name in NUMBERS}
        users, clients = int(value[USER_LENGTH]), int(value[CLIENT_LENGTH])
        if len(value) < HEAD + users + clients:
            return None
        client = json.loads(value[HEAD + users : HEAD + users + clients] or b"{}")
    except ValueError:
        return None
    if not isinstance(client, dict):
        client = {}
    row["user"] = value[HEAD : HEAD + users].decode(errors="replace")
    row["ip"] = client.get("ip")
    row["user_agent"] = client.get("ua") or ""
    row["payload"] = value[HEAD + users + clients :]
    return row


def _lua_names() -> dict[str, object]:
    names: dict[str, object] = {"head": HEAD}
    for name, width in FIELDS:
        at = OFFSETS[name]
        names[name] = f"{at + 1}, {at + width}"  # string.sub(s, first, last)
        names[f"{name}_at"] = at  # 0-based, for SETRANGE
        names[f"{name}_end"] = at + width  # bytes up to the field's end
    names.update(
        (kind, letter.decode())
        for kind, letter in (
            ("SESSION", SESSION),
            ("TOMBSTONE", TOMBSTONE),
            ("PENDING", PENDING),
            ("FORWARD", FORWARD),
        )
    )
    names["lengths_format"] = _LENGTHS.decode()
    return names


# What the Lua scripts' templates may name (string.Template, so Lua keeps its
# braces): ``$version`` is "first, last" for string.sub, ``$version_at`` the
# 0-based offset, ``$version_end`` the bytes up to the field's end, ``$head``
# the header's length, ``$SESSION`` and the other kinds their letter,
# ``$lengths_format`` the string.format of the two lengths.
LUA = _lua_names()
