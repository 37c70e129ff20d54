"""The session list fits a 1280-pixel window: six columns of short cells
(relative times, a browser's name, cut names), the full values in tooltips.

Measured in Chromium at 1280 x 900 with both of the admin's sidebars open,
the list takes the 616 pixels left to it without scrolling when no cell holds
a word longer than these tests allow: a table is as wide as the longest
unbreakable word of each column, added up.
"""

import re
from datetime import timedelta
from html import unescape

import pytest
from django.utils import formats, timezone

from scs_django.models import Session
from tests.utils import START, logged_in, row_of

pytestmark = pytest.mark.django_db(databases="__all__")

URL = "/admin/scs_django/session/"
EDGE = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like "
    "Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.2592.87"
)
ODD = "SomeHomegrownClient/1.0 " + "x" * 200
IPV6 = "2001:db8:85a3:8d3:1319:8a2e:370:7348"


@pytest.fixture
def staff(db_alias, user_factory, clock):
    return logged_in(user_factory(is_staff=True, is_superuser=True))


def device(user, **columns):
    """A session of ``user``, its row changed to hold ``columns``."""
    client = logged_in(user)
    row = row_of(client)
    Session.objects.filter(pk=row.pk).update(**columns)
    return row_of(client)


def cells(client, row):
    """The cells of ``row`` in the list: column name -> HTML."""
    response = client.get(URL)
    assert response.status_code == 200
    names = response.context["cl"].list_display
    html = response.content.decode()
    (tr,) = [
        tr for tr in re.findall(r"<tr>.*?</tr>", html, re.S) if row.key_hash[:8] in tr
    ]
    tds = re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", tr, re.S)
    return dict(zip(names, tds, strict=True))


def headers(response):
    """The column headers of the list, but the checkbox's."""
    html = response.content.decode()
    (table,) = re.findall(r'<table id="result_list">.*?</table>', html, re.S)
    return re.findall(r'<th scope="col"[^>]*>(.*?)</th>', table, re.S)[1:]


def text(html):
    """What a cell shows, with its line breaks and break points as spaces."""
    return unescape(re.sub(r"<[^>]+>", " ", html)).split()


def test_the_columns(staff):
    response = staff.get(URL)
    assert response.context["cl"].list_display == [
        "action_checkbox",
        "hash_prefix",
        "user_link",
        "created",
        "seen",
        "expires",
        "client",
    ]
    assert [" ".join(text(h)) for h in headers(response)] == [
        "Token hash",
        "User",
        "Created",
        "Last seen",
        "Expiry",
        "Client",
    ]


def test_times_are_relative_with_the_date_in_full_in_a_tooltip(staff, user_factory):
    row = device(
        user_factory(),
        created_at=START - timedelta(hours=3),
        last_seen=START - timedelta(minutes=5),
        expiry=START + timedelta(minutes=25),
        absolute_expiry=START + timedelta(hours=7),
    )
    shown = cells(staff, row)
    assert text(shown["created"]) == ["3", "hours", "ago"]
    assert text(shown["seen"]) == ["5", "minutes", "ago"]
    assert text(shown["expires"]) == ["in", "25", "minutes"]
    assert '<time datetime="2026-03-02T06:00:00+00:00"' in shown["created"]
    expiry, absolute = (
        formats.localize(timezone.localtime(START + delta))
        for delta in (timedelta(minutes=25), timedelta(hours=7))
    )
    assert f'title="{expiry}; absolute expiry: {absolute}"' in shown["expires"]


@pytest.mark.parametrize(
    "deadlines, state",
    [
        ({"expiry": START - timedelta(hours=1)}, "Idle-expired"),
        (
            {
                "expiry": START - timedelta(hours=1),
                "absolute_expiry": START - timedelta(hours=1),
            },
            "Absolute-expired",
        ),
    ],
)
def test_an_ended_session_says_how_beside_its_expiry(
    staff, user_factory, deadlines, state
):
    row = device(user_factory(), **deadlines)
    assert text(cells(staff, row)["expires"]) == [f"{state},", "1", "hour", "ago"]


def test_the_client_is_a_browser_name_with_the_user_agent_in_a_tooltip(
    staff, user_factory
):
    row = device(user_factory(), user_agent=EDGE, ip="192.0.2.15")
    shown = cells(staff, row)["client"]
    assert text(shown) == ["Edge", "on", "Windows", "192.", "0.", "2.", "15"]
    assert f'title="{EDGE}"' in unescape(shown)


def test_an_unknown_user_agent_is_cut_with_the_whole_in_a_tooltip(staff, user_factory):
    row = device(user_factory(), user_agent=ODD, ip=IPV6)
    shown = cells(staff, row)["client"]
    agent, address = (text(line) for line in shown.split("<br>"))
    # Break points after each "/", ".", ":" and at most 8 characters apart.
    assert agent == ["SomeHome", "grownCli", "ent/", "1.", "0…"]
    assert f'title="{ODD}"' in shown
    assert "".join(address) == IPV6 and max(map(len, address)) == 5


def test_a_long_user_name_is_cut_with_the_whole_in_a_tooltip(staff, user_factory):
    name = "someone.with.a.very.long.name@example.org"
    row = device(user_factory(username=name))
    shown = cells(staff, row)["user_link"]
    assert len(" ".join(text(shown))) <= 16
    assert f"All sessions of {name}" in shown


def test_no_cell_widens_the_list_past_a_1280_pixel_window(staff, user_factory):
    # The widest rows there can be: the longest names, ended sessions, a full
    # IPv6 address, an unknown agent; a header word counts too.
    long_name = "someone.with.a.very.long.name@example.org"
    now = timezone.now()
    rows = [
        device(
            user_factory(username=long_name),
            user_agent=ODD,
            ip=IPV6,
            expiry=now - timedelta(days=3),
            absolute_expiry=now - timedelta(days=3),
        ),
        device(user_factory(username="ada"), user_agent=EDGE, ip="192.0.2.15"),
    ]
    response = staff.get(URL)
    longest = [max(map(len, text(h) or [""])) for h in headers(response)]
    for row in rows:
        shown = cells(staff, row)
        for i, name in enumerate(response.context["cl"].list_display[1:]):
            words = re.split(r"(?<=-)", " ".join(text(shown[name])))  # breaks after "-"
            longest[i] = max(
                [longest[i], *(len(w) for word in words for w in word.split())]
            )
    assert len(longest) == 6
    # 8 (hash) + 16 (user) + 7 + 7 + 9 + 8: the layout measured to fit.
    assert sum(longest) <= 56, longest
