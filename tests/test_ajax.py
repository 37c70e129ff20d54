"""The JSON 401 (scs_django/ajax.py): a request that asked for JSON and is
redirected to the login page gets a 401 it can act on, end to end through the
middleware."""

from __future__ import annotations

import pytest
from django.conf import settings as django_settings

from tests.utils import logged_in, token_of

pytestmark = [
    pytest.mark.urls("tests.devices_urls"),
    pytest.mark.django_db(databases="__all__"),
]

JSON = {"Accept": "application/json"}
LOGIN = "/accounts/login/?next=/protected/"


def end(engine, client):
    """End the client's session elsewhere (a logout in another request)."""
    engine.store_class(token_of(client)).delete()


def test_a_json_request_whose_session_ended_gets_a_401(engine, user_factory):
    user = user_factory()
    client = logged_in(user)
    assert client.get("/protected/", headers=JSON).json() == {"user": user.pk}
    end(engine, client)
    response = client.get("/protected/", headers=JSON)
    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"authenticated": False, "login_url": LOGIN}
    assert "no-store" in response["Cache-Control"]
    assert "Accept" in response["Vary"]
    # The browser is told to forget the ended session's cookie, as on a redirect.
    assert response.cookies[django_settings.SESSION_COOKIE_NAME].value == ""


@pytest.mark.parametrize("engine", ["db-postgresql", "cache-redis"], indirect=True)
def test_an_html_request_whose_session_ended_is_redirected(engine, user_factory):
    user = user_factory()
    client = logged_in(user)
    end(engine, client)
    for headers in (
        {},
        {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"},
        {"Accept": "*/*"},
        {"Accept": "text/html, application/json;q=0.5"},
        {"Accept": "application/json;q=0"},
    ):
        response = client.get("/protected/", headers=headers)
        assert response.status_code == 302, headers
        assert response["Location"] == LOGIN
        assert "Accept" in response["Vary"]


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Requested-With": "XMLHttpRequest"},
        {"Accept": "application/json, text/plain, */*"},
        {"Accept": "text/html;q=0.5, application/json"},
    ],
)
def test_a_script_that_says_so_gets_the_401(db, client, headers):
    response = client.get("/protected/", headers=headers)
    assert response.status_code == 401
    assert response.json()["login_url"] == LOGIN


def test_a_redirect_elsewhere_is_untouched(db, client):
    response = client.get("/elsewhere/", headers=JSON)
    assert response.status_code == 302
    assert response["Location"] == "/protected/"
    assert not response.has_header("Vary") or "Accept" not in response["Vary"]


def test_a_login_url_on_another_host_matches_by_host(db, client, settings):
    settings.LOGIN_URL = "https://sso.example.com/accounts/login/"
    response = client.get("/protected/", headers=JSON)
    assert response.status_code == 401
    assert response.json()["login_url"].startswith("https://sso.example.com/")


def test_a_login_url_given_by_name_is_resolved(db, client, settings):
    settings.LOGIN_URL = "scs_django:devices"  # any named URL will do
    response = client.get("/protected/", headers=JSON)
    assert response.status_code == 401
    assert response.json()["login_url"].startswith("/account/sessions/?next=")
