"""A store that fails: 503 (or anonymous when failing open), never a cookie change."""

from unittest import mock

import pytest
from django.conf import settings as django_settings
from django.db import OperationalError

from scs_django.backends.db import SessionStore
from tests.utils import start_session

pytestmark = pytest.mark.django_db(databases="__all__")

COOKIE = django_settings.SESSION_COOKIE_NAME


def broken(*args, **kwargs):
    raise OperationalError("server closed the connection unexpectedly")


@pytest.fixture
def session_token(client, db_alias):
    return start_session(client, "kept")


@pytest.mark.parametrize(
    "method, path",
    [
        ("_fetch", "/read/"),
        ("_fetch", "/write/"),
        ("_update", "/write/"),
        ("_update", "/renew/"),
    ],
)
def test_store_down_answers_503_and_leaves_the_cookie(
    client, session_token, method, path
):
    with mock.patch.object(SessionStore, method, broken):
        response = client.get(path)
    assert response.status_code == 503
    assert response["Retry-After"]
    assert COOKIE not in response.cookies
    # Once the store is back, the same cookie still works.
    assert client.cookies[COOKIE].value == session_token
    assert client.get("/read/").json()["value"] == "kept"


def test_store_down_at_create_answers_503(client, db_alias):
    with mock.patch.object(SessionStore, "_insert", broken):
        response = client.get("/write/")
    assert response.status_code == 503
    assert COOKIE not in response.cookies


def test_fail_open_serves_an_anonymous_request_without_touching_the_cookie(
    client, session_token, settings
):
    settings.SCS = {"FAIL_OPEN": True}
    with mock.patch.object(SessionStore, "_fetch", broken):
        read = client.get("/read/")
        write = client.get("/write/", {"value": "lost"})
    assert read.status_code == 200
    assert read.json()["value"] is None
    assert write.status_code == 200
    assert COOKIE not in read.cookies and COOKIE not in write.cookies
    assert client.get("/read/").json()["value"] == "kept"
