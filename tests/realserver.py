"""The test project under gunicorn, in its own process, on loopback.

The test client runs one request at a time in the test's thread; races that
only show between real requests (lost writes under contention, a revoke
racing renewals) need a real server: several worker processes, each with
several threads, each thread with its own database and Redis connections,
against the test run's own PostgreSQL, SQLite file and Redis. Tests using it
run with ``transaction=True`` so that what they write is committed and the
server sees it.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connections

from tests.engines import ENGINES
from tests.servers import HOST

ROOT = Path(__file__).resolve().parent.parent
COOKIE = settings.SESSION_COOKIE_NAME


@dataclass
class Response:
    status: int
    body: bytes
    cookies: dict[str, str]  # Set-Cookie values by name

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class RealServer:
    url: str

    def get(self, path: str, token: str | None = None, **query: str) -> Response:
        """One request on a fresh connection, with ``token`` as the session cookie."""
        from urllib.parse import urlencode

        request = urllib.request.Request(  # noqa: S310 - our own http:// URL
            f"{self.url}{path}" + (f"?{urlencode(query)}" if query else "")
        )
        if token is not None:
            request.add_header("Cookie", f"{COOKIE}={token}")
        try:
            with urllib.request.urlopen(request, timeout=60) as reply:  # noqa: S310
                status, body, headers = reply.status, reply.read(), reply.headers
        except urllib.error.HTTPError as error:
            status, body, headers = error.code, error.read(), error.headers
        cookies = {}
        for line in headers.get_all("Set-Cookie") or []:
            name, _, rest = line.partition("=")
            cookies[name.strip()] = rest.split(";", 1)[0]
        return Response(status, body, cookies)


@contextmanager
def gunicorn(
    engine: str, *, workers: int = 2, threads: int = 16, **overrides: Any
) -> Iterator[RealServer]:
    """The test project under gunicorn with the session engine ``engine`` (a key
    of tests.engines.ENGINES) and the settings ``overrides``."""
    spec = ENGINES[engine]
    overrides.setdefault("SESSION_ENGINE", spec.module)
    if spec.cache is not None:
        scs = dict(overrides.pop("SCS", None) or {})
        scs.setdefault("CACHE_ALIAS", spec.cache)
        overrides["SCS"] = scs
    # The servers and test databases of this run, as pytest-django named them.
    redis_location = settings.CACHES["redis"]["LOCATION"]
    overrides.setdefault("CACHES", {**settings.CACHES})
    overrides["CACHES"]["redis"] = {
        **settings.CACHES["redis"],
        "LOCATION": redis_location,
    }
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.server_settings",
        "SCS_SERVER_DEFAULT_NAME": connections["default"].settings_dict["NAME"],
        "SCS_SERVER_SQLITE_NAME": str(connections["sqlite"].settings_dict["NAME"]),
        "SCS_SERVER_MARIADB_NAME": connections["mariadb"].settings_dict["NAME"],
        "SCS_SERVER_DATABASE": spec.database,
        "SCS_SERVER_SETTINGS": json.dumps(overrides, default=str),
        "SCS_TEST_PG_PORT": str(connections["default"].settings_dict["PORT"]),
        "SCS_TEST_MARIADB_PORT": str(connections["mariadb"].settings_dict["PORT"]),
        "SCS_TEST_REDIS_URL": redis_location,
    }
    # The socket is bound here and handed to gunicorn (fd://), so no other
    # process can take the port between choosing and binding it.
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((HOST, 0))
    listener.listen(128)
    listener.set_inheritable(True)
    port = listener.getsockname()[1]
    # A file, not a pipe nobody reads until the end: a flood of tracebacks
    # would fill a pipe and stall the workers.
    log = tempfile.TemporaryFile()
    process = subprocess.Popen(  # noqa: S603
        [
            sys.executable,
            "-m",
            "gunicorn",
            "tests.wsgi:application",
            "--bind",
            f"fd://{listener.fileno()}",
            "--workers",
            str(workers),
            "--threads",
            str(threads),
            "--worker-class",
            "gthread",
            "--timeout",
            "120",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        pass_fds=(listener.fileno(),),
    )
    listener.close()  # gunicorn holds it now
    try:
        server = RealServer(f"http://{HOST}:{port}")
        _wait_for_workers(server, process, log)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        output = _read(log)
        if output.strip():
            # Tracebacks of the server, for the test report.
            sys.stderr.write(output[-8000:])
        log.close()


def _read(log: Any) -> str:
    log.seek(0)
    return log.read().decode(errors="replace")


def _wait_for_workers(server: RealServer, process: Any, log: Any) -> None:
    # The socket accepts before every worker has imported Django.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited:\n{_read(log)[-4000:]}")
        try:
            if server.get("/untouched/").status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"gunicorn answered no request:\n{_read(log)[-4000:]}")
