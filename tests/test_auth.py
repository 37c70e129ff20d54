"""django.contrib.auth, messages and CSRF on top of the engine."""

import pytest
from asgiref.sync import async_to_sync
from django.conf import settings as django_settings
from django.test import AsyncClient, Client

from scs_django import tokens
from scs_django.models import Session
from tests.factories import PASSWORD
from tests.utils import client_with, logged_in, post_login, token_of

pytestmark = pytest.mark.django_db(databases="__all__")

COOKIE = django_settings.SESSION_COOKIE_NAME


def token_is_live(token):
    """Whether the db engine still holds a row for ``token``, which the client
    that had it may have replaced since (``tests.utils.is_live`` takes a client)."""
    return Session.objects.filter(key_hash=tokens.hash_token(token)).exists()


def test_client_login_gives_a_logged_in_session(client, db_alias, user_factory):
    user = user_factory()
    assert client.login(username=user.username, password=PASSWORD)
    assert client.get("/read/").json()["user"] == str(user.pk)
    assert Session.objects.get().user_id == user.pk


def test_force_login_gives_a_logged_in_session(client, db_alias, user_factory):
    user = user_factory()
    client.force_login(user)
    assert client.get("/read/").json()["user"] == str(user.pk)


def test_async_client_login(db_alias, user_factory):
    user = user_factory()

    async def scenario():
        client = AsyncClient()
        await client.aforce_login(user)
        response = await client.get("/read/")
        return response.json()["user"]

    assert async_to_sync(scenario)() == str(user.pk)


def test_login_form_renews_the_token_and_keeps_the_anonymous_data(
    client, db_alias, user_factory
):
    user = user_factory()
    client.get("/write/", {"value": "cart"})
    anonymous = token_of(client)
    response = post_login(client, user)
    assert response.status_code == 302
    logged_in = token_of(client)
    assert logged_in != anonymous
    assert not token_is_live(anonymous)
    assert client.get("/read/").json() == {"value": "cart", "user": str(user.pk)}
    # The planted anonymous token is dead for anyone who kept it.
    attacker = client_with(anonymous)
    assert attacker.get("/read/").json() == {"value": None, "user": None}


def test_failed_login_changes_nothing(client, db_alias, user_factory):
    user = user_factory()
    client.get("/write/")
    anonymous = token_of(client)
    response = post_login(client, user, password="wrong")
    assert response.status_code == 200
    assert COOKIE not in response.cookies
    assert token_is_live(anonymous)


def test_logging_in_again_as_the_same_user_still_renews(client, db_alias, user_factory):
    user = user_factory()
    post_login(client, user)
    first = token_of(client)
    post_login(client, user)
    second = token_of(client)
    assert second != first
    assert not token_is_live(first)
    assert client.get("/read/").json()["user"] == str(user.pk)


def test_same_user_login_does_not_renew_without_the_setting(
    client, db_alias, settings, user_factory
):
    settings.SCS = {"RENEW_ON_LOGIN": False}
    user = user_factory()
    post_login(client, user)
    first = token_of(client)
    post_login(client, user)
    assert token_of(client) == first


def test_another_user_logging_in_on_top_gets_an_empty_session(
    client, db_alias, user_factory
):
    alice, bob = user_factory(), user_factory()
    post_login(client, alice)
    client.get("/write/", {"value": "alice's secret"})
    alice_token = token_of(client)
    post_login(client, bob)
    assert client.get("/read/").json() == {"value": None, "user": str(bob.pk)}
    assert not token_is_live(alice_token)


def test_login_restarts_the_absolute_lifetime(client, db_alias, settings, user_factory):
    import time_machine

    settings.SCS = {"ABSOLUTE_TIMEOUT": 3600}
    user = user_factory()
    with time_machine.travel("2026-03-01 12:00:00+00:00", tick=False) as clock:
        client.get("/write/")
        clock.shift(3000)
        response = post_login(client, user)
    assert response.cookies[COOKIE]["max-age"] == 3600
    row = Session.objects.get()
    assert row.absolute_expiry.isoformat() == "2026-03-01T13:50:00+00:00"


def test_logout_view_ends_the_session_server_side(client, db_alias, user_factory):
    user = user_factory()
    post_login(client, user)
    token = token_of(client)
    response = client.post("/accounts/logout/")
    assert response.status_code in (200, 302)
    assert not token_is_live(token)
    assert response.cookies[COOKIE]["max-age"] == 0
    replay = client_with(token)
    assert replay.get("/read/").json()["user"] is None


def test_password_change_keeps_this_session_logged_in(client, db_alias, user_factory):
    user = user_factory()
    client.force_login(user)
    other = logged_in(user)
    before = token_of(client)
    response = client.post(
        "/accounts/password_change/",
        {
            "old_password": PASSWORD,
            "new_password1": "a new Passw0rd!",
            "new_password2": "a new Passw0rd!",
        },
    )
    assert response.status_code == 302, response.content
    assert client.get("/read/").json()["user"] == str(user.pk)
    assert token_of(client) != before  # update_session_auth_hash renews the token
    # The other device's session no longer matches the password hash.
    assert other.get("/accounts/password_change/").status_code == 302


def test_admin_login(client, db_alias, user_factory):
    admin = user_factory(is_staff=True, is_superuser=True)
    response = client.post(
        "/admin/login/?next=/admin/",
        {"username": admin.username, "password": PASSWORD, "next": "/admin/"},
    )
    assert response.status_code == 302
    assert client.get("/admin/").status_code == 200


def test_messages_in_session_storage(client, db_alias, settings):
    settings.MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"
    client.get("/messages/add/", {"text": "saved!"})
    assert Session.objects.count() == 1
    assert client.get("/messages/").json() == {"messages": ["saved!"]}
    assert client.get("/messages/").json() == {"messages": []}


def test_csrf_token_kept_in_the_session(db_alias, settings):
    settings.CSRF_USE_SESSIONS = True
    client = Client(enforce_csrf_checks=True)
    token = client.get("/csrf/").content.decode()
    assert "csrftoken" not in client.cookies
    assert Session.objects.count() == 1
    rejected = Client(enforce_csrf_checks=True)
    rejected.cookies[COOKIE] = token_of(client)
    assert rejected.post("/write/", {}).status_code == 403
    response = client.post(
        "/accounts/login/",
        {"csrfmiddlewaretoken": token, "username": "x", "password": "y"},
    )
    assert response.status_code == 200  # CSRF passed; the form rejected the login
