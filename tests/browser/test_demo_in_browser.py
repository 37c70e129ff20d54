"""The demo project in a real browser: Debian's chromium driven by Playwright,
the demo under uvicorn on loopback (tests/browser/conftest.py).

What a person would do: put something in the cart and sign in, and see the
session cookie's value change; sign in from a second browser; on the first,
sign the second out from the "your devices" page; the second is signed out
at its next page. With a 5-second idle timeout, the expiry warning appears
and the page goes to the login page once the session has ended.

``SCS_DOCS_SCREENSHOTS=1`` saves the devices page as docs/_static/devices.png.
"""

from __future__ import annotations

import os
import re
from typing import Any

from playwright.sync_api import expect

from tests.browser.conftest import ROOT, VIEWPORT, for_the_docs

COOKIE = "sessionid"  # the demo keeps Django's SESSION_COOKIE_NAME
# Seeded by the demo's seed_demo command. The devices test has alice to itself,
# so that it knows every session she has; the others sign in as demo.
ALICE = ("alice", "alice")
DEMO = ("demo", "demo")
# Two devices, as the devices page names them from their user agents.
DESKTOP = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
PHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)
DEVICES_PNG = ROOT / "docs" / "_static" / "devices.png"


def session_cookie(context: Any) -> str | None:
    values = [c["value"] for c in context.cookies() if c["name"] == COOKIE]
    return values[0] if values else None


def sign_in(page: Any, url: str, user: tuple[str, str]) -> None:
    page.goto(f"{url}/accounts/login/")
    page.fill("#id_username", user[0])
    page.fill("#id_password", user[1])
    with page.expect_navigation():
        page.click("#login-submit")
    assert page.inner_text("#session-user") == user[0]


def save_for_the_docs(page: Any) -> None:
    """The page down to its footer, as docs/_static/devices.png."""
    footer = page.locator("footer").bounding_box()
    height = footer["y"] + footer["height"] if footer else VIEWPORT["height"]
    clip = {"x": 0, "y": 0, "width": VIEWPORT["width"], "height": height}
    DEVICES_PNG.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=DEVICES_PNG, clip=clip)
    for_the_docs.append(DEVICES_PNG)


def test_signing_in_changes_the_session_cookie(demo, new_context):
    context = new_context(user_agent=DESKTOP)
    page = context.new_page()
    page.goto(f"{demo.url}/shop/")
    assert session_cookie(context) is None  # no session before it holds anything
    with page.expect_navigation():
        page.locator("#products button[id^=add-]").first.click()
    before = session_cookie(context)
    assert before is not None
    prefix_before = page.inner_text("#token-prefix")
    assert page.inner_text("#cart-count") == "1"

    sign_in(page, demo.url, DEMO)

    after = session_cookie(context)
    assert after is not None
    assert after != before
    assert page.inner_text("#token-prefix") != prefix_before
    assert page.inner_text("#cart-count") == "1"  # the cart came along
    # The old token is dead: sent again, it is no session at all.
    context.clear_cookies()
    context.add_cookies([{"name": COOKIE, "value": before, "url": demo.url}])
    page.goto(f"{demo.url}/")
    assert page.locator("#login-link").is_visible()


def test_a_device_signed_out_from_the_devices_page_is_signed_out(demo, new_context):
    first = new_context(user_agent=DESKTOP).new_page()
    sign_in(first, demo.url, ALICE)
    second = new_context(user_agent=PHONE).new_page()
    sign_in(second, demo.url, ALICE)
    second_prefix = second.inner_text("#token-prefix")

    first.goto(f"{demo.url}/account/sessions/")
    rows = first.locator("#scs-devices-table tbody tr")
    assert rows.count() == 2
    assert first.locator("tr[data-current=true]").get_attribute(
        "data-session"
    ) == first.inner_text("#token-prefix")
    other = first.locator(f"#scs-session-{second_prefix}")
    assert other.get_attribute("data-current") is None
    if os.environ.get("SCS_DOCS_SCREENSHOTS"):
        save_for_the_docs(first)

    # A link to a confirmation page, whose form POSTs with the CSRF token.
    with first.expect_navigation():
        first.click(f"#scs-sign-out-{second_prefix}")
    assert first.locator("#scs-sign-out-page").is_visible()
    with first.expect_navigation():
        first.click("#scs-confirm-sign-out")
    assert re.search(r"/account/sessions/$", first.url)
    assert first.locator(f"#scs-session-{second_prefix}").count() == 0
    assert rows.count() == 1
    assert first.inner_text("#session-user") == "alice"  # this one stays signed in

    second.goto(f"{demo.url}/shop/")
    assert second.locator("#login-link").is_visible()
    assert second.locator("#devices-link").count() == 0
    second.goto(f"{demo.url}/account/sessions/")
    assert "/accounts/login/" in second.url


def test_idle_timeout_warns_then_goes_to_the_login_page(short_idle_demo, new_context):
    page = new_context(user_agent=DESKTOP).new_page()
    sign_in(page, short_idle_demo.url, DEMO)
    signed_in_at = page.url

    expect(page.locator("#scs-expiry-warning")).to_be_visible(timeout=6_000)
    expect(page.locator("#scs-stay-signed-in")).to_be_visible()
    expect(page.locator("#scs-expiry-message")).not_to_be_empty()

    # No input from the user: the session ends and the script leaves the page.
    page.wait_for_url(re.compile(r"/accounts/login/"), timeout=12_000)
    assert page.url != signed_in_at
    assert page.locator("#login-link").is_visible()
