"""Remember me (scs_django.backends.remember), on every engine: a remembered
session outlives the browser, a forgotten one ends with it and after its own
idle timeout, and the absolute deadline bounds both."""

import pytest
import time_machine
from django.conf import settings as django_settings
from django.test import AsyncClient

from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db(databases="__all__")

COOKIE = django_settings.SESSION_COOKIE_NAME
START = "2026-03-01 12:00:00+00:00"
TIMEOUTS = {"ABSOLUTE_TIMEOUT": 8 * 3600, "IDLE_TIMEOUT": 3600, "TOUCH_INTERVAL": 60}


def sign_in(client, user, path="/sign-in-remembering/", **choice):
    form = {"username": user.username, "password": PASSWORD, **choice}
    response = client.post(path, form)
    assert response.status_code == 200, response.content
    return response.cookies[COOKIE]


def alive(client):
    return client.get("/read/").json()["user"] is not None


def test_a_remembered_session_gets_a_cookie_that_lasts_until_the_absolute_deadline(
    client, engine, user_factory, settings
):
    settings.SCS = TIMEOUTS
    settings.SESSION_EXPIRE_AT_BROWSER_CLOSE = True  # remembering overrides it
    with time_machine.travel(START, tick=False) as clock:
        cookie = sign_in(client, user_factory(), remember="on")
        assert cookie["max-age"] == 8 * 3600
        assert cookie["expires"]
        clock.shift(3599)
        assert alive(client)  # the site's idle timeout, counted from the sign-in
        for _ in range(7):  # active every 50 minutes...
            clock.shift(3000)
            assert alive(client)
        clock.shift(8 * 3600 - 3599 - 7 * 3000)
        assert not alive(client)  # ...until the absolute deadline


def test_a_forgotten_session_ends_with_the_browser_and_after_its_own_idle_timeout(
    client, engine, user_factory, settings
):
    settings.SCS = TIMEOUTS
    with time_machine.travel(START, tick=False) as clock:
        cookie = sign_in(client, user_factory(), idle=600)
        assert cookie["max-age"] == ""  # a browser-session cookie
        assert cookie["expires"] == ""
        clock.shift(599)
        assert alive(client)
        assert client.session.get_expire_at_browser_close()
        clock.shift(600)  # 600 s after the last request (touched above)
        assert not alive(client)


def test_a_forgotten_session_without_its_own_timeout_keeps_the_sites(
    client, engine, user_factory, settings
):
    settings.SCS = TIMEOUTS
    with time_machine.travel(START, tick=False) as clock:
        cookie = sign_in(client, user_factory())
        assert cookie["max-age"] == ""
        clock.shift(3599)
        assert alive(client)
        clock.shift(3600)
        assert not alive(client)


def test_the_absolute_deadline_bounds_a_forgotten_session_too(
    client, engine, user_factory, settings
):
    settings.SCS = {**TIMEOUTS, "ABSOLUTE_TIMEOUT": 1000}
    with time_machine.travel(START, tick=False) as clock:
        sign_in(client, user_factory(), idle=600)
        clock.shift(500)
        assert alive(client)
        clock.shift(499)
        assert alive(client)
        clock.shift(1)
        assert not alive(client)


def test_the_choice_survives_a_token_renewal(client, engine, user_factory, settings):
    settings.SCS = TIMEOUTS
    user = user_factory()
    sign_in(client, user, idle=600)
    # A renewal (as at every login) keeps the data, the choice with it.
    client.post("/renew/")
    cookie = client.get("/write/", {"value": "x"}).cookies[COOKIE]
    assert cookie["max-age"] == ""
    assert client.session.get_expire_at_browser_close()


def test_async_views_choose_with_aremember_me(engine, user_factory, settings):
    settings.SCS = TIMEOUTS
    client = AsyncClient()
    user = user_factory()
    response = async_to_sync_post(
        client, "/async/sign-in-remembering/", user, remember="on"
    )
    assert response.cookies[COOKIE]["max-age"] == 8 * 3600
    other = AsyncClient()
    response = async_to_sync_post(other, "/async/sign-in-remembering/", user, idle=600)
    assert response.cookies[COOKIE]["max-age"] == ""


def async_to_sync_post(client, path, user, **choice):
    from asgiref.sync import async_to_sync

    form = {"username": user.username, "password": PASSWORD, **choice}
    response = async_to_sync(client.post)(path, form)
    assert response.status_code == 200, response.content
    return response


@pytest.mark.parametrize("idle", [0, -5, True, "600"])
def test_an_idle_timeout_that_is_no_number_of_seconds_is_refused(
    client, engine, user_factory, idle
):
    store = engine.store_class()
    with pytest.raises(ValueError, match="idle"):
        store.remember_me(False, idle=idle)
