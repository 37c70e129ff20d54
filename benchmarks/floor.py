"""The physical floor under a session request, for benchmarks/requests.py.

The bare statements and commands a session engine cannot do without, run
through the same connections the engines use: ``SELECT`` of a session row by
its key hash, ``UPDATE`` and ``INSERT`` of one, Redis ``GET`` and ``SET`` of a
value of a session's size. requests.py prints each engine's read and write as
a multiple of it.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

# -- the physical floor --------------------------------------------------------------

FLOOR = {
    "SELECT by key": "SELECT data, last_seen, version, expiry FROM scs_django_session "
    "WHERE key_hash = %s",
    "UPDATE by key": "UPDATE scs_django_session SET last_seen = %s WHERE key_hash = %s",
    "INSERT": "INSERT INTO scs_django_session (key_hash, data, created_at, "
    "absolute_expiry, expiry, last_seen, version, user_agent) "
    "VALUES (%s, %s, %s, %s, %s, %s, 1, '')",
}


def measure_floor(iterations: int, rounds: int, payload: int) -> dict[str, float]:
    """Median µs of the bare statements and commands under a request: through
    Django's database connection and the Redis client django-redis holds,
    taking turns like the requests."""
    import secrets

    from django.db import connection
    from django.utils import timezone
    from django_redis import get_redis_connection

    from scs_django import tokens
    from scs_django.backends.db import SessionStore

    session = SessionStore()  # a session row as the scs db engine stores it
    session["cart"] = 1
    if payload:
        session["filler"] = "x" * payload
    session.save()
    key_hash = tokens.hash_token(session.session_key)
    with connection.cursor() as cursor:
        cursor.execute(FLOOR["SELECT by key"], [key_hash])
        blob = bytes(cursor.fetchone()[0])
    client = get_redis_connection("default")
    redis_key = "bench:floor"
    client.set(redis_key, blob)

    def select() -> None:
        with connection.cursor() as cursor:
            cursor.execute(FLOOR["SELECT by key"], [key_hash])
            cursor.fetchone()

    def update() -> None:
        with connection.cursor() as cursor:
            cursor.execute(FLOOR["UPDATE by key"], [timezone.now(), key_hash])

    def insert() -> None:
        now = timezone.now()
        row = (tokens.hash_token(secrets.token_urlsafe(32)), blob, now, now, now, now)
        with connection.cursor() as cursor:
            cursor.execute(FLOOR["INSERT"], row)

    operations: dict[str, Callable[[], Any]] = {
        "SELECT by key": select,
        "UPDATE by key": update,
        "INSERT": insert,
        "Redis GET": lambda: client.get(redis_key),
        "Redis SET": lambda: client.set(redis_key, blob),
    }
    samples: dict[str, list[float]] = {name: [] for name in operations}
    names = list(operations)
    for turn in range(rounds):
        order = names[turn % len(names) :] + names[: turn % len(names)]
        for name in order:
            for _ in range(20):
                operations[name]()
            for _ in range(iterations):
                started = time.perf_counter()
                operations[name]()
                samples[name].append(time.perf_counter() - started)
    client.delete(redis_key)
    return {name: statistics.median(values) * 1e6 for name, values in samples.items()}


# Which floor each request of each engine kind stands on.
ON_FLOOR = {
    ("read existing", "db"): "SELECT by key",
    ("write existing", "db"): "UPDATE by key",
    ("create", "db"): "INSERT",
    ("read existing", "cache"): "Redis GET",
    ("write existing", "cache"): "Redis SET",
    ("create", "cache"): "Redis SET",
    ("read existing", "cached_db"): "Redis GET",
}


def print_floor(
    floor: dict[str, float],
    micros: dict[tuple[str, str], float],
    kinds: dict[str, str],
) -> None:
    """The floor, and each engine's read and write as a multiple of it: the
    whole request, and the session's share (less "no session touched")."""
    print()
    print("The physical floor, through the same connections (median µs):")
    for name, value in floor.items():
        print(f"  {name:14} {value:7.0f}")
    print()
    headers = ("request", "engine", "µs", "floor", "× floor", "session µs", "× floor")
    rows = []
    for (request, engine), value in micros.items():
        kind = kinds[engine]
        name = ON_FLOOR.get((request, kind))
        if name is None:
            continue
        base = floor[name]
        idle = micros.get(("no session touched", engine))
        share = "" if idle is None else f"{value - idle:.0f}"
        times = "" if idle is None else f"{(value - idle) / base:.2f}"
        rows.append(
            (request, engine, f"{value:.0f}", name, f"{value / base:.2f}", share, times)
        )
    if rows:
        print_rows(headers, rows)


def print_rows(headers: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    rule = "  ".join("=" * w for w in widths)
    print(rule)
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    print(rule)
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
    print(rule)
