"""How scs_django's engines behave as data grows: payload, live rows, sessions
per user, and cleanup under load.

Run by hand from the repository root (not part of the test suite)::

    python benchmarks/growth.py                 # every part, full size
    python benchmarks/growth.py --quick         # every part, small: checks it runs
    python benchmarks/growth.py --part live --rows 10000,1000000

Parts (each runs in a process of its own, on throwaway servers it starts):

``payload``  read and write of one session holding 100 B, 1 KB, 10 KB, 100 KB,
             through the store API, on each engine (median µs).
``live``     read and write of one session while the table holds 10,000 and
             then 1,000,000 live sessions (PostgreSQL, filled server side with
             ``INSERT ... SELECT generate_series``) and Redis holds as many keys
             (pipelined ``SET``), on each engine.
``user``     ``sessions.for_user`` and ``sessions.revoke`` of a user with 1, 100
             and 10,000 sessions on each engine: time and peak Python memory
             (``tracemalloc``).
``cleanup``  ``scs_cleanup``'s ``delete_expired`` on 1,000,000 expired rows on
             PostgreSQL and on MariaDB while threads keep reading sessions: the
             readers' p50 and p99 with and without the cleanup running.

Every part removes what it filled. Times are medians of interleaved samples;
on a shared machine compare rows of one run, not runs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import growth_fill as fill  # noqa: E402

ENGINES = {
    "scs db": "scs_django.backends.db",
    "scs cache": "scs_django.backends.cache",
    "scs cached_db": "scs_django.backends.cached_db",
}
PAYLOADS = (100, 1_000, 10_000, 100_000)


def configure(database: dict[str, Any], redis_url: str) -> None:
    import django
    from django.conf import settings

    settings.configure(
        SECRET_KEY="benchmark-not-secret",  # noqa: S106
        USE_TZ=True,
        INSTALLED_APPS=[
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "scs_django",
        ],
        DATABASES={"default": database},
        CACHES={
            "default": {
                "BACKEND": "django_redis.cache.RedisCache",
                "LOCATION": redis_url,
            }
        },
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        SESSION_ENGINE="scs_django.backends.db",
        SILENCED_SYSTEM_CHECKS=["scs_django.W001", "scs_django.W002"],
        # Room for the 100 KB payload (the default limit is 64 KiB).
        SCS={"MAX_BYTES": 256 * 1024},
    )
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def engine(name: str) -> Any:
    """Make ``name`` the session engine; its SessionStore."""
    from importlib import import_module

    from django.conf import settings

    settings.SESSION_ENGINE = ENGINES[name]
    return import_module(ENGINES[name]).SessionStore


def timed(action: Callable[[], Any], samples: int) -> float:
    """Median µs of ``action`` over ``samples`` runs, after a few unmeasured."""
    for _ in range(5):
        action()
    times = []
    for _ in range(samples):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e6


def read_and_write(store_class: Any, payload: int, samples: int) -> tuple[float, float]:
    """Median µs to load a session of ``payload`` bytes, and to change it."""
    session = store_class()
    session["filler"] = os.urandom(payload).hex()[:payload]  # does not compress
    session["n"] = 0
    session.save()
    key = session.session_key

    def read() -> None:
        store_class(key).load()

    def write() -> None:
        s = store_class(key)
        s["n"] = s.get("n", 0) + 1
        s.save()

    return timed(read, samples), timed(write, samples)


def print_rows(
    title: str, headers: tuple[str, ...], rows: list[tuple[str, ...]]
) -> None:
    print()
    print(title)
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    rule = "  ".join("=" * w for w in widths)
    for line in (rule, headers, rule, *rows, rule):
        if isinstance(line, str):
            print(line)
        else:
            print(
                "  ".join(
                    c.ljust(w) for c, w in zip(line, widths, strict=True)
                ).rstrip()
            )
    sys.stdout.flush()


# -- parts ---------------------------------------------------------------------------


def part_payload(args: argparse.Namespace) -> None:
    results: dict[tuple[str, int], list[tuple[float, float]]] = {}
    for turn in range(args.rounds):
        for payload in PAYLOADS:
            names = list(ENGINES)
            names = names[turn % 3 :] + names[: turn % 3]
            for name in names:
                timing = read_and_write(engine(name), payload, args.samples)
                results.setdefault((name, payload), []).append(timing)
    rows = []
    for (name, payload), timings in results.items():
        read = statistics.median(t[0] for t in timings)
        write = statistics.median(t[1] for t in timings)
        rows.append((name, f"{payload:,} B", f"{read:.0f}", f"{write:.0f}"))
    print_rows(
        "Read and write of one session by its size (store API, median µs):",
        ("engine", "payload", "read µs", "write µs"),
        sorted(rows, key=lambda r: (r[0], int(r[1][:-2].replace(",", "")))),
    )


def part_live(args: argparse.Namespace) -> None:
    rows = []
    filled = 0
    for target in args.live_rows:
        seconds = fill.live_rows(target - filled, start=filled)
        redis_seconds = fill.redis_keys(target - filled, start=filled)
        filled = target
        for turn in range(args.rounds):
            names = list(ENGINES)
            for name in names[turn % 3 :] + names[: turn % 3]:
                read, write = read_and_write(engine(name), 1_000, args.samples)
                rows.append((name, target, read, write, seconds, redis_seconds))
    table = []
    for name in ENGINES:
        for target in args.live_rows:
            mine = [r for r in rows if r[0] == name and r[1] == target]
            table.append((
                name, f"{target:,}",
                f"{statistics.median(r[2] for r in mine):.0f}",
                f"{statistics.median(r[3] for r in mine):.0f}",
                f"{mine[0][4]:.1f} / {mine[0][5]:.1f}",
            ))  # fmt: skip
    fill.remove_filled()
    print_rows(
        "Read and write of a 1 KB session by live sessions stored (median µs):",
        (
            "engine",
            "live sessions",
            "read µs",
            "write µs",
            "fill s (PostgreSQL / Redis)",
        ),
        table,
    )


def part_user(args: argparse.Namespace) -> None:
    import tracemalloc

    from django.contrib.auth import get_user_model

    from scs_django import sessions

    rows = []
    for count in args.user_sessions:
        for name in ENGINES:
            store_class = engine(name)
            user = get_user_model().objects.create_user(
                f"u{count}-{name}".replace(" ", "-")
            )
            fill.user_sessions(store_class, user, count)
            tracemalloc.start()
            started = time.perf_counter()
            listed = sessions.for_user(user)
            listing = time.perf_counter() - started
            count_listed = len(listed)
            listing_peak = tracemalloc.get_traced_memory()[1]
            del listed  # what revoke needs, not what the listing still holds
            tracemalloc.reset_peak()
            held = tracemalloc.get_traced_memory()[0]
            started = time.perf_counter()
            ended = sessions.revoke(user)
            revoking = time.perf_counter() - started
            revoke_peak = tracemalloc.get_traced_memory()[1] - held
            tracemalloc.stop()
            left = len(sessions.for_user(user))
            rows.append((
                name, f"{count:,}", f"{count_listed:,}", f"{listing * 1e3:.1f}",
                f"{listing_peak / 1024:.0f}", f"{ended:,}", f"{revoking * 1e3:.1f}",
                f"{revoke_peak / 1024:.0f}", str(left),
            ))  # fmt: skip
    fill.remove_filled()
    print_rows(
        "A user's sessions: for_user and revoke (ms, peak Python memory KiB):",
        (
            "engine",
            "sessions",
            "listed",
            "for_user ms",
            "KiB",
            "revoked",
            "revoke ms",
            "KiB",
            "left",
        ),  # fmt: skip
        rows,
    )


def part_cleanup(args: argparse.Namespace) -> None:
    from scs_django.cleanup import delete_expired

    keys = fill.readable_sessions(engine("scs db"), 200)
    seconds = fill.expired_rows(args.expired_rows)
    quiet = fill.load_while(keys, lambda: time.sleep(args.quiet_seconds), args.readers)
    outcome: dict[str, Any] = {}

    def clean() -> None:
        started = time.perf_counter()
        outcome["result"] = delete_expired()
        outcome["seconds"] = time.perf_counter() - started

    busy = fill.load_while(keys, clean, args.readers)
    result = outcome["result"]
    vendor = fill.vendor()
    fill.remove_filled()
    print_rows(
        f"scs_cleanup on {args.expired_rows:,} expired rows ({vendor}, filled in "
        f"{seconds:.1f} s), {args.readers} threads reading sessions meanwhile:",
        (
            "load",
            "reads",
            "p50 ms",
            "p99 ms",
            "deleted",
            "batches",
            "cleanup s",
            "longest batch s",
        ),  # fmt: skip
        [
            ("no cleanup", f"{len(quiet):,}", *fill.percentiles(quiet), "", "", "", ""),
            (
                "during cleanup",
                f"{len(busy):,}",
                *fill.percentiles(busy),
                f"{result.deleted:,}",
                f"{result.batches:,}",
                f"{outcome['seconds']:.1f}",
                f"{result.longest_batch_seconds:.3f}",
            ),
        ],  # fmt: skip
    )


PARTS = {
    "payload": part_payload,
    "live": part_live,
    "user": part_user,
    "cleanup": part_cleanup,
}


def run_part(args: argparse.Namespace) -> None:
    from tests.servers import PostgresServer, RedisServer

    with RedisServer() as redis_server:
        if args.database == "mariadb":
            with fill.mariadb() as database:
                configure(database, redis_server.url)
                PARTS[args.part](args)
        else:
            with PostgresServer() as postgres:
                configure(fill.postgresql(postgres.port), redis_server.url)
                PARTS[args.part](args)
        from django.db import connections

        connections.close_all()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=list(PARTS), action="append")
    parser.add_argument("--database", choices=("postgresql", "mariadb"))
    parser.add_argument(
        "--quick", action="store_true", help="small sizes, to check it runs"
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--live-rows", default="10000,1000000")
    parser.add_argument("--user-sessions", default="1,100,10000")
    parser.add_argument("--expired-rows", type=int, default=1_000_000)
    parser.add_argument(
        "--readers", type=int, default=4, help="threads of the cleanup load"
    )
    parser.add_argument("--quiet-seconds", type=float, default=5.0)
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.samples, args.quiet_seconds = 1, 20, 1.0
        args.live_rows, args.user_sessions = "1000,5000", "1,100,1000"
        args.expired_rows = 20_000
    args.live_rows = [int(n) for n in args.live_rows.split(",")]
    args.user_sessions = [int(n) for n in args.user_sessions.split(",")]
    if (
        args.part
        and len(args.part) == 1
        and (args.database or args.part != ["cleanup"])
    ):
        args.part = args.part[0]
        run_part(args)
        return 0
    # Each part in a process of its own: Django is configured once per process.
    status = 0
    for part in args.part or list(PARTS):
        for database in (
            ("postgresql", "mariadb") if part == "cleanup" else ("postgresql",)
        ):
            argv = [sys.executable, __file__, "--part", part, "--database", database]
            argv += [a for a in sys.argv[1:] if a not in ("--part", *PARTS)]
            status |= subprocess.call(argv, env=os.environ)  # noqa: S603
    return status


if __name__ == "__main__":
    sys.exit(main())
