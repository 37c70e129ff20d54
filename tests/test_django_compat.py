"""The engine where Django users put it: RequestFactory unit tests, and behind
Django's own SessionMiddleware during a migration (issue 8, item 6), on every
engine."""

import logging

import pytest
from django.conf import settings as django_settings
from django.http import HttpResponse, JsonResponse
from django.test import RequestFactory

from scs_django import tokens
from scs_django.middleware import SessionMiddleware
from tests.factories import PASSWORD
from tests.utils import client_with, post_login, user_of

pytestmark = pytest.mark.django_db(databases="__all__")

COOKIE = django_settings.SESSION_COOKIE_NAME
OURS = "scs_django.middleware.SessionMiddleware"
DJANGOS = "django.contrib.sessions.middleware.SessionMiddleware"


@pytest.fixture
def security_log(caplog):
    caplog.set_level(logging.INFO, logger="scs_django.security")
    return lambda: [r for r in caplog.records if r.name == "scs_django.security"]


def read_view(request):
    return JsonResponse({"value": request.session.get("value")})


# -- a cookie put into request.COOKIES by hand ----------------------------------------

# The cookies in the factory's own jar, which RequestFactory puts in HTTP_COOKIE.
JARS = {
    "no-other-cookie": {},  # HTTP_COOKIE is "" then
    "other-cookies": {"csrftoken": "a" * 32, "theme": "dark"},
    # Names that contain the session cookie's name but are other cookies.
    "similar-names": {f"old_{COOKIE}": "x", f"{COOKIE}_hint": "1"},
}


def factory_request(jar, token):
    factory = RequestFactory()
    for name, value in jar.items():
        factory.cookies[name] = value
    request = factory.get("/read/")
    request.COOKIES[COOKIE] = token
    return request


@pytest.mark.parametrize("jar", list(JARS))
def test_request_factory_cookie_set_by_hand_loads_the_session(
    engine, live_token, jar, security_log
):
    request = factory_request(JARS[jar], live_token)
    response = SessionMiddleware(read_view)(request)
    assert response.status_code == 200
    assert response.content == b'{"value": "secret"}'
    assert request.session.session_key == live_token
    assert not response.cookies  # read only: nothing to send
    assert security_log() == []


def test_request_factory_cookie_with_process_request_only(engine, live_token):
    # The other way unit tests set a session up: run process_request() by hand.
    request = factory_request(JARS["other-cookies"], live_token)
    SessionMiddleware(lambda request: HttpResponse()).process_request(request)
    assert request.session["value"] == "secret"
    request.session["value"] = "changed by a unit test"
    request.session.save()
    assert engine.store_class(live_token)["value"] == "changed by a unit test"


# A header that really holds the session cookie more than once, or quoted: the
# browser's cookie jar is ambiguous (cookie tossing), so it is no session.
TWICE = {
    "two-tokens": lambda live, other: f"{COOKIE}={other}; {COOKIE}={live}",
    "same-token-twice": lambda live, other: f"{COOKIE}={live}; {COOKIE}={live}",
    "among-others": lambda live, other: (
        f"theme=dark; {COOKIE}={other}; csrftoken=x; {COOKIE}={live}"
    ),
    "quoted": lambda live, other: f'{COOKIE}="{live}"',
}


@pytest.mark.parametrize("case", list(TWICE))
def test_session_cookie_sent_twice_in_the_header_is_still_no_session(
    engine, live_token, case, security_log
):
    header = TWICE[case](live_token, tokens.new_token())
    request = RequestFactory().get("/read/", HTTP_COOKIE=header)
    assert request.COOKIES[COOKIE] == live_token  # what Django's parser keeps
    with engine.no_traffic():
        response = SessionMiddleware(read_view)(request)
    assert response.content == b'{"value": null}'
    assert not response.cookies  # a malformed cookie is left alone
    assert [r.getMessage() for r in security_log()] == [
        "Ignored a malformed session cookie (43 characters)."
    ]


def test_cookie_set_by_hand_does_not_bypass_a_duplicate_in_the_header(
    engine, live_token, security_log
):
    request = RequestFactory().get(
        "/read/", HTTP_COOKIE=f"{COOKIE}={live_token}; {COOKIE}={live_token}"
    )
    request.COOKIES[COOKIE] = live_token
    with engine.no_traffic():
        response = SessionMiddleware(read_view)(request)
    assert response.content == b'{"value": null}'
    assert len(security_log()) == 1


# -- behind Django's own SessionMiddleware ---------------------------------------------


@pytest.fixture
def djangos_middleware(settings, engine):
    """Django's SessionMiddleware in our middleware's slot, our engine behind it."""
    assert OURS in settings.MIDDLEWARE
    settings.MIDDLEWARE = [DJANGOS if m == OURS else m for m in settings.MIDDLEWARE]
    return engine


def logged_in_as(token):
    return user_of(client_with(token))


def test_login_behind_djangos_middleware(djangos_middleware, client, user_factory):
    user = user_factory()
    client.get("/write/", {"value": "cart"})
    anonymous = client.cookies[COOKIE].value
    response = post_login(client, user)
    assert response.status_code == 302
    token = response.cookies[COOKIE].value
    assert token != anonymous
    assert client.get("/read/").json() == {"value": "cart", "user": str(user.pk)}
    assert logged_in_as(anonymous) is None


@pytest.mark.parametrize("revoke", [True, False])
def test_password_change_behind_djangos_middleware_keeps_the_user_logged_in(
    djangos_middleware, client, user_factory, settings, revoke, request
):
    if revoke and djangos_middleware.id != "cache-locmem":  # LocMem cannot revoke
        request.applymarker(
            pytest.mark.xfail(
                strict=True,
                reason="REVOKE_ON_PASSWORD_CHANGE keeps the session of the "
                "request making the change only when our middleware recorded "
                "the request (scs_django.context): behind Django's middleware "
                "it ends this session too, before update_session_auth_hash() "
                "can renew it",
            )
        )
    settings.SCS = {"REVOKE_ON_PASSWORD_CHANGE": revoke}
    user = user_factory()
    assert post_login(client, user).status_code == 302
    before = client.cookies[COOKIE].value
    response = client.post(
        "/accounts/password_change/",
        {
            "old_password": PASSWORD,
            "new_password1": "a new Passw0rd!",
            "new_password2": "a new Passw0rd!",
        },
    )
    assert response.status_code == 302, response.content
    after = response.cookies[COOKIE].value
    assert tokens.is_well_formed(after) and after != before
    assert client.get("/read/").json()["user"] == str(user.pk)
    assert logged_in_as(before) is None


def test_admin_changing_another_users_password_stays_logged_in(
    djangos_middleware, client, user_factory
):
    # update_session_auth_hash() only cycles the admin's key here (the user
    # changed is another): the new token is all Django's middleware can send.
    admin = user_factory(is_staff=True, is_superuser=True)
    other = user_factory()
    assert post_login(client, admin).status_code == 302
    before = client.cookies[COOKIE].value
    response = client.post(
        f"/admin/auth/user/{other.pk}/password/",
        {
            "password1": "a new Passw0rd!",
            "password2": "a new Passw0rd!",
            "usable_password": "true",
        },
    )
    assert response.status_code == 302, response.content
    other.refresh_from_db()
    assert other.check_password("a new Passw0rd!")
    after = response.cookies[COOKIE].value
    assert tokens.is_well_formed(after) and after != before
    assert client.get("/read/").json()["user"] == str(admin.pk)
    assert logged_in_as(before) is None


def test_cycle_key_behind_djangos_middleware_sends_the_new_token_in_one_write(
    djangos_middleware, client, live_token
):
    engine = djangos_middleware
    # What loading and renewing a session costs on this engine, done by hand
    # on another session stored the same way.
    twin = engine.store_class()
    twin["value"] = "secret"
    twin.save()
    by_hand = engine.store_class(twin.session_key)
    with engine.traffic() as expected:
        by_hand["value"]  # noqa: B018 - the load
        by_hand.cycle_key()
    client.cookies[COOKIE] = live_token
    with engine.traffic() as traffic:
        response = client.get("/cycle-key/")
    # Django's middleware saved after the renewal: that save wrote nothing.
    assert len(traffic.queries) == len(expected.queries), traffic.queries
    assert traffic.redis_round_trips == expected.redis_round_trips
    assert traffic.cache_calls == expected.cache_calls
    if engine.kind == "db":
        writes = [
            q for q in traffic.queries if q["sql"].startswith(("INSERT", "UPDATE"))
        ]
        assert len(writes) == 1, traffic.queries
    new = response.cookies[COOKIE].value
    assert tokens.is_well_formed(new) and new != live_token
    assert client.get("/read/").json()["value"] == "secret"
    client.cookies[COOKIE] = live_token
    assert client.get("/read/").json()["value"] is None


def test_save_after_a_renewal_written_on_the_spot_writes_nothing(engine, live_token):
    # The order Django's middleware works in: cycle_key() in the view (no
    # defer_renewal without our middleware), then modified?, then save().
    session = engine.store_class(live_token)
    session.cycle_key()
    assert session.modified
    with engine.no_traffic():
        session.save()
    assert engine.store_class(session.session_key)["value"] == "secret"
    assert engine.store_class(live_token).get("value") is None


def test_change_after_a_renewal_written_on_the_spot_is_saved(engine, live_token):
    session = engine.store_class(live_token)
    session.cycle_key()
    session["value"] = "after the renewal"
    session.save()
    assert engine.store_class(session.session_key)["value"] == "after the renewal"
