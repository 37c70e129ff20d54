"""The live-session admin, driven through the test client as a staff user."""

import re
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import SESSION_KEY
from django.contrib.auth.models import Permission
from django.test import Client
from django.utils import timezone

from scs_django import tokens
from scs_django.backends.db import SessionStore
from scs_django.models import Session

pytestmark = pytest.mark.django_db(databases="__all__")

COOKIE = django_settings.SESSION_COOKIE_NAME
URL = "/admin/scs_django/session/"
SECRET = "the-secret-session-value"
HEX64 = re.compile(r"[0-9a-f]{64}")


@pytest.fixture
def staff(db_alias, user_factory):
    """A logged-in superuser's client."""
    client = Client()
    client.force_login(user_factory(is_staff=True, is_superuser=True))
    return client


def device(user=None):
    """A client with a session holding SECRET, logged in as ``user`` if given."""
    client = Client()
    if user is not None:
        client.force_login(user)
    client.get("/write/", {"value": SECRET})
    return client


def token_of(client):
    return client.cookies[COOKIE].value


def row_of(client):
    return Session.objects.get(key_hash=tokens.hash_token(token_of(client)))


def prefix_of(client):
    return row_of(client).key_hash[:8]


def user_of(client):
    return client.get("/read/").json()["user"]


def page(client, url=URL, **params):
    response = client.get(url, params)
    assert response.status_code == 200
    return response.content.decode()


def revoke(client, action, *rows):
    return client.post(
        URL,
        {
            "action": action,
            "_selected_action": [row.pk for row in rows],
            "index": 0,
        },
        follow=True,
    )


def test_the_list_shows_who_when_and_how_long(staff, user_factory):
    user = user_factory(username="ada")
    laptop = device(user)
    html = page(staff)
    assert prefix_of(laptop) in html
    assert "ada" in html
    assert "Active" in html
    assert "Revoke selected sessions" in html
    assert "Revoke all sessions of these users" in html


def test_no_token_value_or_full_hash_anywhere(staff, user_factory):
    user = user_factory()
    clients = [staff, device(user), device()]
    tokens_ = [token_of(c) for c in clients]
    html = page(staff) + "".join(
        page(staff, f"{URL}{row_of(c).pk}/change/") for c in clients
    )
    assert SECRET not in html
    for token in tokens_:
        assert token not in html
    assert not HEX64.search(html)


def test_the_detail_page_lists_the_stored_keys_not_their_values(staff, user_factory):
    row = row_of(device(user_factory()))
    html = page(staff, f"{URL}{row.pk}/change/")
    assert "_auth_user_id" in html
    assert "value" in html
    assert SECRET not in html
    assert row.key_hash[:8] in html
    assert 'name="_save"' not in html  # read-only


def test_the_admin_cannot_add_change_or_delete(staff, user_factory):
    row = row_of(device(user_factory()))
    assert staff.get(f"{URL}add/").status_code == 403
    assert staff.get(f"{URL}{row.pk}/delete/").status_code == 403
    response = staff.post(f"{URL}{row.pk}/change/", {"ip": "192.0.2.1"})
    assert response.status_code == 403
    assert Session.objects.get(pk=row.pk).ip is None


def test_the_state_filter(staff, user_factory):
    now = timezone.now()
    active = device(user_factory())
    idle = device(user_factory())
    absolute = device(user_factory())
    Session.objects.filter(pk=row_of(idle).pk).update(expiry=now - timedelta(1))
    Session.objects.filter(pk=row_of(absolute).pk).update(
        expiry=now - timedelta(1), absolute_expiry=now - timedelta(1)
    )
    clients = {"active": active, "idle-expired": idle, "absolute-expired": absolute}
    for state, shown in clients.items():
        html = page(staff, state=state)
        for client in clients.values():
            assert (prefix_of(client) in html) == (client is shown), state
    html = page(staff)
    assert "Idle-expired" in html and "Absolute-expired" in html


def test_the_user_presence_filter(staff, user_factory):
    mine, anonymous = device(user_factory()), device()
    html = page(staff, user__isempty="1")
    assert prefix_of(anonymous) in html and prefix_of(mine) not in html
    html = page(staff, user__isempty="0")
    assert prefix_of(mine) in html and prefix_of(anonymous) not in html


def test_search_by_username_and_email(staff, user_factory):
    ada = device(user_factory(username="ada", email="countess@example.org"))
    bob = device(user_factory(username="bob"))
    for query in ("ada", "countess@example"):
        html = page(staff, q=query)
        assert prefix_of(ada) in html and prefix_of(bob) not in html


def test_the_date_hierarchy(staff, user_factory):
    laptop = device(user_factory())
    year = row_of(laptop).created_at.year
    assert prefix_of(laptop) in page(staff, created_at__year=str(year))
    assert prefix_of(laptop) not in page(staff, created_at__year=str(year - 1))


def test_revoke_selected_ends_exactly_those_sessions(staff, user_factory):
    user = user_factory()
    laptop, phone = device(user), device(user)
    response = revoke(staff, "revoke_selected", row_of(laptop))
    assert "1 session revoked." in response.content.decode()
    assert user_of(laptop) is None
    assert user_of(phone) == str(user.pk)


def test_revoke_all_sessions_of_the_selected_users(staff, user_factory):
    ada, bob, eve = user_factory(), user_factory(), user_factory()
    ada_laptop, ada_phone, bob_laptop = device(ada), device(ada), device(bob)
    eve_laptop = device(eve)
    response = revoke(
        staff,
        "revoke_users",
        row_of(ada_laptop),
        row_of(bob_laptop),
        row_of(staff),  # the admin's own session is kept
    )
    assert "3 sessions revoked." in response.content.decode()
    for client in (ada_laptop, ada_phone, bob_laptop):
        assert user_of(client) is None
    assert user_of(eve_laptop) == str(eve.pk)
    assert staff.get(URL).status_code == 200


def test_revoking_needs_the_delete_permission(user_factory):
    viewer = user_factory(is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_session"))
    client = Client()
    client.force_login(viewer)
    laptop = device(user_factory())
    html = page(client)
    assert prefix_of(laptop) in html
    assert "revoke_selected" not in html
    response = revoke(client, "revoke_selected", row_of(laptop))
    assert response.status_code == 200
    assert Session.objects.filter(pk=row_of(laptop).pk).exists()


def make_sessions(user_factory, count):
    for _ in range(count):
        store = SessionStore()
        store[SESSION_KEY] = str(user_factory().pk)
        store["value"] = SECRET
        store.create()


def queries_for_the_list(staff, db_alias, count_session_queries):
    with count_session_queries(db_alias) as ctx:
        page(staff)
    return len(ctx.queries)


def test_the_list_costs_the_same_queries_for_10_or_100_rows(
    staff, db_alias, user_factory, count_session_queries
):
    make_sessions(user_factory, 10)
    few = queries_for_the_list(staff, db_alias, count_session_queries)
    make_sessions(user_factory, 90)
    assert Session.objects.count() == 101
    many = queries_for_the_list(staff, db_alias, count_session_queries)
    assert few == many
