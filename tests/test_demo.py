"""The demo project (testproject/): its pages, through Django's test client.

The demo's app, URLs, templates and settings are loaded over the test
settings, on SQLite as ``scripts/demo`` runs it.
"""

import importlib
import re
import sys
from pathlib import Path

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.contrib.staticfiles import finders
from django.core.management import call_command
from django.test.utils import modify_settings, override_settings

from scs_django import tokens
from scs_django.models import Session
from tests.utils import START

TESTPROJECT = Path(__file__).resolve().parent.parent / "testproject"
if str(TESTPROJECT) not in sys.path:
    sys.path.insert(0, str(TESTPROJECT))

demo_settings = importlib.import_module("testproject.settings")

pytestmark = [
    pytest.mark.django_db(databases="__all__"),
    pytest.mark.db_aliases("sqlite"),
]


@pytest.fixture(autouse=True)
def demo(db_alias):
    """The demo's app, URLs, templates and session settings."""
    with (
        modify_settings(INSTALLED_APPS={"append": "demo"}),
        override_settings(
            ROOT_URLCONF="testproject.urls",
            TEMPLATES=demo_settings.TEMPLATES,
            SCS=demo_settings.SCS,
            SESSION_ENGINE=demo_settings.SESSION_ENGINE,
            LOGIN_URL=demo_settings.LOGIN_URL,
            LOGIN_REDIRECT_URL=demo_settings.LOGIN_REDIRECT_URL,
            LOGOUT_REDIRECT_URL=demo_settings.LOGOUT_REDIRECT_URL,
        ),
    ):
        yield


@pytest.fixture
def alice(user_factory):
    user = user_factory(username="alice")
    user.set_password("alice")
    user.save()
    return user


def text_of(response, element_id):
    """The text inside the element with ``element_id`` (no nested tags)."""
    match = re.search(rf'id="{element_id}"[^>]*>([^<]*)<', response.content.decode())
    assert match, f"no #{element_id} in the page"
    return match.group(1).strip()


def cookie_of(client):
    return client.cookies["sessionid"].value


def is_live(token):
    return Session.objects.filter(key_hash=tokens.hash_token(token)).exists()


def sign_in(client, username, password, user_agent="Mozilla/5.0 Firefox/133.0"):
    return client.post(
        "/accounts/login/",
        {"username": username, "password": password},
        HTTP_USER_AGENT=user_agent,
    )


def test_a_first_visit_gets_no_session_no_cookie_and_no_row(client):
    response = client.get("/")
    assert response.status_code == 200
    assert 'id="no-session"' in response.content.decode()
    assert "sessionid" not in response.cookies
    assert not Session.objects.exists()


def test_the_pages_use_the_demos_own_stylesheet(client):
    page = client.get("/").content.decode()
    assert '<link rel="stylesheet" href="/static/demo/demo.css">' in page
    assert finders.find("demo/demo.css")
    assert finders.find("demo/countdown.js")


def test_the_cart_survives_login_while_the_token_hash_prefix_changes(client, alice):
    client.post("/shop/add/espresso/")
    client.post("/shop/add/espresso/")
    client.post("/shop/add/mug/")
    anonymous = cookie_of(client)
    before = text_of(client.get("/"), "token-prefix")
    assert before == tokens.hash_token(anonymous)[:8]

    response = sign_in(client, "alice", "alice")
    assert response.status_code == 302, response.context["form"].errors
    assert response["Location"] == "/"

    signed_in = cookie_of(client)
    assert signed_in != anonymous
    assert not is_live(anonymous)
    home = client.get("/")
    after = text_of(home, "token-prefix")
    assert after == tokens.hash_token(signed_in)[:8] != before
    assert text_of(home, "renewal-before") == before
    assert text_of(home, "renewal-after") == after
    assert text_of(home, "session-user") == "alice"
    assert text_of(home, "cart-count") == "3"
    assert "came along" in home.content.decode()

    shop = client.get("/shop/").content.decode()
    assert "Espresso beans, 250 g" in shop and "Stoneware mug" in shop
    assert text_of(client.get("/shop/"), "cart-total") == "30.30"


def test_signing_in_without_a_session_says_there_was_none(client, alice):
    sign_in(client, "alice", "alice")
    home = client.get("/")
    assert text_of(home, "renewal-before") == "(no session)"
    assert text_of(home, "renewal-after") == tokens.hash_token(cookie_of(client))[:8]


def test_the_cart_changes_only_by_post(client):
    assert client.get("/shop/add/espresso/").status_code == 405
    assert not Session.objects.exists()
    assert client.post("/shop/add/no-such-thing/").status_code == 404
    client.post("/shop/add/mug/")
    client.post("/shop/add/mug/")
    client.post("/shop/remove/mug/")
    assert text_of(client.get("/"), "cart-count") == "1"
    client.post("/shop/empty/")
    assert text_of(client.get("/"), "cart-count") == "0"


def test_signing_out_deletes_the_session_and_the_cart(client, alice):
    client.post("/shop/add/mug/")
    sign_in(client, "alice", "alice")
    token = cookie_of(client)
    response = client.post("/accounts/logout/", follow=True)
    assert not is_live(token)
    assert not Session.objects.exists()
    page = response.content.decode()
    assert "Signed out." in page
    assert 'id="no-session"' in page


def test_countdowns_start_from_the_idle_and_absolute_deadlines(client):
    with time_machine.travel(START, tick=False) as clock:
        client.post("/shop/add/mug/")
        clock.shift(45)  # past TOUCH_INTERVAL: this visit moves the idle deadline
        home = client.get("/").content.decode()
    idle = re.search(r'id="idle-countdown"[^>]*data-seconds="(\d+)"', home)
    absolute = re.search(r'id="absolute-countdown"[^>]*data-seconds="(\d+)"', home)
    assert idle and absolute
    assert int(idle.group(1)) == demo_settings.SCS["IDLE_TIMEOUT"]
    assert int(absolute.group(1)) == demo_settings.SCS["ABSOLUTE_TIMEOUT"] - 45


def test_the_home_page_shows_the_sealed_row_with_ip_and_user_agent(client, alice):
    client.post("/shop/add/espresso/")
    sign_in(client, "alice", "alice", user_agent="DemoBrowser/1.0")
    page = client.get("/")
    row = Session.objects.get(key_hash=tokens.hash_token(cookie_of(client)))
    assert row.user_id == alice.pk
    assert row.ip == "127.0.0.0"  # truncated: SCS["IP_FULL"] is off
    assert row.user_agent == "DemoBrowser/1.0"
    shown = text_of(page, "sealed-data")
    assert shown == bytes(row.data)[:20].hex(" ") + " …"
    assert "sealed with AES-GCM" in page.content.decode()
    assert b"espresso" not in bytes(row.data)


def test_the_login_page_names_both_seeded_users_and_who_may_open_the_admin(client):
    page = client.get("/accounts/login/").content.decode()
    table = page[page.index('id="demo-users"') :]
    assert "<code>demo</code>" in table and "<code>alice</code>" in table
    assert "staff and superuser" in table
    assert 'href="/admin/"' in page


def test_the_devices_page_is_mounted_with_ip_and_user_agent_recording_on(client, alice):
    firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
    sign_in(client, "alice", "alice", user_agent=firefox)
    home = client.get("/")
    link = re.search(r'href="([^"]+)" id="devices-link"', home.content.decode())
    assert link and link.group(1) == "/account/sessions/"
    devices = client.get(link.group(1))
    assert devices.status_code == 200
    page = devices.content.decode()
    row = re.search(r'<tr id="scs-session-(\w+)"[^>]*data-current="true"', page)
    assert row and row.group(1) == text_of(home, "token-prefix")
    assert "Firefox" in page  # the user agent was recorded
    # In the demo's frame, with the one heading of scs_django's template.
    assert 'href="/static/demo/demo.css"' in page and 'id="session-strip"' in page
    assert page.count("<h1") == 1


def test_signed_in_pages_carry_the_expiry_warning_and_anonymous_ones_do_not(
    client, alice
):
    client.post("/shop/add/mug/")
    assert 'id="scs-expiry-warning"' not in client.get("/").content.decode()
    sign_in(client, "alice", "alice")
    for url in ("/", "/shop/", "/account/sessions/"):
        page = client.get(url).content.decode()
        warning = re.search(r'<div id="scs-expiry-warning"[^>]*>', page)
        assert warning, url
        assert 'data-warn-before="120"' in warning.group(0)
        assert "/static/scs_django/expiry.js" in page


def test_the_seeded_demo_user_may_open_the_admin(client):
    call_command("seed_demo", verbosity=0)
    client.post("/accounts/login/", {"username": "demo", "password": "demo"})
    assert client.get("/admin/").status_code == 200


def test_seeding_twice_keeps_the_users_and_reset_restores_passwords():
    call_command("seed_demo", verbosity=0)
    users = get_user_model().objects
    demo_user, alice = users.get(username="demo"), users.get(username="alice")
    assert demo_user.is_superuser and demo_user.is_staff
    assert not alice.is_staff and not alice.is_superuser
    alice.set_password("changed")
    alice.save()

    call_command("seed_demo", verbosity=0)
    assert users.count() == 2
    assert users.get(username="alice").check_password("changed")

    call_command("seed_demo", "--reset", verbosity=0)
    assert users.get(username="alice").check_password("alice")
