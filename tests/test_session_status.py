"""scs_django.views.session_status, stay_signed_in and {% scs_expiry_warning %},
under a stopped clock (time-machine)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from django.conf import settings as django_settings
from django.test import AsyncClient, Client

from tests.utils import START, hash_of, logged_in

pytestmark = [
    pytest.mark.urls("tests.devices_urls"),
    pytest.mark.django_db(databases="__all__"),
]

STATUS = "/account/sessions/status/"
STAY = "/account/sessions/stay/"
TIMEOUTS = {"IDLE_TIMEOUT": 600, "ABSOLUTE_TIMEOUT": 3600, "TOUCH_INTERVAL": 60}
SIGNED_OUT = {"authenticated": False, "idle_seconds": None, "absolute_seconds": None}


def status(client: Client) -> dict:
    response = client.get(STATUS)
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    return response.json()


def test_an_anonymous_visitor_gets_no_deadlines_and_no_session(engine, client):
    response = client.get(STATUS)
    assert response.json() == SIGNED_OUT
    assert "no-store" in response["Cache-Control"]
    assert django_settings.SESSION_COOKIE_NAME not in response.cookies
    assert engine.stored.hashes() == set()


def test_the_seconds_left_are_exact(engine, settings, user_factory, clock):
    settings.SCS = TIMEOUTS
    client = logged_in(user_factory())
    assert status(client) == {
        "authenticated": True,
        "idle_seconds": 600,
        "absolute_seconds": 3600,
    }
    clock.shift(41.5)
    assert status(client) == {
        "authenticated": True,
        "idle_seconds": 558,  # whole seconds, rounded down
        "absolute_seconds": 3558,
    }


def test_a_fixed_deadline_earlier_than_the_absolute_one_is_reported(
    engine, settings, user_factory, clock
):
    settings.SCS = TIMEOUTS
    client = logged_in(user_factory())
    session = client.session
    session.set_expiry(START + timedelta(seconds=900))
    session.save()
    clock.shift(100)
    assert status(client)["absolute_seconds"] == 800


def test_the_idle_seconds_stay_exact_past_the_touch_interval(
    engine, settings, user_factory, clock
):
    settings.SCS = TIMEOUTS
    client = logged_in(user_factory())
    clock.shift(300)
    assert status(client)["idle_seconds"] == 300


def test_polling_the_status_never_keeps_the_session_alive(
    engine, settings, user_factory, clock
):
    settings.SCS = TIMEOUTS
    client = logged_in(user_factory())
    key_hash = hash_of(client)
    for _ in range(9):  # a poll every 65 s, each one past the touch interval
        clock.shift(65)
        assert status(client)["authenticated"] is True
    clock.shift(600 - 9 * 65 - 1)
    assert status(client)["authenticated"] is True
    clock.shift(1)
    assert status(client) == SIGNED_OUT
    stored = engine.stored.get(key_hash)  # the db engines keep it until cleanup
    assert stored is None or stored["expiry"] == START + timedelta(seconds=600)


def test_staying_signed_in_moves_the_idle_deadline(
    engine, settings, user_factory, clock
):
    settings.SCS = TIMEOUTS
    client = logged_in(user_factory())
    clock.shift(550)
    response = client.post(STAY)
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    assert response.json() == {
        "authenticated": True,
        "idle_seconds": 600,
        "absolute_seconds": 3050,
    }
    clock.shift(599)
    assert status(client)["authenticated"] is True


def test_staying_signed_in_is_a_post_with_the_csrf_token(
    engine, settings, user_factory, clock
):
    settings.SCS = TIMEOUTS
    user = user_factory()
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    clock.shift(550)
    assert client.get(STAY).status_code == 405
    assert client.post(STAY).status_code == 403
    # Neither moved the idle deadline.
    assert engine.stored.get(hash_of(client))["expiry"] == START + timedelta(
        seconds=600
    )
    token = client.get("/warning/").content.decode()
    csrf = re.search(r'data-csrf-token="([^"]+)"', token)[1]
    response = client.post(STAY, headers={"X-CSRFToken": csrf})
    assert response.status_code == 200
    assert response.json()["idle_seconds"] == 600


def test_the_status_under_an_async_client(engine, settings, user_factory, clock):
    settings.SCS = TIMEOUTS
    user = user_factory()

    async def scenario():
        client = AsyncClient()
        await client.aforce_login(user)
        clock.shift(30)
        polled = (await client.get(STATUS)).json()
        stayed = (await client.post(STAY)).json()
        return polled, stayed

    polled, stayed = async_to_sync(scenario)()
    assert polled == {
        "authenticated": True,
        "idle_seconds": 570,
        "absolute_seconds": 3570,
    }
    # Within the touch interval: staying signed in moves nothing yet.
    assert stayed == polled


def test_the_sealed_cookie_engine_reports_its_deadlines(
    settings, db, user_factory, clock
):
    settings.SESSION_ENGINE = "scs_django.backends.cookie"
    settings.SCS = TIMEOUTS
    client = logged_in(user_factory())
    clock.shift(300)
    assert status(client) == {
        "authenticated": True,
        "idle_seconds": 300,
        "absolute_seconds": 3300,
    }
    clock.shift(300)
    assert status(client) == SIGNED_OUT


# -- the template tag ---------------------------------------------------------------


def warning_box(client: Client) -> dict[str, str]:
    page = client.get("/warning/").content.decode()
    box = re.search(r'<div id="scs-expiry-warning"[^>]*>', page)
    if box is None:
        return {}
    return dict(re.findall(r'data-([a-z-]+)="([^"]*)"', box[0]))


def test_the_warning_is_not_on_an_anonymous_page(engine, client):
    page = client.get("/warning/").content.decode()
    assert page == "<body></body>"
    assert engine.stored.hashes() == set()


def test_the_warning_carries_what_the_script_needs(
    engine, settings, user_factory, clock
):
    settings.SCS = {**TIMEOUTS, "IDLE_WARNING": 90}
    client = logged_in(user_factory())
    clock.shift(20)
    page = client.get("/warning/").content.decode()
    assert 'role="alert"' in page
    assert '<button type="button" id="scs-stay-signed-in">' in page
    assert '<script src="/static/scs_django/expiry.js" defer></script>' in page
    box = warning_box(client)
    assert box["status-url"] == STATUS
    assert box["stay-url"] == STAY
    assert box["login-url"] == "/accounts/login/?next=/warning/"
    assert box["warn-before"] == "90"
    assert box["idle-seconds"] == "580"
    assert box["absolute-seconds"] == "3580"
    assert box["csrf-token"]


def test_the_warning_without_an_idle_timeout(engine, settings, user_factory):
    settings.SCS = {"ABSOLUTE_TIMEOUT": 3600}
    box = warning_box(logged_in(user_factory()))
    assert box["idle-seconds"] == ""
    assert box["absolute-seconds"] in ("3600", "3599")
