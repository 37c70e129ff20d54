"""Filling the stores fast for benchmarks/growth.py, and a load of readers.

Rows are made by the database itself (``INSERT ... SELECT`` over
``generate_series`` on PostgreSQL, over MariaDB's ``seq_1_to_<n>`` sequence
table), Redis keys by pipelines of 10,000 ``SET`` s; never one round trip per
session. A user's many sessions are copies of one real session made through
the store API, under new token hashes.
"""

from __future__ import annotations

import contextlib
import hashlib
import random
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

PIPELINE = 10_000
FILL_AGENT = "benchmark fill"  # user_agent of the rows made here


def postgresql(port: int | None) -> dict[str, Any]:
    return {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "NAME": "postgres",
        "USER": "postgres",
    }


@contextlib.contextmanager
def mariadb() -> Iterator[dict[str, Any]]:
    import MySQLdb

    from tests.servers import MariaDBServer

    with MariaDBServer().start() as server:
        connection = MySQLdb.connect(
            host=server.host,
            port=server.port,
            user=server.user,
            password=server.password,
        )
        connection.cursor().execute("CREATE DATABASE scs_bench CHARACTER SET utf8mb4")
        connection.close()
        yield {
            "ENGINE": "django.db.backends.mysql",
            "HOST": server.host,
            "PORT": str(server.port),
            "NAME": "scs_bench",
            "USER": server.user,
            "PASSWORD": server.password,
            "OPTIONS": {"charset": "utf8mb4"},
        }


def execute(
    sql: str, params: list[Any] | tuple[Any, ...] = ()
) -> list[tuple[Any, ...]]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return list(cursor.fetchall()) if cursor.description else []


def is_postgresql() -> bool:
    from django.db import connection

    return connection.vendor == "postgresql"


def vendor() -> str:
    if is_postgresql():
        return "PostgreSQL " + execute("SHOW server_version")[0][0]
    return "MariaDB " + execute("SELECT VERSION()")[0][0]


def _series(first: int, count: int) -> tuple[str, str]:
    """A FROM clause of ``count`` integers from ``first``, and its column."""
    if is_postgresql():
        return f"generate_series({first}, {first + count - 1}) AS s(i)", "i"
    return f"seq_{first}_to_{first + count - 1}", "seq"


def _fill(count: int, start: int, expiry: str, data: str) -> float:
    """``count`` rows of ``data``, expiring at ``expiry``: seconds it took."""
    if count <= 0:
        return 0.0
    source, i = _series(start + 1, count)
    if is_postgresql():
        key = f"encode(sha256(convert_to('fill' || {i}, 'UTF8')), 'hex')"
    else:
        key = f"SHA2(CONCAT('fill', {i}), 256)"
    started = time.perf_counter()
    execute(
        "INSERT INTO scs_django_session (key_hash, data, created_at, absolute_expiry, "  # noqa: S608
        f"expiry, last_seen, version, user_agent) SELECT {key}, {data}, %s, %s, "
        f"{expiry}, %s, 1, %s FROM {source}",
        [*_times(), FILL_AGENT],
    )
    execute(
        "ANALYZE scs_django_session"
        if is_postgresql()
        else "ANALYZE TABLE scs_django_session"
    )
    return time.perf_counter() - started


def _times() -> tuple[Any, Any, Any]:
    from datetime import timedelta

    from django.utils import timezone

    now = timezone.now()
    return now - timedelta(days=1), now + timedelta(days=30), now - timedelta(hours=1)


def live_rows(count: int, start: int = 0) -> float:
    """Add ``count`` live rows of about 1 KB (PostgreSQL); seconds it took."""
    data = "decode(repeat(md5(i::text), 32), 'hex')"  # 512 bytes that do not compress
    later = "now() + interval '30 days'"
    return _fill(count, start, later, data)


def expired_rows(count: int) -> float:
    """Add ``count`` expired rows (PostgreSQL or MariaDB); seconds it took."""
    if is_postgresql():
        data, expired = (
            "decode(repeat(md5(i::text), 8), 'hex')",
            "now() - interval '1 hour'",
        )
    else:
        data, expired = "UNHEX(REPEAT(MD5(seq), 8))", "NOW(6) - INTERVAL 1 HOUR"
    return _fill(count, 0, expired, data)


def redis_keys(count: int, start: int = 0) -> float:
    """Add ``count`` session-shaped keys of about 1 KB to Redis; seconds it took."""
    from scs_django.backends.cache import redis_sessions

    sessions = redis_sessions()
    value = b"s" + bytes(random.getrandbits(8) for _ in range(1_000))
    started = time.perf_counter()
    for first in range(start, start + count, PIPELINE):
        pipe = sessions.client.pipeline(transaction=False)
        for i in range(first, min(first + PIPELINE, start + count)):
            key_hash = hashlib.sha256(f"fill{i}".encode()).hexdigest()
            pipe.set(sessions.session_key(key_hash), value, ex=30 * 86400)
        pipe.execute()
    return time.perf_counter() - started


def user_sessions(store_class: Any, user: Any, count: int) -> None:
    """``count`` stored sessions of ``user``: one through the store API, the
    rest copies of it under new hashes (their data cannot be decrypted there,
    which neither listing nor revoking tries)."""
    from django.contrib.auth import BACKEND_SESSION_KEY, SESSION_KEY

    session = store_class()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session.save()
    if count <= 1:
        return
    if hasattr(store_class, "get_model_class"):  # db, cached_db: the table
        source, i = _series(1, count - 1)
        key = f"encode(sha256(convert_to(key_hash || {i}, 'UTF8')), 'hex')"
        columns = (
            "data, created_at, absolute_expiry, expiry, last_seen, version, user_id"
        )
        execute(
            f"INSERT INTO scs_django_session (key_hash, {columns}, user_agent) "  # noqa: S608
            f"SELECT {key}, {columns}, %s FROM scs_django_session, {source} "
            "WHERE key_hash = %s",
            [FILL_AGENT, session.stored_hash],
        )
        return
    from scs_django.backends.cache import redis_sessions

    sessions = redis_sessions()
    client, user_key = sessions.client, sessions.user_key(user.pk)
    value = client.get(sessions.session_key(session.stored_hash))
    score = client.zscore(user_key, session.stored_hash)
    for first in range(1, count, PIPELINE):
        pipe = client.pipeline(transaction=False)
        members = {}
        for n in range(first, min(first + PIPELINE, count)):
            key_hash = hashlib.sha256(f"{session.stored_hash}{n}".encode()).hexdigest()
            pipe.set(sessions.session_key(key_hash), value, ex=86400)
            members[key_hash] = score
        pipe.zadd(user_key, members)
        pipe.execute()


def readable_sessions(store_class: Any, count: int) -> list[str]:
    """Tokens of ``count`` sessions stored through the store API."""
    tokens = []
    for n in range(count):
        session = store_class()
        session["n"] = n
        session.save()
        tokens.append(session.session_key)
    return tokens


def load_while(
    store_class_tokens: list[str], action: Callable[[], Any], readers: int
) -> list[float]:
    """Seconds per session read of ``readers`` threads reading sessions for as
    long as ``action`` runs."""
    from django.conf import settings
    from django.db import connections
    from django.utils.module_loading import import_string

    store_class = import_string(settings.SESSION_ENGINE + ".SessionStore")
    stop = threading.Event()
    samples: list[list[float]] = [[] for _ in range(readers)]

    def read(mine: list[float]) -> None:
        try:
            while not stop.is_set():
                token = random.choice(store_class_tokens)  # noqa: S311
                started = time.perf_counter()
                store_class(token).load()
                mine.append(time.perf_counter() - started)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=read, args=(mine,)) for mine in samples]
    for thread in threads:
        thread.start()
    try:
        action()
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    return [s for mine in samples for s in mine]


def percentiles(samples: list[float]) -> tuple[str, str]:
    """p50 and p99 in ms, as text."""
    cuts = statistics.quantiles(samples, n=100)
    return f"{cuts[49] * 1e3:.2f}", f"{cuts[98] * 1e3:.2f}"


def remove_filled() -> None:
    """Empty the session table and Redis (both servers are throwaway too)."""
    from django.core.cache import cache

    execute(
        "TRUNCATE scs_django_session"
        if is_postgresql()
        else "TRUNCATE TABLE scs_django_session"
    )
    cache.clear()
