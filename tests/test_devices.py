"""The "your devices" pages (scs_django.urls), on every engine of tests/engines.py.

What a test expects of the store it reads from the store itself
(``engine.stored``), not from the page.
"""

from __future__ import annotations

import re

import pytest
from asgiref.sync import async_to_sync
from django.test import AsyncClient, Client

from scs_django import devices, views
from tests.utils import PASSWORD, hash_of, logged_in

pytestmark = [
    pytest.mark.urls("tests.devices_urls"),
    pytest.mark.django_db(databases="__all__"),
]

DEVICES = "/account/sessions/"
OTHERS = f"{DEVICES}sign-out-others/"
FIREFOX_ON_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"
)
SAFARI_ON_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
ROW = re.compile(
    r'<tr id="scs-session-([0-9a-f]{8})" data-session="\1"( data-current="true")?'
)


def sign_out_url(prefix: str) -> str:
    return f"{DEVICES}{prefix}/sign-out/"


def prefix_of(client: Client) -> str:
    return hash_of(client)[:8]


def rows(response) -> dict[str, bool]:
    """The sessions the page lists: hash prefix -> "this device"."""
    return {prefix: bool(current) for prefix, current in ROW.findall(text(response))}


def text(response) -> str:
    return response.content.decode()


def listable(engine) -> bool:
    # A cache engine not on Redis keeps no index of a user's sessions.
    return engine.id != "cache-locmem"


def messages_of(client: Client) -> list[str]:
    return re.findall(r"<li>(.*?)</li>", text(client.get(DEVICES)))


def test_the_list_shows_only_the_users_own_sessions_and_marks_this_one(
    engine, user_factory
):
    alice, bob = user_factory(), user_factory()
    here, there, bobs = logged_in(alice), logged_in(alice), logged_in(bob)
    response = here.get(DEVICES)
    assert response.status_code == 200
    if not listable(engine):
        assert 'id="scs-devices-unavailable"' in text(response)
        assert rows(response) == {}
        return
    assert rows(response) == {prefix_of(here): True, prefix_of(there): False}
    assert prefix_of(bobs) not in text(response)
    assert hash_of(here) not in text(response)  # never a full hash
    assert rows(bobs.get(DEVICES)) == {prefix_of(bobs): True}


def test_signing_out_a_session_asks_first_and_only_a_post_ends_it(engine, user_factory):
    alice = user_factory()
    here, there = logged_in(alice), logged_in(alice)
    before = engine.stored.hashes()
    if not listable(engine):
        # No list to find the session in: no page for it, nothing ends.
        assert here.get(sign_out_url(prefix_of(there))).status_code == 404
        assert here.post(sign_out_url(prefix_of(there))).status_code == 404
        assert engine.stored.hashes() == before
        return
    confirm = here.get(sign_out_url(prefix_of(there)))
    assert confirm.status_code == 200
    assert 'id="scs-confirm-sign-out"' in text(confirm)
    assert 'name="csrfmiddlewaretoken"' in text(confirm)
    assert engine.stored.hashes() == before  # GET changed nothing

    response = here.post(sign_out_url(prefix_of(there)))
    assert response.status_code == 302
    assert response["Location"] == DEVICES
    assert engine.stored.get(hash_of(there)) is None
    assert engine.stored.get(hash_of(here)) is not None
    assert messages_of(here) == [f"Signed out the session {prefix_of(there)}."]
    assert rows(here.get(DEVICES)) == {prefix_of(here): True}
    # The signed-out browser is signed out on its next request.
    assert there.get(DEVICES).status_code == 302


def test_signing_out_everywhere_else_asks_first_and_keeps_this_session(
    engine, user_factory
):
    alice, bob = user_factory(), user_factory()
    here, others, bobs = (
        logged_in(alice),
        [logged_in(alice) for _ in range(2)],
        (logged_in(bob)),
    )
    before = engine.stored.hashes()
    confirm = here.get(OTHERS)
    assert confirm.status_code == 200
    assert engine.stored.hashes() == before
    if not listable(engine):
        assert 'id="scs-devices-unavailable"' in text(confirm)
        assert here.post(OTHERS).status_code == 200
        assert engine.stored.hashes() == before
        return
    assert 'id="scs-confirm-sign-out-others"' in text(confirm)
    assert "You are signed in on 2 other devices." in text(confirm)

    response = here.post(OTHERS)
    assert response.status_code == 302
    assert response["Location"] == DEVICES
    assert [engine.stored.get(hash_of(c)) for c in others] == [None, None]
    assert engine.stored.get(hash_of(here)) is not None
    assert engine.stored.get(hash_of(bobs)) is not None
    assert messages_of(here) == ["Signed out 2 other sessions."]
    assert 'id="scs-no-other-devices"' in text(here.get(OTHERS))


@pytest.mark.parametrize("method", ["get", "post"])
def test_another_users_session_this_one_and_unknown_ones_are_not_found(
    engine, user_factory, method
):
    alice, bob = user_factory(), user_factory()
    here, bobs = logged_in(alice), logged_in(bob)
    before = engine.stored.hashes()
    for prefix in (prefix_of(bobs), prefix_of(here), "0123abcd"):
        response = getattr(here, method)(sign_out_url(prefix))
        assert response.status_code == 404, prefix
    assert engine.stored.hashes() == before
    # Not a hash prefix at all: no such page.
    assert getattr(here, method)(sign_out_url("ZZZZZZZZ")).status_code == 404


@pytest.mark.parametrize(
    "engine", ["db-postgresql", "cache-redis", "cache-locmem"], indirect=True
)
def test_other_methods_change_nothing(engine, user_factory):
    alice = user_factory()
    here, there = logged_in(alice), logged_in(alice)
    before = engine.stored.hashes()
    for url in (sign_out_url(prefix_of(there)), OTHERS):
        for method in ("put", "delete", "patch"):
            assert getattr(here, method)(url).status_code == 405
    assert here.post(DEVICES).status_code == 405
    assert engine.stored.hashes() == before


@pytest.mark.parametrize("engine", ["db-postgresql", "cache-redis"], indirect=True)
def test_a_post_without_the_csrf_token_changes_nothing(engine, user_factory):
    alice = user_factory()
    here = Client(enforce_csrf_checks=True)
    here.force_login(alice)
    there = logged_in(alice)
    before = engine.stored.hashes()
    assert here.post(sign_out_url(prefix_of(there))).status_code == 403
    assert here.post(OTHERS).status_code == 403
    assert engine.stored.hashes() == before


def test_the_pages_need_a_signed_in_user(engine, client):
    for url in (DEVICES, OTHERS, sign_out_url("0123abcd")):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/?next=")
        as_json = client.get(url, headers={"Accept": "application/json"})
        assert as_json.status_code == 401
        assert as_json.json()["authenticated"] is False


@pytest.mark.parametrize(
    "engine", ["db-postgresql", "cache-redis", "cached_db-redis"], indirect=True
)
def test_the_list_names_the_browser_and_the_network_when_recorded(
    engine, settings, user_factory
):
    settings.SCS = {"RECORD_IP": True, "RECORD_USER_AGENT": True}
    alice = user_factory()
    phone, laptop = Client(), Client()
    for browser, agent, address in (
        (phone, SAFARI_ON_IPHONE, "198.51.100.23"),
        (laptop, FIREFOX_ON_WINDOWS, "2001:db8:1:2:3:4:5:6"),
    ):
        response = browser.post(
            "/accounts/login/",
            {"username": alice.username, "password": PASSWORD},
            HTTP_USER_AGENT=agent,
            REMOTE_ADDR=address,
        )
        assert response.status_code == 302
    page = text(laptop.get(DEVICES))
    assert "Safari on iOS" in page
    assert "198.51.100.x" in page
    assert "Firefox on Windows" in page
    assert "2001:db8:1:2::/64" in page
    assert "198.51.100.23" not in page


@pytest.mark.parametrize("engine", ["db-postgresql", "cache-redis"], indirect=True)
def test_nothing_recorded_shows_nothing(engine, user_factory):
    alice = user_factory()
    page = text(logged_in(alice).get(DEVICES))
    assert "Unknown browser" not in page
    # Browser, network, and no action for this device, the only row.
    assert page.count("<td>—</td>") == 3


def test_the_pages_are_async_views_where_the_engine_lists_with_a_coroutine(
    engine,
):
    assert views.engine_is_async() is (engine.kind in ("db", "cached_db"))


@pytest.mark.parametrize("run_as", ["async", "sync"])
def test_the_async_and_the_sync_run_of_the_pages_agree(
    engine, user_factory, monkeypatch, run_as
):
    monkeypatch.setattr(views, "engine_is_async", lambda: run_as == "async")
    alice = user_factory()
    here, there = logged_in(alice), logged_in(alice)
    if listable(engine):
        assert rows(here.get(DEVICES)) == {
            prefix_of(here): True,
            prefix_of(there): False,
        }
        assert here.post(sign_out_url(prefix_of(there))).status_code == 302
        assert engine.stored.get(hash_of(there)) is None
    else:
        assert 'id="scs-devices-unavailable"' in text(here.get(DEVICES))


def test_the_pages_under_an_async_client(engine, user_factory):
    alice = user_factory()
    there = logged_in(alice)

    async def scenario():
        here = AsyncClient()
        await here.aforce_login(alice)
        listed = await here.get(DEVICES)
        confirm = await here.get(OTHERS)
        done = await here.post(OTHERS)
        return listed, confirm, done

    listed, confirm, done = async_to_sync(scenario)()
    assert listed.status_code == confirm.status_code == 200
    if listable(engine):
        assert rows(listed) == {
            prefix: prefix != prefix_of(there) for prefix in rows(listed)
        }
        assert prefix_of(there) in rows(listed)
        assert done.status_code == 302
        assert engine.stored.get(hash_of(there)) is None
    else:
        assert 'id="scs-devices-unavailable"' in text(listed)
        assert engine.stored.get(hash_of(there)) is not None


def test_the_sealed_cookie_engine_says_it_cannot_list(settings, db, user_factory):
    settings.SESSION_ENGINE = "scs_django.backends.cookie"
    alice = user_factory()
    here = logged_in(alice)
    page = here.get(DEVICES)
    assert page.status_code == 200
    assert 'id="scs-devices-unavailable"' in text(page)
    assert here.get(OTHERS).status_code == 200
    assert here.post(OTHERS).status_code == 200
    assert here.post(sign_out_url("0123abcd")).status_code == 404
    assert here.get(DEVICES).status_code == 200  # still signed in


def test_the_base_template_is_the_sites_choice(settings, db, user_factory, tmp_path):
    (tmp_path / "site.html").write_text(
        "<html><body class=site>{% block content %}{% endblock %}</body></html>"
    )
    settings.TEMPLATES = [
        {**settings.TEMPLATES[0], "DIRS": [tmp_path, *settings.TEMPLATES[0]["DIRS"]]}
    ]
    settings.SCS = {"DEVICES_BASE_TEMPLATE": "site.html"}
    page = text(logged_in(user_factory()).get(DEVICES))
    assert "<body class=site>" in page
    assert 'id="scs-devices-table"' in page


@pytest.mark.parametrize(
    ("agent", "name"),
    [
        (FIREFOX_ON_WINDOWS, "Firefox on Windows"),
        (SAFARI_ON_IPHONE, "Safari on iOS"),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 "
            "(KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0",
            "Edge on macOS",
        ),
        (
            "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 "
            "(KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36",
            "Chrome on Android",
        ),
        (
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/126.0.0.0 Safari/537.36 OPR/111.0.0.0",
            "Opera on Linux",
        ),
        (
            "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 "
            "(KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
            "Chrome on ChromeOS",
        ),
        ("curl/8.5.0", "curl"),
        ("Googlebot/2.1 (+http://www.google.com/bot.html)", "Automated client"),
        ("Something/1.0 (X11)", "Unknown browser"),
        ("", ""),
    ],
)
def test_user_agents_are_named_by_browser_and_system(agent, name):
    assert devices.describe_agent(agent) == name


@pytest.mark.parametrize(
    ("ip", "shown"),
    [
        ("203.0.113.0", "203.0.113.x"),
        ("203.0.113.77", "203.0.113.x"),  # SCS["IP_FULL"]: still only the network
        ("2001:db8:1:2::", "2001:db8:1:2::/64"),
        (None, ""),
        ("not an address", ""),
    ],
)
def test_addresses_are_shown_as_their_network(ip, shown):
    assert devices.describe_address(ip) == shown


@pytest.mark.parametrize("engine", ["db-postgresql"], indirect=True)
def test_the_pages_work_without_the_messages_framework(engine, settings, user_factory):
    settings.MIDDLEWARE = [
        m for m in settings.MIDDLEWARE if not m.startswith("django.contrib.messages")
    ]
    alice = user_factory()
    here, there = logged_in(alice), logged_in(alice)
    assert here.post(sign_out_url(prefix_of(there))).status_code == 302
    assert here.post(OTHERS).status_code == 302
    assert engine.stored.get(hash_of(there)) is None
    assert rows(here.get(DEVICES)) == {prefix_of(here): True}
