"""Requests handed straight to Django's WSGI and ASGI handlers, headers byte for byte.

The test clients build the ``Cookie`` header from their cookie jar, which
quotes and encodes values; these helpers put whatever bytes a test gives into
the WSGI environ or the ASGI scope, as a front-end server would, and run the
full middleware stack. They skip the client's bookkeeping (cookie jar,
templates and signals captured per response), which makes a request about
twice as fast; the flooding tests send tens of thousands.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from http.cookies import Morsel
from typing import Any
from urllib.parse import urlencode

from asgiref.sync import async_to_sync
from django.conf import settings
from django.http import HttpResponseBase
from django.test.client import AsyncClientHandler, ClientHandler, FakePayload

TRANSPORTS = ("wsgi", "asgi")

Header = tuple[str, "bytes | str"]


def _bytes(value: bytes | str) -> bytes:
    # A str is what the user agent meant; on the wire it is UTF-8.
    return value if isinstance(value, bytes) else value.encode("utf-8")


def wsgi_environ(
    path: str,
    *,
    method: str = "GET",
    cookie: bytes | str | None = None,
    query: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
    headers: Iterable[Header] = (),
    secure: bool = False,
) -> dict[str, Any]:
    """A WSGI environ as a server builds it (PEP 3333: headers are latin-1 str)."""
    body = urlencode(form).encode("ascii") if form is not None else b""
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "SCRIPT_NAME": "",
        "QUERY_STRING": urlencode(query or {}),
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "443" if secure else "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "testserver",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "https" if secure else "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": io.StringIO(),
        "wsgi.multiprocess": True,
        "wsgi.multithread": False,
        "wsgi.run_once": False,
    }
    if form is not None:
        environ["CONTENT_TYPE"] = "application/x-www-form-urlencoded"
        environ["CONTENT_LENGTH"] = str(len(body))
    if cookie is not None:
        environ["HTTP_COOKIE"] = _bytes(cookie).decode("latin-1")
    for name, value in headers:
        key = "HTTP_" + name.upper().replace("-", "_")
        environ[key] = _bytes(value).decode("latin-1")
    return environ


def asgi_scope(
    path: str,
    *,
    method: str = "GET",
    cookie: bytes | str | None = None,
    query: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
    headers: Iterable[Header] = (),
    secure: bool = False,
) -> dict[str, Any]:
    """An ASGI HTTP scope, headers as raw bytes; the body goes in ``_body_file``."""
    body = urlencode(form).encode("ascii") if form is not None else b""
    raw_headers = [(b"host", b"testserver")]
    if form is not None:
        raw_headers += [
            (b"content-type", b"application/x-www-form-urlencoded"),
            (b"content-length", str(len(body)).encode("ascii")),
        ]
    if cookie is not None:
        raw_headers.append((b"cookie", _bytes(cookie)))
    raw_headers += [(name.lower().encode("ascii"), _bytes(v)) for name, v in headers]
    return {
        "asgi": {"version": "3.0"},
        "type": "http",
        "http_version": "1.1",
        "method": method,
        "scheme": "https" if secure else "http",
        "path": path,
        "raw_path": path.encode("ascii"),
        "query_string": urlencode(query or {}).encode("ascii"),
        "root_path": "",
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 443 if secure else 80),
        "headers": raw_headers,
        "_body_file": FakePayload(body),
    }


class Transport:
    """Sends requests over one transport ("wsgi" or "asgi") through the test
    handlers, which leave the test's database connection open."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._wsgi = ClientHandler(enforce_csrf_checks=False)
        self._asgi = AsyncClientHandler(enforce_csrf_checks=False)
        self._asgi_call = async_to_sync(self._asgi)

    def __repr__(self) -> str:
        return f"Transport({self.name!r})"

    def request(self, path: str, **kwargs: Any) -> HttpResponseBase:
        if self.name == "wsgi":
            return self._wsgi(wsgi_environ(path, **kwargs))
        return self._asgi_call(asgi_scope(path, **kwargs))

    def get(self, path: str, **kwargs: Any) -> HttpResponseBase:
        return self.request(path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> HttpResponseBase:
        return self.request(path, method="POST", **kwargs)


def session_cookie(response: HttpResponseBase) -> Morsel[str] | None:
    """The session cookie the response sets (or deletes), if any."""
    return response.cookies.get(settings.SESSION_COOKIE_NAME)


def set_cookie_headers(response: HttpResponseBase) -> list[str]:
    """Every ``Set-Cookie`` line of the response, as the server would send them."""
    return [morsel.OutputString() for morsel in response.cookies.values()]


def json_body(response: HttpResponseBase) -> Any:
    """The decoded JSON body of a response."""
    return json.loads(response.content)
