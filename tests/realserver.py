"""The test project under a real server, in its own process, on loopback.

The test client runs one request at a time in the test's thread; races that
only show between real requests (lost writes under contention, a revoke
racing renewals) need a real server: ``gunicorn()`` runs several worker
processes, each with several threads, each thread with its own database and
Redis connections, against the test run's own PostgreSQL, SQLite file and
Redis. ``uvicorn()`` runs the project under ASGI, with the async views of
tests/asgi_views.py. Tests using them run with ``transaction=True`` so that
what they write is committed and the server sees it. ``serve()`` runs any
other server command the same way (tests/browser/ serves the demo with it).
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
from django.db import DEFAULT_DB_ALIAS, connections

from tests.engines import ENGINES
from tests.servers import HOST

ROOT = Path(__file__).resolve().parent.parent
COOKIE = settings.SESSION_COOKIE_NAME


@dataclass
class Response:
    status: int
    body: bytes
    cookies: dict[str, str]  # Set-Cookie values by name
    headers: Any = None  # the reply's http.client.HTTPMessage

    def json(self) -> Any:
        return json.loads(self.body)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    # A redirect is the answer under test (and carries its own Set-Cookie).
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirects)


@dataclass
class RealServer:
    url: str

    def get(self, path: str, token: str | None = None, **query: str) -> Response:
        """One request on a fresh connection, with ``token`` as the session cookie."""
        return self.request("GET", path, token, query=query)

    def request(
        self,
        method: str,
        path: str,
        token: str | None = None,
        *,
        query: dict[str, str] | None = None,
        data: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        """One request on a fresh connection, ``data`` sent form-encoded;
        redirects are not followed."""
        from urllib.parse import urlencode

        request = urllib.request.Request(  # noqa: S310 - our own http:// URL
            f"{self.url}{path}" + (f"?{urlencode(query)}" if query else ""),
            data=None if data is None else urlencode(data).encode(),
            headers=headers or {},
            method=method,
        )
        if token is not None:
            request.add_header("Cookie", f"{COOKIE}={token}")
        try:
            with _opener.open(request, timeout=60) as reply:
                status, body, headers = reply.status, reply.read(), reply.headers
        except urllib.error.HTTPError as error:
            status, body, headers = error.code, error.read(), error.headers
        cookies = {}
        for line in headers.get_all("Set-Cookie") or []:
            name, _, rest = line.partition("=")
            cookies[name.strip()] = rest.split(";", 1)[0]
        return Response(status, body, cookies, headers)


def server_env(engine: str, overrides: dict[str, Any]) -> dict[str, str]:
    """The environment of a server process running the test project with the
    session engine ``engine`` (a key of tests.engines.ENGINES, or a
    ``SESSION_ENGINE`` module) and the settings ``overrides``, against the
    databases and Redis of this test run."""
    spec = ENGINES.get(engine)
    if spec is None:
        overrides.setdefault("SESSION_ENGINE", engine)
        database = DEFAULT_DB_ALIAS
    else:
        overrides.setdefault("SESSION_ENGINE", spec.module)
        database = spec.database
    if spec is not None and spec.cache is not None:
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
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.server_settings",
        "SCS_SERVER_DEFAULT_NAME": connections["default"].settings_dict["NAME"],
        "SCS_SERVER_SQLITE_NAME": str(connections["sqlite"].settings_dict["NAME"]),
        "SCS_SERVER_MARIADB_NAME": connections["mariadb"].settings_dict["NAME"],
        "SCS_SERVER_DATABASE": database,
        "SCS_SERVER_SETTINGS": json.dumps(overrides, default=str),
        "SCS_TEST_PG_PORT": str(connections["default"].settings_dict["PORT"]),
        "SCS_TEST_MARIADB_PORT": str(connections["mariadb"].settings_dict["PORT"]),
        "SCS_TEST_REDIS_URL": redis_location,
    }


@contextmanager
def gunicorn(
    engine: str, *, workers: int = 2, threads: int = 16, **overrides: Any
) -> Iterator[RealServer]:
    """The test project under gunicorn with the session engine ``engine`` (a key
    of tests.engines.ENGINES) and the settings ``overrides``."""
    argv = [
        "-m", "gunicorn", "tests.wsgi:application",
        "--bind", "fd://{fd}",
        "--workers", str(workers),
        "--threads", str(threads),
        "--worker-class", "gthread",
        "--timeout", "120",
        "--log-level", "warning",
    ]  # fmt: skip
    with serve(argv, server_env(engine, overrides)) as server:
        yield server


@contextmanager
def uvicorn(
    engine: str, *, ready_path: str = "/untouched/", **overrides: Any
) -> Iterator[RealServer]:
    """The test project under uvicorn (ASGI, one process, uvloop and httptools)
    with the session engine ``engine`` and the settings ``overrides``.

    The settings are tests/asgi_settings.py: the test project's URLs plus the
    async views of tests/asgi_views.py, and a pool of PostgreSQL connections.
    """
    overrides.setdefault("ROOT_URLCONF", "tests.asgi_urls")
    env = server_env(engine, overrides)
    env["DJANGO_SETTINGS_MODULE"] = "tests.asgi_settings"
    argv = ["-m", "tests.asgi_serve", "{fd}"]
    with serve(argv, env, ready_path=ready_path) as server:
        yield server


@contextmanager
def serve(
    argv: list[str], env: dict[str, str], *, ready_path: str = "/untouched/"
) -> Iterator[RealServer]:
    """Run ``python argv`` (``{fd}`` in it replaced by the listening socket's
    file descriptor) with ``env`` until the block ends; yields the server once
    it answers ``ready_path`` with a 200."""
    # The socket is bound here and handed to the server, so no other process
    # can take the port between choosing and binding it.
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
        [sys.executable, *(arg.format(fd=listener.fileno()) for arg in argv)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        pass_fds=(listener.fileno(),),
    )
    listener.close()  # the server holds it now
    try:
        server = RealServer(f"http://{HOST}:{port}")
        _wait_for_workers(server, process, log, ready_path)
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


def _wait_for_workers(server: RealServer, process: Any, log: Any, path: str) -> None:
    # The socket accepts before every worker has imported Django.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited:\n{_read(log)[-4000:]}")
        try:
            if server.get(path).status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"the server answered no request:\n{_read(log)[-4000:]}")
