"""Optional client metadata: IP address and user agent, off by default."""

import pytest
from django.test import RequestFactory

from scs_django import metadata, sessions
from scs_django.checks import check_settings
from tests.utils import ids_and_messages, post_login, row_of

IPV6 = "2001:db8:1234:5678:9abc:def0:1234:5678"


def login(client, user, **meta):
    """Log in with ``meta`` in the WSGI environ; the row of the new session."""
    assert post_login(client, user, **meta).status_code == 302
    return row_of(client)


@pytest.mark.django_db(databases="__all__")
def test_nothing_is_recorded_by_default(client, db_alias, user_factory):
    user = user_factory()
    row = login(
        client, user, REMOTE_ADDR="203.0.113.77", HTTP_USER_AGENT="Firefox/140.0"
    )
    assert (row.ip, row.user_agent) == (None, "")
    [listed] = sessions.for_user(user)
    assert (listed.ip, listed.user_agent) == (None, "")


@pytest.mark.django_db(databases="__all__")
@pytest.mark.parametrize(
    "remote, full, stored",
    [
        ("203.0.113.77", False, "203.0.113.0"),
        ("203.0.113.77", True, "203.0.113.77"),
        (IPV6, False, "2001:db8:1234:5678::"),
        (IPV6, True, IPV6),
        ("::ffff:198.51.100.23", False, "198.51.100.0"),
    ],
)
def test_the_ip_is_truncated_unless_full_addresses_are_asked_for(
    client, db_alias, settings, user_factory, remote, full, stored
):
    settings.SCS = {"RECORD_IP": True, "IP_FULL": full}
    user = user_factory()
    row = login(client, user, REMOTE_ADDR=remote, HTTP_USER_AGENT="Firefox/140.0")
    assert (row.ip, row.user_agent) == (stored, "")
    [listed] = sessions.for_user(user)
    assert listed.ip == stored


@pytest.mark.django_db(databases="__all__")
def test_the_user_agent_is_recorded_truncated(client, db_alias, settings, user_factory):
    settings.SCS = {"RECORD_USER_AGENT": True}
    user = user_factory()
    agent = "Mozilla/5.0 " + "x" * 400
    row = login(client, user, REMOTE_ADDR="203.0.113.77", HTTP_USER_AGENT=agent)
    assert (row.ip, row.user_agent) == (None, agent[:256])
    [listed] = sessions.for_user(user)
    assert listed.user_agent == agent[:256]


@pytest.mark.django_db(databases="__all__")
def test_a_proxy_header_counts_only_when_the_site_trusts_it(
    client, db_alias, settings, user_factory
):
    # Client 198.51.100.9 -> proxy 10.0.0.1 -> proxy 10.0.0.2 -> Django.
    meta = {"REMOTE_ADDR": "10.0.0.2", "HTTP_X_FORWARDED_FOR": "198.51.100.9, 10.0.0.1"}
    settings.SCS = {"RECORD_IP": True, "IP_FULL": True}
    client.get("/write/", **meta)
    assert row_of(client).ip == "10.0.0.2"

    settings.SCS = {
        "RECORD_IP": True,
        "IP_FULL": True,
        "TRUSTED_PROXY_HEADER": "HTTP_X_FORWARDED_FOR",
        "TRUSTED_PROXY_COUNT": 2,
    }
    client.cookies.clear()
    client.get("/write/", **meta)
    assert row_of(client).ip == "198.51.100.9"


@pytest.mark.django_db(databases="__all__")
def test_a_client_cannot_choose_its_recorded_address(
    client, db_alias, settings, user_factory
):
    # nginx with proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for
    # appends the address it was connected from to what the client sent.
    settings.SCS = {
        "RECORD_IP": True,
        "IP_FULL": True,
        "TRUSTED_PROXY_HEADER": "HTTP_X_FORWARDED_FOR",
    }
    user = user_factory()
    row = login(
        client,
        user,
        REMOTE_ADDR="127.0.0.1",
        HTTP_X_FORWARDED_FOR="192.0.2.66, 203.0.113.7",
    )
    assert row.ip == "203.0.113.7"
    [listed] = sessions.for_user(user)
    assert listed.ip == "203.0.113.7"


XFF = {
    "RECORD_IP": True,
    "IP_FULL": True,
    "TRUSTED_PROXY_HEADER": "HTTP_X_FORWARDED_FOR",
}


@pytest.mark.parametrize(
    "proxies, forwarded_for, expected",
    [
        # One proxy: the last entry is the one it added.
        (1, "203.0.113.7", "203.0.113.7"),
        (1, "192.0.2.66, 203.0.113.7", "203.0.113.7"),
        (1, "192.0.2.66,203.0.113.7", "203.0.113.7"),
        (1, "not an address, 203.0.113.7", "203.0.113.7"),
        (1, f"192.0.2.66, {IPV6}", IPV6),
        # Two proxies: the second added the first's address, the first the client's.
        (2, "203.0.113.7, 10.0.0.1", "203.0.113.7"),
        (2, "192.0.2.66, 203.0.113.7, 10.0.0.1", "203.0.113.7"),
        (3, "192.0.2.66, 203.0.113.7, 10.0.0.1, 10.0.0.2", "203.0.113.7"),
        # Fewer entries than proxies: the request did not come through all of
        # them, so any entry may be the client's own; REMOTE_ADDR never is.
        (2, "192.0.2.66", "10.0.0.9"),
        (3, "192.0.2.66, 10.0.0.1", "10.0.0.9"),
        # What the trusted proxy added is not an address: nothing is recorded.
        (1, "203.0.113.7, unknown", None),
        (2, "unknown, 10.0.0.1", None),
    ],
)
def test_the_address_is_counted_from_the_right(
    settings, proxies, forwarded_for, expected
):
    settings.SCS = {**XFF, "TRUSTED_PROXY_COUNT": proxies}
    request = RequestFactory().get(
        "/", REMOTE_ADDR="10.0.0.9", HTTP_X_FORWARDED_FOR=forwarded_for
    )
    assert metadata.client_of(request) == (expected, "")


def test_without_the_header_the_connecting_address_is_recorded(settings):
    settings.SCS = {**XFF, "TRUSTED_PROXY_COUNT": 1}
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.9")
    assert metadata.client_of(request) == ("10.0.0.9", "")


@pytest.mark.django_db(databases="__all__")
def test_metadata_is_written_at_creation_and_renewal_only(
    client, db_alias, settings, user_factory
):
    settings.SCS = {"RECORD_IP": True, "IP_FULL": True, "RECORD_USER_AGENT": True}
    user = user_factory()
    client.get("/write/", REMOTE_ADDR="203.0.113.1", HTTP_USER_AGENT="first")
    assert (row_of(client).ip, row_of(client).user_agent) == ("203.0.113.1", "first")
    client.get(
        "/write/", {"value": "x"}, REMOTE_ADDR="203.0.113.2", HTTP_USER_AGENT="second"
    )
    assert (row_of(client).ip, row_of(client).user_agent) == ("203.0.113.1", "first")
    row = login(client, user, REMOTE_ADDR="203.0.113.3", HTTP_USER_AGENT="third")
    assert (row.ip, row.user_agent) == ("203.0.113.3", "third")


@pytest.mark.parametrize(
    "scs, meta, expected",
    [
        ({"RECORD_IP": True}, {"REMOTE_ADDR": "not an address"}, None),
        ({"RECORD_IP": True}, {}, None),
        (
            {"RECORD_IP": True, "IP_FULL": True},
            {"REMOTE_ADDR": "fe80::1%eth0"},
            "fe80::1",
        ),
        (
            {"RECORD_IP": True, "TRUSTED_PROXY_HEADER": "HTTP_X_REAL_IP"},
            {"REMOTE_ADDR": "10.0.0.2"},
            "10.0.0.0",
        ),
        (
            {"RECORD_IP": True, "TRUSTED_PROXY_HEADER": "HTTP_X_REAL_IP"},
            {"REMOTE_ADDR": "10.0.0.2", "HTTP_X_REAL_IP": "unknown"},
            None,
        ),
    ],
)
def test_client_ip_edge_cases(settings, scs, meta, expected):
    settings.SCS = scs
    request = RequestFactory().get("/", **meta)
    if "REMOTE_ADDR" not in meta:
        del request.META["REMOTE_ADDR"]
    assert metadata.client_of(request) == (expected, "")


def test_metadata_settings_are_checked(settings):
    settings.SCS = {
        "RECORD_IP": "yes",
        "IP_FULL": 1,
        "TRUSTED_PROXY_HEADER": "X-Forwarded-For",
        "TRUSTED_PROXY_COUNT": 0,
    }
    assert ids_and_messages(check_settings()) == [
        ("scs_django.E002", "SCS[\"RECORD_IP\"] is 'yes'; it must be True or False."),
        ("scs_django.E002", 'SCS["IP_FULL"] is 1; it must be True or False.'),
        (
            "scs_django.E002",
            "SCS[\"TRUSTED_PROXY_HEADER\"] is 'X-Forwarded-For'; it must be None or "
            'a request.META key such as "HTTP_X_FORWARDED_FOR".',
        ),
        (
            "scs_django.E002",
            'SCS["TRUSTED_PROXY_COUNT"] is 0; it must be a positive number of proxies.',
        ),
    ]
