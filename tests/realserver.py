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
import subprocess
import sys
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
from tests.servers import HOST, free_port, wait_for_port

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
        "SCS_SERVER_DATABASE": spec.database,
        "SCS_SERVER_SETTINGS": json.dumps(overrides, default=str),
        "SCS_TEST_PG_PORT": str(connections["default"].settings_dict["PORT"]),
        "SCS_TEST_REDIS_URL": redis_location,
    }
    port = free_port()
    process = subprocess.Popen(  # noqa: S603
        [
            sys.executable,
            "-m",
            "gunicorn",
            "tests.wsgi:application",
            "--bind",
            f"{HOST}:{port}",
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
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        if not wait_for_port(port, timeout=30):
            process.kill()
            output = process.communicate()[0].decode(errors="replace")
            raise RuntimeError(f"gunicorn did not start:\n{output[-4000:]}")
        server = RealServer(f"http://{HOST}:{port}")
        _wait_for_workers(server)
        yield server
    finally:
        process.terminate()
        try:
            output = process.communicate(timeout=30)[0]
        except subprocess.TimeoutExpired:
            process.kill()
            output = process.communicate()[0]
        if output.strip():
            # Tracebacks of the server, for the test report.
            sys.stderr.write(output.decode(errors="replace")[-8000:])


def _wait_for_workers(server: RealServer) -> None:
    # The port accepts before every worker has imported Django.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if server.get("/untouched/").status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError("gunicorn answered no request")
