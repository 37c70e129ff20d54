"""scs_django next to django.contrib.sessions under a real server, loaded by wrk.

Starts a throwaway PostgreSQL and Redis on loopback (tests/servers.py), then,
for each server kind, one bench project server per session engine
(benchmarks/benchsite: gunicorn with sync workers; uvicorn with httptools,
uvloop, async views and a PostgreSQL connection pool), and loads them from a
second process with ``wrk --latency`` (Debian's ``wrk``), for three pages:
a signed-in page that reads the session (and ``request.user``), one that
writes it, and a login. Engines take turns within each round so that a slow
spell of the machine falls on all of them alike. Everything it starts is
stopped at the end.

Printed per server, page and engine: requests per second (all rounds), the
median over rounds of wrk's p50 and p99 latency, the CPU time of the web
server processes and of the stores (PostgreSQL and Redis) per request, and
non-2xx answers or socket errors, which should be 0.

    python benchmarks/server.py                      # about 15 minutes
    python benchmarks/server.py --quick              # a 1-minute check
    python benchmarks/server.py --server gunicorn --page read --kind db \\
        --duration 10 --rounds 5 --connections 16

Each wrk thread holds one connection and its own signed-in session; a run
stops after ``--duration`` seconds or ``--max-requests`` per connection,
whichever comes first.
"""

from __future__ import annotations

import argparse
import contextlib
import http.cookies
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from load import WRK_SCRIPT, run_wrk, tree_cpu  # noqa: E402

from tests.servers import HOST, PostgresServer, RedisServer, free_port  # noqa: E402

DJANGO_MIDDLEWARE = "django.contrib.sessions.middleware.SessionMiddleware"
SCS_MIDDLEWARE = "scs_django.middleware.SessionMiddleware"
# name: (kind, SESSION_ENGINE, session middleware); pairs of the same kind.
ENGINES = {
    "contrib db": ("db", "django.contrib.sessions.backends.db", DJANGO_MIDDLEWARE),
    "scs db": ("db", "scs_django.backends.db", SCS_MIDDLEWARE),
    "contrib cache": (
        "cache",
        "django.contrib.sessions.backends.cache",
        DJANGO_MIDDLEWARE,
    ),
    "scs cache": ("cache", "scs_django.backends.cache", SCS_MIDDLEWARE),
    "contrib cached_db": (
        "cached_db",
        "django.contrib.sessions.backends.cached_db",
        DJANGO_MIDDLEWARE,
    ),
    "scs cached_db": ("cached_db", "scs_django.backends.cached_db", SCS_MIDDLEWARE),
}
PAGES = ("read", "write", "login")
SERVERS = ("gunicorn", "uvicorn")
COOKIE = "sessionid"  # SESSION_COOKIE_NAME of both

# -- the web servers ---------------------------------------------------------------------


@dataclass
class WebServer:
    """One bench project server for one engine."""

    kind: str  # gunicorn or uvicorn
    engine: str
    env: dict[str, str]
    workers: int
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    log: Any = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def argv(self) -> list[str]:
        bind = [HOST, str(self.port)]
        if self.kind == "gunicorn":
            return [
                "-m", "gunicorn", "benchsite.wsgi:application",
                "--bind", ":".join(bind),
                "--workers", str(self.workers),
                "--worker-class", "sync",
                "--log-level", "warning",
            ]  # fmt: skip
        return [
            "-m", "uvicorn", "benchsite.asgi:application",
            "--host", bind[0], "--port", bind[1],
            "--workers", str(self.workers),
            "--loop", "uvloop", "--http", "httptools",
            "--lifespan", "off", "--no-access-log", "--log-level", "warning",
        ]  # fmt: skip

    def start(self) -> None:
        self.port = free_port()
        self.log = tempfile.TemporaryFile()
        self.process = subprocess.Popen(  # noqa: S603
            [sys.executable, *self.argv()],
            cwd=ROOT,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its workers are stopped with it
        )

    def wait_ready(self, timeout: float = 60) -> None:
        if self.process is None:
            raise RuntimeError("start() the server first")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(f"{self.url}/read/", timeout=2) as reply:  # noqa: S310
                    if reply.status == 200:
                        return
            time.sleep(0.2)
        raise RuntimeError(
            f"{self.kind} for {self.engine} did not start:\n{self.output()}"
        )

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None

    def signed_in(self, count: int) -> list[str]:
        """``count`` new signed-in sessions, as ``Cookie`` header values."""
        cookies = []
        for _ in range(count):
            with urllib.request.urlopen(f"{self.url}/login/", timeout=10) as reply:  # noqa: S310
                jar = http.cookies.SimpleCookie(reply.headers["Set-Cookie"])
            cookies.append(f"{COOKIE}={jar[COOKIE].value}")
        return cookies


# -- the benchmark ----------------------------------------------------------------------------


@dataclass
class Totals:
    requests: int = 0
    seconds: float = 0.0
    cpu: float = 0.0
    store_cpu: float = 0.0
    errors: int = 0
    p50: list[float] = field(default_factory=list)
    p99: list[float] = field(default_factory=list)


def server_env(
    engine: str, kind: str, pg_port: int, redis_url: str, pool: int
) -> dict[str, str]:
    _kind, module, middleware = ENGINES[engine]
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "benchmarks"), str(ROOT)]),
        "DJANGO_SETTINGS_MODULE": "benchsite.settings",
        "BENCH_ENGINE": module,
        "BENCH_MIDDLEWARE": middleware,
        "BENCH_PG_PORT": str(pg_port),
        "BENCH_REDIS_URL": redis_url,
        "BENCH_ASGI": "1" if kind == "uvicorn" else "0",
        "BENCH_POOL": str(pool),
    }


@contextlib.contextmanager
def web_servers(
    kind: str, engines: list[str], env_of: Any, workers: int
) -> Iterator[dict[str, WebServer]]:
    servers = {e: WebServer(kind, e, env_of(e, kind), workers) for e in engines}
    try:
        for server in servers.values():
            server.start()
        for server in servers.values():
            server.wait_ready()
        yield servers
    finally:
        for server in servers.values():
            server.stop()


def store_pids(postgres: PostgresServer, redis_url: str) -> list[int]:
    import redis

    pid_file = Path(str(postgres.tmpdir), "data", "postmaster.pid")
    with redis.Redis.from_url(redis_url) as client:
        redis_pid = int(client.info("server")["process_id"])
    return [int(pid_file.read_text().split()[0]), redis_pid]


def measure(
    args: argparse.Namespace, engines: list[str], script: Path
) -> dict[tuple[str, str, str], Totals]:
    totals: dict[tuple[str, str, str], Totals] = defaultdict(Totals)
    with PostgresServer() as postgres, RedisServer() as redis_server:
        pg_port = int(str(postgres.port))
        env_of = lambda engine, kind: server_env(  # noqa: E731
            engine, kind, pg_port, redis_server.url, args.pool
        )
        subprocess.run(  # noqa: S603
            [sys.executable, "-m", "benchsite.prepare"],
            cwd=ROOT, env=env_of(engines[0], "gunicorn"), check=True,
        )  # fmt: skip
        stores = store_pids(postgres, redis_server.url)
        for kind in args.servers:
            with web_servers(kind, engines, env_of, args.workers) as servers:
                for turn in range(-1 if args.warmup else 0, args.rounds):
                    for page_index, page in enumerate(args.pages):
                        shift = (max(turn, 0) + page_index) % len(engines)
                        for engine in engines[shift:] + engines[:shift]:
                            server = servers[engine]
                            cookies = (
                                []
                                if page == "login"
                                else server.signed_in(args.connections)
                            )
                            before = tree_cpu([server.process.pid]), tree_cpu(stores)  # type: ignore[union-attr]
                            run = run_wrk(
                                f"{server.url}/{page}/", cookies, args, script
                            )
                            after = tree_cpu([server.process.pid]), tree_cpu(stores)  # type: ignore[union-attr]
                            if turn < 0:
                                continue  # the warm-up round
                            t = totals[kind, page, engine]
                            t.requests += run.requests
                            t.seconds += run.seconds
                            t.cpu += after[0] - before[0]
                            t.store_cpu += after[1] - before[1]
                            t.errors += run.errors
                            t.p50.append(run.p50)
                            t.p99.append(run.p99)
                            print(
                                f"{kind:8} {page:6} {engine:18} round {turn + 1}: "
                                f"{run.requests / run.seconds:7.0f} req/s  p50 {run.p50:6.2f} ms  "
                                f"p99 {run.p99:6.2f} ms  errors {run.errors}",
                                file=sys.stderr,
                                flush=True,
                            )
    return totals


def print_table(
    totals: dict[tuple[str, str, str], Totals],
    args: argparse.Namespace,
    engines: list[str],
) -> None:
    headers = ("server", "page", "engine", "req/s", "vs contrib", "p50 ms", "p99 ms",
               "CPU µs/req", "store CPU µs/req", "errors")  # fmt: skip
    rows = []
    for kind in args.servers:
        for page in args.pages:
            rates = {}
            for engine in engines:
                t = totals[kind, page, engine]
                rates[engine] = t.requests / t.seconds if t.seconds else 0.0
            for engine in engines:
                t = totals[kind, page, engine]
                pair = engine.replace("scs ", "contrib ", 1)
                ratio = (
                    f"{rates[engine] / rates[pair]:.2f}x"
                    if engine.startswith("scs") and rates.get(pair)
                    else ""
                )
                requests = max(t.requests, 1)
                rows.append((
                    kind, page, engine, f"{rates[engine]:.0f}", ratio,
                    f"{statistics.median(t.p50):.2f}", f"{statistics.median(t.p99):.2f}",
                    f"{t.cpu / requests * 1e6:.0f}", f"{t.store_cpu / requests * 1e6:.0f}",
                    str(t.errors),
                ))  # fmt: skip
    from floor import print_rows

    print(
        f"{args.rounds} rounds of {args.duration} s per page and engine, "
        f"{args.connections} connections, {args.workers} workers; "
        f"{os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f}"
    )
    print_rows(headers, rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument(
        "--max-requests", type=int, default=20_000, help="per connection and run"
    )
    parser.add_argument("--workers", type=int, default=2, help="server processes")
    parser.add_argument(
        "--pool", type=int, default=4, help="PostgreSQL pool size per uvicorn worker"
    )
    parser.add_argument("--no-warmup", dest="warmup", action="store_false")
    parser.add_argument("--server", dest="servers", action="append", choices=SERVERS)
    parser.add_argument("--page", dest="pages", action="append", choices=PAGES)
    parser.add_argument(
        "--kind", dest="kinds", action="append", choices=("db", "cache", "cached_db")
    )
    parser.add_argument(
        "--quick", action="store_true", help="1 s runs, 1 round: checks the setup"
    )
    parser.add_argument("--wrk", default=shutil.which("wrk") or "wrk")
    args = parser.parse_args()
    if args.quick:
        args.duration, args.rounds, args.warmup = 1, 1, False
    args.servers = args.servers or list(SERVERS)
    args.pages = args.pages or list(PAGES)
    if not shutil.which(args.wrk):
        parser.error("wrk is not installed: apt-get install wrk")
    engines = [
        e
        for e, (kind, *_rest) in ENGINES.items()
        if not args.kinds or kind in args.kinds
    ]
    with tempfile.TemporaryDirectory() as folder:
        script = Path(folder) / "bench.lua"
        script.write_text(WRK_SCRIPT)
        totals = measure(args, engines, script)
    print_table(totals, args, engines)
    return 1 if any(t.errors for t in totals.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
