"""Every engine under a real ASGI server: uvicorn on loopback, async views.

The test client calls the ASGI handler in the test's own event loop; here the
requests go over TCP to uvicorn (uvloop, httptools) in a process of its own
(tests/realserver.py's ``uvicorn``), whose views (tests/asgi_views.py) use
only the async API: ``aget``, ``aset``, ``asave``, ``acycle_key``,
``aauthenticate``, ``alogin``, ``alogout``. What they stored is read back
from the store itself (tests/engines.py's views of it): the user link, the
client's IP and user agent (recording on), the token renewed at login and
at ``acycle_key``, the session gone after logout. The same steps through
sync views on the same server must store the same fields, so that no
sync-only code path is what fills them in.

The LocMem cache engine is left out: its store lives in the server's memory,
out of the test's sight. The cookie engine has no store; its own test checks
what its cookie carries.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest

from scs_django import sessions
from scs_django.tokens import hash_token
from tests.factories import PASSWORD
from tests.realserver import COOKIE, RealServer, uvicorn

pytestmark = pytest.mark.django_db(databases="__all__", transaction=True)

ASGI_ENGINES = [
    "db-postgresql",
    "db-sqlite",
    "db-mariadb",
    "cache-redis",
    "cached_db-redis",
]
COOKIE_ENGINE = "scs_django.backends.cookie"
FIRST_AGENT = "scs-asgi-test/1.0 (first visit)"
LOGIN_AGENT = "scs-asgi-test/2.0 (signing in)"
CYCLE_AGENT = "scs-asgi-test/3.0 (renewing)"
LOOPBACK_NETWORK = "127.0.0.0"  # 127.0.0.1 truncated to its /24, the default


def recording() -> dict[str, Any]:
    return {"SCS": {"RECORD_IP": True, "RECORD_USER_AGENT": True}}


@pytest.fixture(scope="module")
def servers(django_db_setup: Any) -> Iterator[Callable[[str], RealServer]]:
    """``servers(engine)``: uvicorn with that engine and recording on, started
    at its first use and kept for the rest of the module."""
    started: dict[str, RealServer] = {}
    with ExitStack() as stack:

        def server_for(engine: str) -> RealServer:
            if engine not in started:
                started[engine] = stack.enter_context(uvicorn(engine, **recording()))
            return started[engine]

        yield server_for


def stored_fields(engine: Any, token: str) -> dict[str, Any] | None:
    """The user link and client metadata stored for ``token``, or None."""
    found = engine.stored.get(hash_token(token))
    if found is None:
        return None
    user_id = found["user_id"]
    return {
        "user_id": None if user_id is None else str(user_id),
        "ip": found["ip"],
        "user_agent": found["user_agent"],
    }


def sign_in(server: RealServer, path: str, user: Any, token: str | None) -> str:
    response = server.request(
        "POST",
        path,
        token,
        data={"username": user.username, "password": PASSWORD},
        headers={"User-Agent": LOGIN_AGENT},
    )
    assert response.status == 200, response.body[:2000]
    return response.cookies[COOKIE]


def first_visit(server: RealServer, path: str) -> str:
    response = server.request(
        "GET", path, query={"value": "cart"}, headers={"User-Agent": FIRST_AGENT}
    )
    assert response.status == 200, response.body[:2000]
    return response.cookies[COOKIE]


@pytest.mark.parametrize("engine", ASGI_ENGINES, indirect=True)
def test_async_views_under_uvicorn_store_user_link_metadata_and_renewals(
    engine, user_factory, servers
):
    server = servers(engine.id)
    user = user_factory()

    anonymous = first_visit(server, "/asgi/write/")
    assert stored_fields(engine, anonymous) == {
        "user_id": None,
        "ip": LOOPBACK_NETWORK,
        "user_agent": FIRST_AGENT,
    }
    assert server.get("/asgi/read/", anonymous).json() == {
        "value": "cart",
        "session_user": None,
        "user": None,
    }

    # alogin renews the token; the old one is dead, the cart goes along.
    signed_in = sign_in(server, "/asgi/login/", user, anonymous)
    assert signed_in != anonymous
    assert stored_fields(engine, anonymous) is None
    assert stored_fields(engine, signed_in) == {
        "user_id": str(user.pk),
        "ip": LOOPBACK_NETWORK,
        "user_agent": LOGIN_AGENT,  # recorded again at the renewal
    }
    assert server.get("/asgi/read/", signed_in).json() == {
        "value": "cart",
        "session_user": str(user.pk),
        "user": user.pk,
    }
    assert server.get("/asgi/read/", anonymous).json()["user"] is None
    assert [s.key_hash for s in sessions.for_user(user)] == [hash_token(signed_in)]

    # acycle_key renews again, keeps the user link and records the client anew.
    cycle = server.request(
        "GET", "/asgi/cycle/", signed_in, headers={"User-Agent": CYCLE_AGENT}
    )
    cycled = cycle.cookies[COOKIE]
    assert cycled not in (signed_in, anonymous)
    assert stored_fields(engine, signed_in) is None
    assert stored_fields(engine, cycled) == {
        "user_id": str(user.pk),
        "ip": LOOPBACK_NETWORK,
        "user_agent": CYCLE_AGENT,
    }

    # A write in one request is read by the next, and keeps the link.
    assert server.get("/asgi/write/", cycled, key="step", value="two").status == 200
    assert server.get("/asgi/read/", cycled, key="step").json() == {
        "value": "two",
        "session_user": str(user.pk),
        "user": user.pk,
    }
    assert stored_fields(engine, cycled)["user_id"] == str(user.pk)

    # alogout ends the stored session and clears the cookie.
    logout = server.request("POST", "/asgi/logout/", cycled)
    assert logout.status == 200
    assert logout.cookies[COOKIE] in ("", '""')  # a deleted cookie
    assert stored_fields(engine, cycled) is None
    assert sessions.for_user(user) == []
    assert server.get("/asgi/read/", cycled).json() == {
        "value": None,
        "session_user": None,
        "user": None,
    }


@pytest.mark.parametrize("engine", ASGI_ENGINES, indirect=True)
@pytest.mark.parametrize("visit_first", [True, False], ids=["with-cart", "cold"])
def test_async_and_sync_paths_store_the_same_fields(
    engine, user_factory, servers, visit_first
):
    server = servers(engine.id)
    stored = {}
    for kind in ("asgi", "sync"):
        user = user_factory()
        token = first_visit(server, f"/{kind}/write/") if visit_first else None
        token = sign_in(server, f"/{kind}/login/", user, token)
        fields = stored_fields(engine, token)
        assert fields is not None
        assert fields.pop("user_id") == str(user.pk)
        stored[kind] = fields
        assert server.get("/asgi/read/", token).json()["user"] == user.pk
    assert (
        stored["asgi"]
        == stored["sync"]
        == {
            "ip": LOOPBACK_NETWORK,
            "user_agent": LOGIN_AGENT,
        }
    )


@pytest.mark.parametrize(
    "engine", ["db-postgresql", "db-sqlite", "db-mariadb"], indirect=True
)
def test_async_requests_share_the_statements_and_leave_no_connection_behind(
    engine, servers
):
    # Django makes a connection wrapper per ASGI request. Statements written
    # per wrapper were written again on every request, and on SQLite and
    # MariaDB (whose datetime converters are the wrapper's methods) kept each
    # request's wrapper alive for good.
    server = servers(engine.id)
    token = first_visit(server, "/asgi/write/")
    before = server.get("/asgi/connections/").json()
    for _ in range(40):
        assert server.get("/asgi/read/", token).json()["value"] == "cart"
    after = server.get("/asgi/connections/").json()
    assert after["wrappers"] <= before["wrappers"] + 2, (before, after)
    assert after["same_statements"] is True


def test_cookie_engine_under_uvicorn_renews_at_login_and_clears_at_logout(
    user_factory, servers
):
    server = servers(COOKIE_ENGINE)
    user = user_factory()

    anonymous = first_visit(server, "/asgi/write/")
    assert server.get("/asgi/read/", anonymous).json()["value"] == "cart"

    signed_in = sign_in(server, "/asgi/login/", user, anonymous)
    assert signed_in != anonymous
    assert server.get("/asgi/read/", signed_in).json() == {
        "value": "cart",
        "session_user": str(user.pk),
        "user": user.pk,
    }

    cycled = server.get("/asgi/cycle/", signed_in).cookies[COOKIE]
    assert cycled != signed_in
    assert server.get("/asgi/read/", cycled).json()["user"] == user.pk

    written = server.get("/asgi/write/", cycled, key="step", value="two")
    latest = written.cookies[COOKIE]
    assert server.get("/asgi/read/", latest, key="step").json() == {
        "value": "two",
        "session_user": str(user.pk),
        "user": user.pk,
    }

    logout = server.request("POST", "/asgi/logout/", latest)
    assert logout.status == 200
    assert logout.cookies[COOKIE] in ("", '""')  # a deleted cookie


@pytest.mark.parametrize("engine", ["db-postgresql"], indirect=True)
def test_session_status_after_a_touch_interval_reports_the_stored_idle_end(
    engine, user_factory
):
    """A page polls the status long after its last request (the expiry
    warning asks shortly before the idle end), so after TOUCH_INTERVAL."""
    user = user_factory()
    scs = {"IDLE_TIMEOUT": 6, "TOUCH_INTERVAL": 1}
    with uvicorn(engine.id, SCS=scs) as server:
        token = sign_in(server, "/asgi/login/", user, None)
        stored_expiry = engine.stored.get(hash_token(token))["expiry"]
        time.sleep(2.5)  # a real server: its clock is the real one
        status = server.get("/account/sessions/status/", token).json()
        assert engine.stored.get(hash_token(token))["expiry"] == stored_expiry
        assert status["authenticated"] is True
        # 6 seconds from the sign-in, 2.5 of them gone, whatever the rounding.
        assert status["idle_seconds"] <= 4, status
