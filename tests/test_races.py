"""A request that ends a session wins over one that was already in flight."""

import pytest
import time_machine
from django.conf import settings as django_settings
from django.test import Client

from scs_django import tokens
from scs_django.models import Session
from tests import views
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db(databases="__all__")

COOKIE = django_settings.SESSION_COOKIE_NAME


@pytest.fixture
def in_flight():
    def install(action):
        views.IN_FLIGHT = action

    yield install
    views.IN_FLIGHT = None


def start_session(client, value="cart"):
    client.get("/write/", {"value": value})
    return client.cookies[COOKIE].value


def second_client(token):
    other = Client()
    other.cookies[COOKIE] = token
    return other


def test_logout_during_slow_write_does_not_resurrect(client, db_alias, in_flight):
    token = start_session(client)
    in_flight(lambda: second_client(token).get("/logout-session/"))
    response = client.get("/slow/write/")
    assert response.status_code == 400  # SessionInterrupted
    assert COOKIE not in response.cookies
    assert not Session.objects.exists()
    assert second_client(token).get("/read/").json()["value"] is None


def test_logout_during_slow_touch_does_not_resurrect(
    client, db_alias, in_flight, settings
):
    settings.SCS = {"IDLE_TIMEOUT": 600, "TOUCH_INTERVAL": 60}
    with time_machine.travel("2026-03-01 12:00:00+00:00", tick=False) as clock:
        token = start_session(client)
        clock.shift(120)  # the next read is due to touch
        in_flight(lambda: second_client(token).get("/logout-session/"))
        response = client.get("/slow/read/")
    assert response.status_code == 400
    assert COOKIE not in response.cookies
    assert not Session.objects.exists()


def test_renew_during_slow_write_keeps_the_old_token_dead(client, db_alias, in_flight):
    token = start_session(client)
    renewed = {}

    def renew_elsewhere():
        response = second_client(token).get("/renew/")
        renewed["token"] = response.cookies[COOKIE].value

    in_flight(renew_elsewhere)
    response = client.get("/slow/write/")
    assert response.status_code == 400
    assert COOKIE not in response.cookies
    assert second_client(token).get("/read/").json()["value"] is None
    assert second_client(renewed["token"]).get("/read/").json()["value"] == "cart"
    assert Session.objects.count() == 1


def test_login_elsewhere_during_slow_write_does_not_revive_the_anonymous_token(
    client, db_alias, in_flight, user_factory
):
    user = user_factory()
    token = start_session(client)
    in_flight(
        lambda: second_client(token).post(
            "/accounts/login/", {"username": user.username, "password": PASSWORD}
        )
    )
    response = client.get("/slow/write/")
    assert response.status_code == 400
    assert not Session.objects.filter(key_hash=tokens.hash_token(token)).exists()
    row = Session.objects.get()
    assert row.user_id == user.pk


def test_cleanup_during_slow_write_does_not_resurrect(
    client, db_alias, in_flight, settings
):
    from scs_django.backends.db import SessionStore

    settings.SCS = {"ABSOLUTE_TIMEOUT": 60}
    with time_machine.travel("2026-03-01 12:00:00+00:00", tick=False) as clock:
        start_session(client)
        clock.shift(59)

        def expire_and_clean():
            clock.shift(1)
            SessionStore.clear_expired()

        in_flight(expire_and_clean)
        response = client.get("/slow/write/")
    assert response.status_code == 400
    assert COOKIE not in response.cookies
    assert not Session.objects.exists()
