"""Every revoke in the admin asks first, as Django's ``delete_selected`` does:
the first POST shows a page listing what will end, with a CSRF-protected
"Yes, I'm sure" form; only the POST from that page ends sessions, and no GET
ever does. On every engine the pages exist on.

The helpers here (``confirmation_form``, ``confirm``) read the page's real
form, so the other admin tests go through it too.
"""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.test import Client
from django.urls import reverse

from tests.utils import hash_of, logged_in, logged_in_by_form, row_of, user_of

CONFIRMATION = "admin/scs_django/revoke_confirmation.html"
SESSIONS = "/admin/scs_django/session/"
USERS = "/users-admin/auth/user/"  # tests/user_admin_urls.py


class Forms(HTMLParser):
    """The forms of a page: method, and the named inputs other than buttons."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict] = []
        self.current: dict | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.current = {"method": attrs.get("method", "get"), "fields": []}
            self.forms.append(self.current)
        elif tag == "input" and self.current is not None and attrs.get("name"):
            if attrs.get("type") != "submit":
                self.current["fields"].append((attrs["name"], attrs.get("value", "")))

    def handle_endtag(self, tag):
        if tag == "form":
            self.current = None


def forms_of(response) -> list[dict]:
    parser = Forms()
    parser.feed(response.content.decode())
    return parser.forms


def confirmation_form(response) -> list[tuple[str, str]]:
    """The fields the confirmation page's "Yes, I'm sure" form posts; fails
    unless ``response`` is that page."""
    assert response.status_code == 200, response.status_code
    assert CONFIRMATION in [t.name for t in response.templates]
    forms = [f for f in forms_of(response) if ("post", "yes") in f["fields"]]
    assert len(forms) == 1
    assert forms[0]["method"] == "post"
    names = [name for name, _ in forms[0]["fields"]]
    assert "csrfmiddlewaretoken" in names
    return forms[0]["fields"]


def as_data(fields) -> dict[str, list[str]]:
    data: dict[str, list[str]] = {}
    for name, value in fields:
        data.setdefault(name, []).append(value)
    return data


def confirm(client, response, **extra):
    """Press "Yes, I'm sure" on the confirmation page ``response``, following
    the redirect; the confirmation form posts back where the page came from."""
    fields = confirmation_form(response)
    return client.post(
        response.wsgi_request.get_full_path(), as_data(fields), follow=True, **extra
    )


def action(client, url, name, *pks, **fields):
    """Choose the action ``name`` for the rows ``pks`` on a change list
    (``fields``: more form fields)."""
    data = {"action": name, ACTION_CHECKBOX_NAME: list(pks), "index": 0, **fields}
    return client.post(url, data)


# -- the pages ----------------------------------------------------------------------

pytestmark = pytest.mark.django_db(databases="__all__")
EVERY_DB_ENGINE = ["db-postgresql", "db-mariadb", "cached_db-redis"]
EVERY_USER_ENGINE = ["db-postgresql", "cache-redis", "cached_db-redis"]


@pytest.fixture
def boss(user_factory):
    return user_factory(is_staff=True, is_superuser=True)


def per_user_page(owner):
    return reverse("admin:scs_django_session_user", args=[owner.pk])


@pytest.mark.parametrize("engine", EVERY_DB_ENGINE, indirect=True)
def test_revoke_selected_asks_first_then_ends_the_session(engine, boss, user_factory):
    owner = user_factory(username="ada")
    staff, laptop, phone = logged_in(boss), logged_in(owner), logged_in(owner)
    row = row_of(laptop)

    asked = action(staff, SESSIONS, "revoke_selected", row.pk)
    fields = confirmation_form(asked)
    html = asked.content.decode()
    assert row.key_hash[:8] in html and "ada" in html
    assert row_of(phone).key_hash[:8] not in html
    assert ("action", "revoke_selected") in fields
    assert (ACTION_CHECKBOX_NAME, str(row.pk)) in fields
    assert user_of(laptop) == str(owner.pk)  # nothing ended yet

    done = confirm(staff, asked)
    assert "1 session revoked." in done.content.decode()
    assert user_of(laptop) is None
    assert user_of(phone) == str(owner.pk)


@pytest.mark.parametrize("engine", EVERY_DB_ENGINE, indirect=True)
def test_revoke_users_asks_first_naming_the_users(engine, boss, user_factory):
    ada, bob = user_factory(username="ada"), user_factory(username="bob")
    staff = logged_in(boss)
    ada_laptop, ada_phone, bob_laptop = logged_in(ada), logged_in(ada), logged_in(bob)

    asked = action(staff, SESSIONS, "revoke_users", row_of(ada_laptop).pk)
    confirmation_form(asked)
    html = asked.content.decode()
    assert "ada: 2 live sessions" in html
    assert "bob" not in html
    assert user_of(ada_phone) == str(ada.pk)

    done = confirm(staff, asked)
    assert "2 sessions revoked." in done.content.decode()
    assert user_of(ada_laptop) is None and user_of(ada_phone) is None
    assert user_of(bob_laptop) == str(bob.pk)


@pytest.mark.parametrize("engine", EVERY_USER_ENGINE, indirect=True)
def test_a_revoke_button_asks_first_then_ends_that_session(engine, boss, user_factory):
    owner = user_factory()
    staff, laptop, phone = logged_in_by_form(boss), logged_in(owner), logged_in(owner)
    prefix = hash_of(phone)[:8]

    asked = staff.post(per_user_page(owner), {"session": prefix})
    assert ("session", prefix) in confirmation_form(asked)
    html = asked.content.decode()
    assert prefix in html
    assert hash_of(laptop)[:8] not in html
    assert user_of(phone) == str(owner.pk)

    done = confirm(staff, asked)
    assert done.redirect_chain[-1][0] == per_user_page(owner)
    assert "1 session revoked." in done.content.decode()
    assert user_of(phone) is None
    assert user_of(laptop) == str(owner.pk)


@pytest.mark.parametrize("engine", EVERY_USER_ENGINE, indirect=True)
def test_revoke_all_sessions_of_a_user_asks_first(engine, boss, user_factory):
    owner = user_factory()
    staff, laptop, phone = logged_in_by_form(boss), logged_in(owner), logged_in(owner)

    asked = staff.post(per_user_page(owner), {"session": "all-others"})
    confirmation_form(asked)
    html = asked.content.decode()
    for client in (laptop, phone):
        assert hash_of(client)[:8] in html
        assert user_of(client) == str(owner.pk)

    confirm(staff, asked)
    assert user_of(laptop) is None and user_of(phone) is None
    assert user_of(staff) == str(boss.pk)  # the admin stays in


@pytest.mark.urls("tests.user_admin_urls")
@pytest.mark.parametrize("engine", EVERY_USER_ENGINE, indirect=True)
def test_the_user_admin_action_asks_first(engine, boss, user_factory):
    ada, bob = user_factory(username="ada"), user_factory(username="bob")
    staff, ada_laptop, bob_laptop = logged_in(boss), logged_in(ada), logged_in(bob)

    asked = action(staff, USERS, "revoke_all_sessions", ada.pk)
    fields = confirmation_form(asked)
    assert (ACTION_CHECKBOX_NAME, str(ada.pk)) in fields
    assert "ada: 1 live session" in asked.content.decode()
    assert user_of(ada_laptop) == str(ada.pk)

    done = confirm(staff, asked)
    assert "1 session revoked." in done.content.decode()
    assert user_of(ada_laptop) is None
    assert user_of(bob_laptop) == str(bob.pk)


@pytest.mark.parametrize("engine", EVERY_USER_ENGINE, indirect=True)
def test_no_get_ends_a_session(engine, boss, user_factory):
    owner = user_factory()
    staff, phone = logged_in(boss), logged_in(owner)
    prefix = hash_of(phone)[:8]
    for session in (prefix, "all-others"):
        query = {"session": session, "post": "yes"}
        assert staff.get(per_user_page(owner), query).status_code == 200
    if engine.spec.module != "scs_django.backends.cache":
        pk = row_of(phone).pk
        for name in ("revoke_selected", "revoke_users"):
            query = {"action": name, ACTION_CHECKBOX_NAME: pk, "post": "yes"}
            # Unknown parameters of a change list: Django redirects to ?e=1.
            assert staff.get(SESSIONS, query).status_code in (200, 302)
    assert user_of(phone) == str(owner.pk)


@pytest.mark.parametrize("engine", ["db-postgresql"], indirect=True)
def test_the_confirmation_needs_the_csrf_token(engine, boss, user_factory):
    owner = user_factory()
    phone = logged_in(owner)
    staff = Client(enforce_csrf_checks=True)
    staff.force_login(boss)
    page = staff.get(per_user_page(owner))  # sets the CSRF cookie
    token = page.context["csrf_token"]
    prefix = hash_of(phone)[:8]
    asked = staff.post(
        per_user_page(owner), {"session": prefix, "csrfmiddlewaretoken": str(token)}
    )
    fields = [(n, v) for n, v in confirmation_form(asked) if n != "csrfmiddlewaretoken"]
    forged = staff.post(per_user_page(owner), as_data(fields))
    assert forged.status_code == 403
    assert user_of(phone) == str(owner.pk)
    confirm(staff, asked)
    assert user_of(phone) is None


@pytest.mark.parametrize("engine", ["db-postgresql", "cache-redis"], indirect=True)
def test_a_prefix_no_session_has_is_a_message_not_a_confirmation(
    engine, boss, user_factory
):
    owner = user_factory()
    staff, phone = logged_in_by_form(boss), logged_in(owner)
    for session in ("zz", "0" * 8 if not hash_of(phone).startswith("0") else "1" * 8):
        response = staff.post(per_user_page(owner), {"session": session}, follow=True)
        assert response.status_code == 200
        assert CONFIRMATION not in [t.name for t in response.templates]
        assert "No live session of" in response.content.decode()
    assert user_of(phone) == str(owner.pk)
