"""A well-formed cookie that names no live session is cleared, once (issue 8,
item 6): otherwise the browser sends it with every request forever.

Cleared when the request loaded the session and the store had nothing under
the token (unknown, expired, ended by another request, revoked), with the
attributes the cookie was set with. Left alone when the store could not be
asked (an outage: the session must work again once the store is back), when
the view never looked at the session, and when the cookie is malformed (never
taken for a token at all). On every engine, over WSGI and ASGI.
"""

from contextlib import ExitStack, contextmanager

import pytest
import time_machine
from django.test import Client

from scs_django import sessions, tokens
from tests.engines import DB_ENGINES
from tests.security.test_store_failures import (
    assert_unavailable,
    database_down,
    redis_unreachable,
)
from tests.security.transport import json_body, session_cookie
from tests.utils import cookie, read, token_of

pytestmark = pytest.mark.django_db(databases="__all__")

START = "2026-03-01 12:00:00+00:00"


def assert_cleared(response):
    cleared = session_cookie(response)
    assert cleared is not None, "no delete-cookie"
    assert (cleared.value, cleared["max-age"]) == ("", 0)
    assert cleared["expires"] == "Thu, 01 Jan 1970 00:00:00 GMT"
    assert "Cookie" in response["Vary"]
    assert "private" in response["Cache-Control"]


def assert_cleared_once(transport, token, engine, path="/read/"):
    """A request with ``token`` clears it, stores nothing; the browser then
    sends no cookie, and that request gets none either."""
    stored_before = engine.stored.hashes()
    response = transport.get(path, cookie=cookie(token))
    assert response.status_code == 200
    assert json_body(response)["value"] is None
    assert_cleared(response)
    after = transport.get(path)
    assert after.status_code == 200
    assert not after.cookies, after.cookies.output()
    assert engine.stored.hashes() == stored_before  # nothing written


@pytest.mark.parametrize("path", ["/read/", "/async/read/"])
def test_unknown_token_is_cleared_once(transport, engine, path):
    assert_cleared_once(transport, tokens.new_token(), engine, path)


@pytest.mark.parametrize("deadline", ["absolute", "idle"])
def test_expired_session_cookie_is_cleared_once(transport, engine, settings, deadline):
    if deadline == "absolute":
        settings.SCS = {"ABSOLUTE_TIMEOUT": 3600}
    else:
        settings.SCS = {"IDLE_TIMEOUT": 600, "ABSOLUTE_TIMEOUT": 3600}
    with time_machine.travel(START, tick=False) as clock:
        session = engine.store_class()
        session["value"] = "secret"
        session.save()
        token = session.session_key
        clock.shift(599)
        assert read(transport, token)["value"] == "secret"  # no touch: not yet due
        clock.shift(3001)  # the idle deadline at 600 s, the absolute at 3600 s
        assert_cleared_once(transport, token, engine)


def test_session_ended_by_a_logout_elsewhere_is_cleared_once(
    transport, engine, live_token
):
    # Another tab (same cookie) logs out; this one still holds the token.
    assert_cleared(transport.get("/logout-session/", cookie=cookie(live_token)))
    assert_cleared_once(transport, live_token, engine)


# The generic cache path keeps no per-user index, so it cannot revoke.
@pytest.mark.parametrize(
    "engine", [*DB_ENGINES, "cache-redis", "cached_db-redis"], indirect=True
)
def test_revoked_session_cookie_is_cleared_once(transport, engine, user_factory):
    user = user_factory()
    device = Client()
    device.force_login(user)
    token = token_of(device)
    assert sessions.revoke(user) == 1
    assert_cleared_once(transport, token, engine)


def test_delete_cookie_has_the_attributes_the_cookie_was_set_with(
    transport, engine, settings
):
    settings.SESSION_COOKIE_DOMAIN = "example.com"
    settings.SESSION_COOKIE_PATH = "/app/"
    settings.SESSION_COOKIE_SAMESITE = "Strict"
    settings.SESSION_COOKIE_SECURE = True
    set_ = session_cookie(transport.get("/write/"))
    cleared = session_cookie(transport.get("/read/", cookie=cookie(tokens.new_token())))
    assert (cleared.value, cleared["max-age"]) == ("", 0)
    for attribute in ("domain", "path", "samesite", "secure", "httponly"):
        assert cleared[attribute] == set_[attribute], attribute
    assert (cleared["domain"], cleared["path"]) == ("example.com", "/app/")
    assert (cleared["samesite"], cleared["secure"]) == ("Strict", True)


# -- left alone --------------------------------------------------------------------------


def test_view_that_never_looks_at_the_session_leaves_the_cookie_alone(
    transport, engine
):
    with engine.no_traffic():
        response = transport.get("/untouched/", cookie=cookie(tokens.new_token()))
    assert response.status_code == 200
    assert not response.cookies, response.cookies.output()


def test_malformed_cookie_is_left_alone(transport, engine):
    with engine.no_traffic():
        response = transport.get("/read/", cookie=cookie(tokens.new_token()[:42]))
    assert json_body(response)["value"] is None
    assert not response.cookies, response.cookies.output()


@contextmanager
def everything_down(engine):
    """Every store the engine reads a session from out of reach."""
    with ExitStack() as stack:
        if engine.kind in ("db", "cached_db"):
            stack.enter_context(database_down(engine.alias))
        if engine.on_redis:
            stack.enter_context(redis_unreachable(engine))
        yield


# LocMem lives in the process: it cannot be taken down.
STORES_THAT_GO_DOWN = [*DB_ENGINES, "cache-redis", "cached_db-redis"]


@pytest.mark.parametrize("engine", STORES_THAT_GO_DOWN, indirect=True)
@pytest.mark.parametrize("fail_open", [False, True])
@pytest.mark.parametrize("path", ["/read/", "/async/read/"])
def test_store_down_leaves_the_cookie_alone(
    transport, engine, live_token, settings, fail_open, path
):
    settings.SCS = {"FAIL_OPEN": fail_open}
    with everything_down(engine):
        live = transport.get(path, cookie=cookie(live_token))
        unknown = transport.get(path, cookie=cookie(tokens.new_token()))
    for response in (live, unknown):
        if fail_open:
            # Served as anonymous; the store never said the token was unknown.
            assert response.status_code == 200
            assert json_body(response)["value"] is None
            assert not response.cookies, response.cookies.output()
        else:
            assert_unavailable(response)
    assert read(transport, live_token, path)["value"] == "secret"
