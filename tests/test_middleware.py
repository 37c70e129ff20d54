"""What the middleware sends: cookies, headers, and when it writes, on every
engine."""

import pytest
import time_machine
from django.conf import settings as django_settings
from django.test import AsyncClient

from scs_django import tokens
from tests.utils import start_session

pytestmark = pytest.mark.django_db(databases="__all__")

COOKIE = django_settings.SESSION_COOKIE_NAME


def test_new_session_cookie_has_the_configured_attributes(client, engine, settings):
    settings.SESSION_COOKIE_DOMAIN = "example.com"
    settings.SESSION_COOKIE_PATH = "/app/"
    settings.SESSION_COOKIE_SAMESITE = "Strict"
    response = client.get("/write/")
    morsel = response.cookies[COOKIE]
    assert tokens.is_well_formed(morsel.value)
    assert morsel["max-age"] == django_settings.SESSION_COOKIE_AGE
    assert morsel["domain"] == "example.com"
    assert morsel["path"] == "/app/"
    assert morsel["samesite"] == "Strict"
    assert morsel["httponly"] is True
    assert not morsel["secure"]
    assert "Cookie" in response["Vary"]
    assert "private" in response["Cache-Control"]


def test_a_page_marked_public_becomes_private_when_it_sets_the_cookie(client, engine):
    response = client.get("/write-public/")
    assert response.cookies[COOKIE].value
    directives = {d.strip() for d in response["Cache-Control"].split(",")}
    assert directives == {"private", "max-age=60"}


def test_cookie_is_secure_on_https_even_without_the_setting(client, engine, settings):
    settings.SESSION_COOKIE_SECURE = False
    response = client.get("/write/", secure=True)
    assert response.cookies[COOKIE]["secure"] is True


def test_reading_without_a_cookie_stores_nothing_and_sets_no_cookie(client, engine):
    response = client.get("/read/")
    assert response.json() == {"value": None, "user": None}
    assert COOKIE not in response.cookies
    assert response["Vary"] == "Cookie"
    assert engine.stored.hashes() == set()


def test_save_every_request_does_not_store_an_empty_session(client, engine, settings):
    settings.SESSION_SAVE_EVERY_REQUEST = True
    for path in ("/read/", "/untouched/"):
        response = client.get(path)
        assert COOKIE not in response.cookies
    for path in ("/read/", "/untouched/"):
        client.cookies[COOKIE] = tokens.new_token()  # well-formed but unknown
        response = client.get(path)
        # Cleared (the browser would send it forever), never stored.
        assert (
            response.cookies[COOKIE].value,
            response.cookies[COOKIE]["max-age"],
        ) == ("", 0)
    assert engine.stored.hashes() == set()


def test_save_every_request_refreshes_a_live_session(client, engine, settings):
    settings.SESSION_SAVE_EVERY_REQUEST = True
    token = start_session(client)
    response = client.get("/untouched/")
    assert response.cookies[COOKIE].value == token


def test_malformed_cookie_never_reaches_the_store(client, engine):
    client.cookies[COOKIE] = "not-a-token'; DROP TABLE scs_django_session; --"
    with engine.no_traffic():
        response = client.get("/read/")
    assert COOKIE not in response.cookies


def test_unknown_token_is_never_adopted(client, engine):
    unknown = tokens.new_token()
    client.cookies[COOKIE] = unknown
    response = client.get("/write/")
    issued = response.cookies[COOKIE].value
    assert issued != unknown
    assert engine.stored.hashes() == {tokens.hash_token(issued)}


def test_server_error_response_persists_nothing(client, engine):
    token = start_session(client, "before")
    response = client.get("/write-then-fail/")
    assert response.status_code == 500
    assert COOKIE not in response.cookies
    assert client.get("/read/").json()["value"] == "before"
    assert client.cookies[COOKIE].value == token


def test_logout_deletes_the_row_and_the_cookie_with_its_attributes(
    client, engine, settings
):
    settings.SESSION_COOKIE_DOMAIN = "example.com"
    settings.SESSION_COOKIE_SAMESITE = "Strict"
    settings.SESSION_COOKIE_SECURE = True
    token = start_session(client)
    response = client.get("/logout-session/")
    morsel = response.cookies[COOKIE]
    assert morsel.value == ""
    assert morsel["max-age"] == 0
    assert morsel["domain"] == "example.com"
    assert morsel["path"] == django_settings.SESSION_COOKIE_PATH
    assert morsel["samesite"] == "Strict"
    assert morsel["secure"] is True
    assert "private" in response["Cache-Control"]
    assert engine.stored.get(tokens.hash_token(token)) is None


def test_flush_without_a_stored_session_sends_no_cookie(client, engine):
    response = client.get("/logout-session/")
    assert COOKIE not in response.cookies


def test_renew_sends_the_new_token_and_kills_the_old(client, engine):
    old = start_session(client)
    response = client.get("/renew/")
    new = response.cookies[COOKIE].value
    assert new != old and tokens.is_well_formed(new)
    assert client.get("/read/").json()["value"] == "cart"
    client.cookies[COOKIE] = old
    assert client.get("/read/").json()["value"] is None


def test_cookie_max_age_never_outlives_the_absolute_deadline(client, engine, settings):
    settings.SCS = {"ABSOLUTE_TIMEOUT": 3600}
    with time_machine.travel("2026-03-01 12:00:00+00:00", tick=False) as clock:
        assert client.get("/write/").cookies[COOKIE]["max-age"] == 3600
        clock.shift(1000)
        response = client.get("/write/", {"value": "later"})
    assert response.cookies[COOKIE]["max-age"] == 2600


def test_per_session_idle_expiry_keeps_the_cookie_until_the_absolute_deadline(
    client, engine, settings
):
    settings.SCS = {"ABSOLUTE_TIMEOUT": 3600}
    response = client.get("/set-expiry/", {"seconds": "300"})
    assert response.cookies[COOKIE]["max-age"] == 3600
    (key_hash,) = engine.stored.hashes()
    session = engine.stored.get(key_hash)
    assert (session["expiry"] - session["last_seen"]).total_seconds() == 300


def test_browser_session_cookie_has_no_max_age(client, engine, settings):
    settings.SESSION_EXPIRE_AT_BROWSER_CLOSE = True
    morsel = client.get("/write/").cookies[COOKIE]
    assert morsel["max-age"] == ""
    assert morsel["expires"] == ""


def test_touch_sends_no_cookie(client, engine, settings):
    settings.SCS = {"IDLE_TIMEOUT": 600, "TOUCH_INTERVAL": 60}
    with time_machine.travel("2026-03-01 12:00:00+00:00", tick=False) as clock:
        key_hash = tokens.hash_token(start_session(client))
        before = engine.stored.get(key_hash)
        clock.shift(120)
        response = client.get("/read/")
        after = engine.stored.get(key_hash)
    assert COOKIE not in response.cookies
    assert (after["expiry"] - before["expiry"]).total_seconds() == 120
    assert after["version"] == before["version"]  # a touch rewrites no data
    assert after["data"] == before["data"]


def test_async_views_read_and_write_the_session(engine):
    from asgiref.sync import async_to_sync

    async def scenario():
        client = AsyncClient()
        response = await client.get("/async/write/", {"value": "from-async"})
        token = response.cookies[COOKIE].value
        assert tokens.is_well_formed(token)
        response = await client.get("/async/read/")
        assert COOKIE not in response.cookies
        return response.json()["value"]

    assert async_to_sync(scenario)() == "from-async"
