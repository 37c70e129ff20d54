"""Benchmark: batched cleanup of expired sessions against Django's clearsessions.

Run by hand from the repository root (not part of the test suite)::

    python benchmarks/cleanup.py [--rows 1000000] [--batch-sizes 1000,10000]

It starts a throwaway PostgreSQL (tests.servers.PostgresServer), fills
scs_django's session table with ``--rows`` sessions, every other one expired,
runs ``scs_django.cleanup.delete_expired`` once per batch size, and checks that
exactly the expired rows went and every live one is intact. Then it fills
Django's ``django_session`` table the same way and times what Django's
``clearsessions`` runs: one ``DELETE ... WHERE expire_date < now``. The table
it prints is the one in docs/performance.rst.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import django  # noqa: E402
from django.conf import settings  # noqa: E402

from scs_django.cleanup import DEFAULT_BATCH_SIZE  # noqa: E402
from tests.servers import PostgresServer  # noqa: E402

DATABASE = "scs_bench"


def configure(port: int) -> None:
    settings.configure(
        SECRET_KEY="benchmark-not-secret",  # noqa: S106
        USE_TZ=True,
        INSTALLED_APPS=[
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.sessions",
            "scs_django",
        ],
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.postgresql",
                "HOST": "127.0.0.1",
                "PORT": str(port),
                "NAME": DATABASE,
                "USER": "postgres",
            }
        },
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        SESSION_ENGINE="scs_django.backends.db",
    )
    django.setup()


def create_database(port: int) -> None:
    import psycopg

    with psycopg.connect(
        host="127.0.0.1", port=port, user="postgres", dbname="postgres", autocommit=True
    ) as conn:
        conn.execute(f"CREATE DATABASE {DATABASE}")


def execute(sql: str, params: list | None = None) -> list[tuple]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


# Every other row is expired, so deleted rows are spread over the whole heap as
# they are in a real table. Expiries span two weeks either side of the cutoff.
SCS_VALUES = {
    "key_hash": "encode(sha256(convert_to(i::text, 'UTF8')), 'hex')",
    "data": "'\\x01'::bytea || convert_to(repeat(md5(i::text), 4), 'UTF8')",
    "created_at": "e - interval '14 days'",
    "absolute_expiry": "e",
    "expiry": "e",
    "last_seen": "e - interval '1 hour'",
}
EXPIRIES = """
    SELECT i, %s::timestamptz
              + CASE WHEN i %% 2 = 0 THEN -1 ELSE 1 END
              * ((i::bigint * 7919) %% 1209600 + 1) * interval '1 second' AS e
    FROM generate_series(1, %s) AS i
"""


def fill_scs_sql() -> tuple[str, list]:
    """INSERT ... SELECT for the session table, and the parameters ahead of the
    cutoff and row count: columns not in SCS_VALUES get their model default."""
    from django.db import connection

    from scs_django.models import Session

    columns, values, params = [], [], []
    for field in Session._meta.concrete_fields:
        if field.primary_key:
            continue
        columns.append(connection.ops.quote_name(field.column))
        if field.column in SCS_VALUES:
            values.append(SCS_VALUES[field.column])
        else:
            values.append("%s")
            params.append(field.get_db_prep_save(field.get_default(), connection))
    sql = (
        f"INSERT INTO scs_django_session ({', '.join(columns)}) "  # noqa: S608
        f"SELECT {', '.join(values)} FROM ({EXPIRIES}) AS rows"
    )
    return sql, params


FILL_DJANGO = """
INSERT INTO django_session (session_key, session_data, expire_date)
SELECT md5(i::text), repeat(md5(i::text), 4),
       %s::timestamptz
       + CASE WHEN i %% 2 = 0 THEN -1 ELSE 1 END
       * ((i::bigint * 7919) %% 1209600 + 1) * interval '1 second'
FROM generate_series(1, %s) AS i
"""


def fingerprint(table: str, column: str, where: str, params: list) -> tuple:
    """Count and checksum of the ids of matching rows."""
    return execute(
        f"SELECT count(*), md5(string_agg({column}::text, ',' ORDER BY {column})) "  # noqa: S608
        f"FROM {table} WHERE {where}",
        params,
    )[0]


def fill(sql: str, table: str, cutoff, rows: int, params: tuple | list = ()) -> float:
    started = time.monotonic()
    execute(f"TRUNCATE {table}")
    execute(sql, [*params, cutoff, rows])
    execute(f"VACUUM ANALYZE {table}")
    return time.monotonic() - started


def bench_scs(cutoff, rows: int, batch_size: int) -> dict:
    from scs_django.cleanup import delete_expired

    sql, params = fill_scs_sql()
    fill_seconds = fill(sql, "scs_django_session", cutoff, rows, params)
    live_before = fingerprint("scs_django_session", "id", "expiry > %s", [cutoff])
    expired = execute(
        "SELECT count(*) FROM scs_django_session WHERE expiry <= %s", [cutoff]
    )[0][0]
    result = delete_expired(batch_size=batch_size, now=cutoff)
    after = fingerprint("scs_django_session", "id", "true", [])
    return {
        "run": f"scs_cleanup --batch-size {batch_size}",
        "fill": fill_seconds,
        "expired": expired,
        "deleted": result.deleted,
        "batches": result.batches,
        "total": result.seconds,
        "longest": result.longest_batch_seconds,
        "exact": result.deleted == expired and after == live_before,
    }


def bench_django(cutoff, rows: int) -> dict:
    from unittest import mock

    from django.contrib.sessions.backends.db import SessionStore

    fill_seconds = fill(FILL_DJANGO, "django_session", cutoff, rows)
    live_before = fingerprint(
        "django_session", "session_key", "expire_date >= %s", [cutoff]
    )
    expired = execute(
        "SELECT count(*) FROM django_session WHERE expire_date < %s", [cutoff]
    )[0][0]
    started = time.monotonic()
    # What `manage.py clearsessions` does on Django's database engine.
    with mock.patch("django.utils.timezone.now", return_value=cutoff):
        SessionStore.clear_expired()
    seconds = time.monotonic() - started
    after = fingerprint("django_session", "session_key", "true", [])
    return {
        "run": "Django clearsessions",
        "fill": fill_seconds,
        "expired": expired,
        "deleted": rows - after[0],
        "batches": 1,
        "total": seconds,
        "longest": seconds,
        "exact": rows - after[0] == expired and after == live_before,
    }


def print_table(results: list[dict], rows: int, version: str, load: str) -> None:
    print()
    print(
        f"{rows:,} sessions, {rows // 2:,} expired; PostgreSQL {version}; "
        f"{os.cpu_count()} CPUs; Python {platform.python_version()}; "
        f"Django {django.get_version()}; load average {load}"
    )
    print()
    header = (
        "run",
        "batches",
        "deleted",
        "total (s)",
        "longest batch (s)",
        "exact",
    )
    lines = [header]
    for r in results:
        lines.append(
            (
                r["run"],
                f"{r['batches']:,}",
                f"{r['deleted']:,}",
                f"{r['total']:.2f}",
                f"{r['longest']:.3f}",
                "yes" if r["exact"] else "NO",
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    rule = "  ".join("=" * w for w in widths)
    print(rule)
    for n, line in enumerate(lines):
        print(
            "  ".join(
                cell.ljust(w) for cell, w in zip(line, widths, strict=True)
            ).rstrip()
        )
        if n == 0:
            print(rule)
    print(rule)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch-sizes", default=f"{DEFAULT_BATCH_SIZE},10000")
    args = parser.parse_args()
    batch_sizes = [int(size) for size in args.batch_sizes.split(",")]

    load_before = os.getloadavg()[0]
    with PostgresServer() as server:
        create_database(server.port)
        configure(server.port)
        from django.core.management import call_command
        from django.utils import timezone

        call_command("migrate", verbosity=0)
        version = execute("SHOW server_version")[0][0]
        cutoff = timezone.now()
        results = []
        for batch_size in batch_sizes:
            print(f"scs_cleanup, batch size {batch_size} ...", flush=True)
            results.append(bench_scs(cutoff, args.rows, batch_size))
        print("Django clearsessions ...", flush=True)
        results.append(bench_django(cutoff, args.rows))
        from django.db import connections

        connections.close_all()
    load = f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after"
    print_table(results, args.rows, version, load)
    # The target: no transaction of a default run holds on for 0.5 s or more.
    default = [r for r in results if r["run"].endswith(f" {DEFAULT_BATCH_SIZE}")]
    ok = all(r["exact"] for r in results) and all(r["longest"] < 0.5 for r in default)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
