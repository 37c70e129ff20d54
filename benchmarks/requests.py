"""Per-request cost of scs_django's engines next to django.contrib.sessions.

Starts a throwaway PostgreSQL and Redis (tests/servers.py), runs the same
requests through Django's WSGI handler for each engine, and prints, per
request type: microseconds per request (median of all requests), SQL
statements and Redis commands (round trips in brackets).

    python benchmarks/requests.py [--iterations 200] [--rounds 6]
    python benchmarks/requests.py --engine 'scs db' --request 'read existing'
    python benchmarks/requests.py --database sqlite --engine 'contrib db' --engine 'scs db'

With ``--database sqlite`` the database engines run on a SQLite file in a
temporary folder instead (Redis is still started for the cache engines).
``--sealing`` adds each scs engine with ``SCS["ENCRYPTION"] = None`` (the
"unsealed" rows), and ``--payload 1000`` makes every session hold 1,000
bytes of filler, to show what sealing costs by the size of a session:

    python benchmarks/requests.py --sealing --payload 10000

After the requests it times the physical floor through the same connections:
the bare ``SELECT`` of a session row by its key hash, an ``UPDATE`` and an
``INSERT`` of one, and a Redis ``GET`` and ``SET`` of a value of a session's
size, and prints each engine's read and write as a multiple of it, both for
the whole request and for the session's share of it (the request less the
same engine's "no session touched"). ``--no-floor`` leaves it out.

Everything runs on one CPU, the servers too (the first this process may
use; ``--cpu`` picks another, ``--cpu -1`` none): on a virtual machine a
round trip between CPUs waits for a wake-up that costs more, and varies
more, than the work being compared.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from io import BytesIO
from pathlib import Path
from typing import Any
from unittest import mock

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ENGINES = {
    "contrib db": ("django.contrib.sessions.backends.db", "django"),
    "scs db": ("scs_django.backends.db", "scs"),
    "scs db unsealed": ("scs_django.backends.db", "scs unsealed"),
    "contrib cache (redis)": ("django.contrib.sessions.backends.cache", "django"),
    "scs cache (redis)": ("scs_django.backends.cache", "scs"),
    "scs cache (redis) unsealed": ("scs_django.backends.cache", "scs unsealed"),
    "contrib cached_db": ("django.contrib.sessions.backends.cached_db", "django"),
    "scs cached_db": ("scs_django.backends.cached_db", "scs"),
    "scs cached_db unsealed": ("scs_django.backends.cached_db", "scs unsealed"),
}
# By default the "unsealed" variants (SCS["ENCRYPTION"] = None) are left out;
# --sealing compares them with the sealed default.
UNSEALED = [name for name in ENGINES if name.endswith("unsealed")]
MIDDLEWARE = {
    "django": "django.contrib.sessions.middleware.SessionMiddleware",
    "scs": "scs_django.middleware.SessionMiddleware",
    "scs unsealed": "scs_django.middleware.SessionMiddleware",
}
# Bytes of filler the session holds besides its counter (--payload).
PAYLOAD = {"bytes": 0}
REQUESTS = [
    "no session touched",
    "read existing",
    "read, signed in",
    "write existing",
    "write, signed in",
    "create",
    "login (renew)",
    "read, idle timeout on",
]


def databases(pg_port: int | None, sqlite_path: str | None) -> dict[str, Any]:
    if sqlite_path is not None:
        return {
            "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": sqlite_path}
        }
    return {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "HOST": "127.0.0.1",
            "PORT": pg_port,
            "NAME": "postgres",
            "USER": "postgres",
            "CONN_MAX_AGE": None,
        }
    }


def configure(databases: dict[str, Any], redis_url: str) -> None:
    import django
    from django.conf import settings

    settings.configure(
        DEBUG=False,
        SECRET_KEY="benchmark-not-secret",  # noqa: S106
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF=__name__,
        USE_TZ=True,
        INSTALLED_APPS=[
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.sessions",
            "scs_django",
        ],
        MIDDLEWARE=[],
        DATABASES=databases,
        CACHES={
            "default": {
                "BACKEND": "django_redis.cache.RedisCache",
                "LOCATION": redis_url,
            }
        },
        PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
        SILENCED_SYSTEM_CHECKS=["scs_django.W001", "scs_django.W002"],
    )
    django.setup()


# -- the views -------------------------------------------------------------------


def _views() -> list[Any]:
    from django.contrib.auth import get_user_model, login
    from django.http import HttpResponse
    from django.urls import path

    def untouched(request: Any) -> Any:
        return HttpResponse("-")

    def read(request: Any) -> Any:
        return HttpResponse(str(request.session.get("cart")))

    def read_user(request: Any) -> Any:
        # What most pages of a site do: the user, then the session.
        return HttpResponse(f"{request.user.pk} {request.session.get('cart')}")

    def write(request: Any) -> Any:
        if PAYLOAD["bytes"] and "filler" not in request.session:
            request.session["filler"] = "x" * PAYLOAD["bytes"]
        request.session["cart"] = request.session.get("cart", 0) + 1
        return HttpResponse("ok")

    def do_login(request: Any) -> Any:
        request.session.get("cart")
        login(request, get_user_model().objects.get(username="bench"))
        return HttpResponse("in")

    return [
        path("untouched", untouched),
        path("read", read),
        path("read-user", read_user),
        path("write", write),
        path("login", do_login),
    ]


urlpatterns: list[Any] = []


# -- driving requests ---------------------------------------------------------------


class Driver:
    def __init__(self) -> None:
        from django.core.handlers.wsgi import WSGIHandler

        self.handler = WSGIHandler()

    def __call__(self, path: str, cookie: str | None = None) -> tuple[Any, float]:
        from django.conf import settings

        environ = {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": "/" + path,
            "QUERY_STRING": "",
            "SERVER_NAME": "bench",
            "SERVER_PORT": "80",
            "HTTP_HOST": "bench",
            "wsgi.input": BytesIO(),
            "wsgi.url_scheme": "http",
        }
        if cookie:
            environ["HTTP_COOKIE"] = f"{settings.SESSION_COOKIE_NAME}={cookie}"
        started = time.perf_counter()
        response = self.handler(environ, lambda status, headers: None)
        elapsed = time.perf_counter() - started
        response.close()
        return response, elapsed

    def cookie(self, response: Any) -> str:
        from django.conf import settings

        return response.cookies[settings.SESSION_COOKIE_NAME].value

    def new_session(self) -> str:
        return self.cookie(self("write")[0])


def scenario(
    request: str, driver: Driver
) -> tuple[Callable[[], Any], Callable[[], float]]:
    """(prepare, run): prepare is not timed; run returns seconds."""
    state: dict[str, Any] = {}

    def prepare() -> None:
        if request in ("no session touched", "read existing", "write existing"):
            if "cookie" not in state:
                state["cookie"] = driver.new_session()
        elif request in ("write, signed in", "read, signed in"):
            if "cookie" not in state:
                state["cookie"] = driver.cookie(
                    driver("login", driver.new_session())[0]
                )
        elif request == "read, idle timeout on":
            state["cookie"] = driver.new_session()
        elif request == "login (renew)":
            state["cookie"] = driver.new_session()

    paths = {
        "no session touched": "untouched",
        "read existing": "read",
        "read, signed in": "read-user",
        "write existing": "write",
        "write, signed in": "write",
        "create": "write",
        "login (renew)": "login",
        "read, idle timeout on": "read",
    }

    def run() -> float:
        return driver(paths[request], state.get("cookie"))[1]

    return prepare, run


class Counter:
    """Counts SQL statements and Redis commands / round trips of one request."""

    def __enter__(self) -> Counter:
        import redis.client
        from django.db import connection

        self.sql = 0
        self.redis_commands = 0
        self.redis_trips = 0
        counter = self
        real_execute = redis.client.Redis.execute_command
        real_pipeline = redis.client.Pipeline.execute

        def execute_command(client: Any, *args: Any, **kwargs: Any) -> Any:
            if not isinstance(client, redis.client.Pipeline):
                counter.redis_commands += 1
                counter.redis_trips += 1
            return real_execute(client, *args, **kwargs)

        def pipeline_execute(pipe: Any, *args: Any, **kwargs: Any) -> Any:
            counter.redis_commands += len(pipe.command_stack)
            counter.redis_trips += 1
            return real_pipeline(pipe, *args, **kwargs)

        from scs_django.backends import redis as scs_redis

        real_direct = scs_redis.direct

        def direct(pool: Any, *command: Any) -> Any:
            # scs_django sends a read's GET and a lone script's EVALSHA on a
            # pooled connection itself.
            counter.redis_commands += 1
            counter.redis_trips += 1
            return real_direct(pool, *command)

        self._patches = [
            mock.patch.object(redis.client.Redis, "execute_command", execute_command),
            mock.patch.object(redis.client.Pipeline, "execute", pipeline_execute),
            mock.patch.object(scs_redis, "direct", direct),
        ]
        for patch in self._patches:
            patch.start()
        self._connection = connection
        connection.force_debug_cursor = True
        connection.queries_log.clear()
        return self

    def __exit__(self, *exc: Any) -> None:
        for patch in self._patches:
            patch.stop()
        self.sql = len(
            [q for q in self._connection.queries if "auth_user" not in q["sql"]]
        )
        self._connection.force_debug_cursor = False


def overrides_for(engine: str, request: str) -> dict[str, Any]:
    module, middleware = ENGINES[engine]
    overrides: dict[str, Any] = {
        "SESSION_ENGINE": module,
        "MIDDLEWARE": [
            MIDDLEWARE[middleware],
            "django.contrib.auth.middleware.AuthenticationMiddleware",
        ],
        "SCS": {},
        "SESSION_SAVE_EVERY_REQUEST": False,
    }
    if middleware == "scs unsealed":
        overrides["SCS"] = {"ENCRYPTION": None}
    if request == "read, idle timeout on":
        if middleware.startswith("scs"):
            overrides["SCS"] = {
                **overrides["SCS"],
                "IDLE_TIMEOUT": 1800,
                "TOUCH_INTERVAL": 60,
            }
        else:
            overrides["SESSION_SAVE_EVERY_REQUEST"] = True  # Django's way to slide
    return overrides


def measure(
    engines: list[str], request: str, iterations: int, rounds: int
) -> dict[str, tuple[float, str, str]]:
    """Time ``request`` on every engine, taking turns: each round runs
    ``iterations`` requests per engine, in a rotating order, so that a slow
    spell of the machine falls on all engines alike."""
    from django.core.cache import cache
    from django.test.utils import override_settings

    samples: dict[str, list[float]] = {engine: [] for engine in engines}
    states: dict[str, tuple[Any, Any]] = {}
    cache.clear()
    for turn in range(rounds):
        order = engines[turn % len(engines) :] + engines[: turn % len(engines)]
        for engine in order:
            with override_settings(**overrides_for(engine, request)):
                if engine not in states:
                    driver = Driver()
                    states[engine] = scenario(request, driver)
                prepare, run = states[engine]
                for _ in range(20):  # warm connections, scripts, caches
                    prepare()
                    run()
                for _ in range(iterations):
                    prepare()
                    samples[engine].append(run())
    results = {}
    for engine in engines:
        with override_settings(**overrides_for(engine, request)):
            prepare, run = states[engine]
            prepare()
            with Counter() as counted:
                run()
        redis_cell = (
            f"{counted.redis_commands} ({counted.redis_trips})"
            if counted.redis_trips
            else "0"
        )
        # The median: a VM's scheduling hiccups and GC pauses land in the
        # tail, not in the middle.
        results[engine] = (
            statistics.median(samples[engine]) * 1e6,
            str(counted.sql),
            redis_cell,
        )
    return results


def pin(cpu: int | None) -> None:
    """Run this process, and the servers it starts after, on ``cpu`` alone
    (None: the first CPU it may run on; negative: leave it to the scheduler).

    On a virtual machine a round trip between two CPUs waits for the
    hypervisor to wake the other one: 100 to 160 µs for a Redis GET on the
    machine of docs/performance.rst, moving by tens of µs from one minute to
    the next. On one CPU the same GET is a context switch, 43 µs, steady to
    a µs, so the medians compare the work each engine does, client and
    server side, rather than the wake-ups. Both engines run the same way.
    """
    if cpu is not None and cpu < 0:
        return
    if not hasattr(os, "sched_setaffinity"):
        if cpu is None:
            return  # not Linux: nothing to pin with
        sys.exit("--cpu needs os.sched_setaffinity (Linux); pass --cpu -1")
    if cpu is None:
        cpu = min(os.sched_getaffinity(0))
    try:
        os.sched_setaffinity(0, {cpu})
    except OSError as exc:
        sys.exit(f"cannot run on CPU {cpu}: {exc}; pass another --cpu, or -1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument(
        "--engine",
        dest="engines",
        action="append",
        choices=list(ENGINES),
        help="only this engine (repeat for more)",
    )
    parser.add_argument(
        "--request",
        dest="requests",
        action="append",
        choices=REQUESTS,
        help="only this request (repeat for more)",
    )
    parser.add_argument(
        "--payload",
        type=int,
        default=0,
        help="bytes of filler each session holds besides its counter",
    )
    parser.add_argument(
        "--sealing",
        action="store_true",
        help="also run the scs engines unsealed (SCS['ENCRYPTION'] = None)",
    )
    parser.add_argument(
        "--database",
        choices=("postgresql", "sqlite"),
        default="postgresql",
        help="the database of the database engines (default: postgresql)",
    )
    parser.add_argument(
        "--json",
        metavar="PATH",
        help="also write the table to PATH as JSON (benchmarks/chart.py draws it)",
    )
    parser.add_argument(
        "--no-floor",
        dest="floor",
        action="store_false",
        help="leave out the bare SELECT/UPDATE/INSERT and Redis GET/SET",
    )
    parser.add_argument(
        "--cpu",
        type=int,
        help="run on this CPU only, with the servers this script starts "
        "(default: the first this process may use; -1 to let the scheduler "
        "spread them)",
    )
    args = parser.parse_args()
    pin(args.cpu)

    from django.test.utils import override_settings

    from tests.servers import PostgresServer, RedisServer

    with contextlib.ExitStack() as stack:
        redis_server = stack.enter_context(RedisServer().start())
        if args.database == "sqlite":
            folder = stack.enter_context(tempfile.TemporaryDirectory())
            dbs = databases(None, str(Path(folder) / "bench.sqlite3"))
        else:
            dbs = databases(stack.enter_context(PostgresServer().start()).port, None)
        configure(dbs, redis_server.url)
        global urlpatterns
        urlpatterns = _views()
        from django.contrib.auth import get_user_model
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        get_user_model().objects.create_user("bench", password="bench")  # noqa: S106

        PAYLOAD["bytes"] = args.payload
        engines = [
            e
            for e in ENGINES
            if (
                e in args.engines if args.engines else args.sealing or e not in UNSEALED
            )
        ]
        requests = [r for r in REQUESTS if not args.requests or r in args.requests]
        rows = []
        by_request: dict[tuple[str, str], float] = {}
        for request in requests:
            results = measure(engines, request, args.iterations, args.rounds)
            for engine in engines:
                micros, sql, redis_cell = results[engine]
                by_request[request, engine] = micros
                rows.append((request, engine, f"{micros:.0f}", sql, redis_cell))
                print(
                    f"{request:24} {engine:22} {micros:8.0f} µs  sql={sql} redis={redis_cell}",
                    file=sys.stderr,
                )
        print_table(rows)
        if args.json:
            Path(args.json).write_text(
                json.dumps(
                    {
                        "database": args.database,
                        "payload": args.payload,
                        "rows": [dict(zip(COLUMNS, r, strict=True)) for r in rows],
                    },
                    indent=1,
                )
            )
        if args.floor:
            from floor import measure_floor, print_floor

            with override_settings(**overrides_for("scs db", "read existing")):
                floor = measure_floor(args.iterations, args.rounds, PAYLOAD["bytes"])
            kinds = {
                name: module.rsplit(".", 1)[1] for name, (module, _m) in ENGINES.items()
            }
            print_floor(floor, by_request, kinds)


# The columns of a row, as --json writes them.
COLUMNS = ("request", "engine", "us", "sql", "redis")


def same_kind(engine: str) -> str:
    """Django's engine of the same kind as ``engine`` (itself for Django's)."""
    kind = engine.removeprefix("scs ").removeprefix("contrib ")
    return "contrib " + kind.removesuffix(" unsealed")


def print_table(rows: list[tuple[str, ...]]) -> None:
    from floor import print_rows

    micros = {(r[0], r[1]): float(r[2]) for r in rows}
    with_ratio = [
        (
            *row,
            f"{micros[row[0], row[1]] / base:.2f}"
            if (base := micros.get((row[0], same_kind(row[1]))))
            and not row[1].startswith("contrib")
            else "",
        )
        for row in rows
    ]
    headers = (
        "request",
        "engine",
        "µs/request",
        "SQL",
        "Redis cmds (trips)",
        "× Django",
    )
    print_rows(headers, with_ratio)
    print(
        f"median of the µs column: {statistics.median(float(r[2]) for r in rows):.0f}"
    )


if __name__ == "__main__":
    main()
