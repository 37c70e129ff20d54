"""Session fixation, login and logout, over WSGI and ASGI.

Complements tests/test_auth.py (which drives the WSGI test client): here each
browser is just the token it holds, so a planted token, a replayed one and
the victim's are told apart explicitly. On every engine.
"""

import pytest

from scs_django import tokens
from tests.factories import PASSWORD
from tests.security.transport import session_cookie
from tests.utils import cookie, issued_token, log_in, read

pytestmark = pytest.mark.django_db(databases="__all__")


def test_planted_token_is_dead_after_the_victim_logs_in(
    transport, engine, user_factory, stored
):
    victim = user_factory()
    # The attacker gets a real token of their own and plants it in the
    # victim's browser; the victim fills a cart and then logs in.
    planted = issued_token(transport.get("/write/", query={"value": "cart"}))
    victims = log_in(transport, victim, planted)
    assert victims != planted
    assert stored(planted) is None
    assert read(transport, planted) == {"value": None, "user": None}
    # The pre-login cart carries over to the victim's new session.
    assert read(transport, victims) == {"value": "cart", "user": str(victim.pk)}
    assert engine.stored.hashes() == {tokens.hash_token(victims)}


def test_planted_token_dies_even_without_renewal_on_every_login(
    transport, engine, user_factory, settings
):
    settings.SCS = {"RENEW_ON_LOGIN": False}  # Django's own cycle_key() still runs
    victim = user_factory()
    planted = issued_token(transport.get("/write/"))
    victims = log_in(transport, victim, planted)
    assert victims != planted
    assert read(transport, planted)["user"] is None


def test_invented_token_is_never_adopted_at_login(
    transport, engine, user_factory, stored
):
    victim = user_factory()
    invented = tokens.new_token()  # well-formed, never stored
    victims = log_in(transport, victim, invented)
    assert victims != invented
    assert stored(invented) is None
    assert read(transport, invented)["user"] is None
    assert read(transport, victims)["user"] == str(victim.pk)


def test_another_user_logging_in_on_top_gets_a_flushed_session(
    transport, engine, user_factory
):
    alice, bob = user_factory(), user_factory()
    alices = log_in(transport, alice)
    transport.get("/write/", cookie=cookie(alices), query={"value": "alice's secret"})
    bobs = log_in(transport, bob, alices)
    assert bobs != alices
    assert read(transport, bobs) == {"value": None, "user": str(bob.pk)}
    assert read(transport, alices) == {"value": None, "user": None}
    assert engine.stored.hashes() == {tokens.hash_token(bobs)}
    assert str(engine.stored.get(tokens.hash_token(bobs))["user_id"]) == str(bob.pk)


def test_same_user_logging_in_again_gets_a_new_token(
    transport, engine, user_factory, stored
):
    user = user_factory()
    first = log_in(transport, user)
    transport.get("/write/", cookie=cookie(first), query={"value": "kept"})
    second = log_in(transport, user, first)
    assert second != first
    assert stored(first) is None
    assert read(transport, second) == {"value": "kept", "user": str(user.pk)}
    assert read(transport, first)["user"] is None


@pytest.mark.parametrize("secure_setting, https", [(True, False), (False, True)])
def test_logout_ends_the_row_and_deletes_the_cookie_with_its_attributes(
    transport, engine, user_factory, settings, secure_setting, https
):
    settings.SESSION_COOKIE_DOMAIN = "example.com"
    settings.SESSION_COOKIE_PATH = "/app/"
    settings.SESSION_COOKIE_SAMESITE = "Strict"
    settings.SESSION_COOKIE_SECURE = secure_setting
    user = user_factory()
    response = transport.post(
        "/accounts/login/",
        form={"username": user.username, "password": PASSWORD},
        secure=https,
    )
    issued = session_cookie(response)
    token = issued.value
    response = transport.post("/accounts/logout/", cookie=cookie(token), secure=https)
    deleted = session_cookie(response)
    assert deleted.value == ""
    assert deleted["max-age"] == 0
    assert "1970" in deleted["expires"]
    for attribute in ("domain", "path", "samesite", "secure", "httponly"):
        assert deleted[attribute] == issued[attribute], attribute
    assert (deleted["domain"], deleted["path"]) == ("example.com", "/app/")
    assert deleted["samesite"] == "Strict" and deleted["secure"] is True
    assert engine.stored.hashes() == set()


def test_replaying_a_logged_out_token_never_resurrects_it(
    transport, engine, user_factory, stored
):
    user = user_factory()
    token = log_in(transport, user)
    transport.post("/accounts/logout/", cookie=cookie(token))
    assert engine.stored.hashes() == set()
    # A tab still holding the old cookie reads nothing and, writing, is given
    # a new anonymous session under a new token.
    assert read(transport, token) == {"value": None, "user": None}
    fresh = issued_token(transport.get("/write/", cookie=cookie(token)))
    assert fresh != token
    assert stored(token) is None
    assert read(transport, fresh)["user"] is None


def test_anonymous_logout_with_an_unknown_token_only_clears_it(transport, engine):
    response = transport.post("/accounts/logout/", cookie=cookie(tokens.new_token()))
    assert response.status_code == 200
    cleared = session_cookie(response)
    assert (cleared.value, cleared["max-age"]) == ("", 0)
    assert engine.stored.hashes() == set()
