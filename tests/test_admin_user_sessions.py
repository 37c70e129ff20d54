"""The admin page listing one user's sessions, on every engine with a
per-user index (the cache engine on Redis has no rows for the changelist)."""

import pytest
from django.conf import settings as django_settings
from django.contrib.admin import AdminSite
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.models import Permission, User
from django.core.exceptions import PermissionDenied
from django.test import RequestFactory
from django.urls import reverse

from scs_django import tokens
from scs_django.admin import UserSessionsAdminMixin
from tests.test_admin_confirmation import confirm
from tests.utils import hash_of, logged_in_by_form, user_of

pytestmark = [
    pytest.mark.django_db(databases="__all__"),
    pytest.mark.parametrize(
        "engine", ["db-postgresql", "cache-redis", "cached_db-redis"], indirect=True
    ),
]

COOKIE = django_settings.SESSION_COOKIE_NAME
USERS = "/users-admin/auth/user/"  # tests/user_admin_urls.py


@pytest.fixture
def owner(user_factory):
    return user_factory()


@pytest.fixture
def admin_client(user_factory):
    return logged_in_by_form(user_factory(is_staff=True, is_superuser=True))


def staff_with(user_factory, *permissions):
    """A logged-in staff user's client holding only ``permissions`` ("app.codename")."""
    user = user_factory(is_staff=True)
    for permission in permissions:
        app_label, codename = permission.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    return logged_in_by_form(user)


def url_of(owner):
    """The admin page of ``owner``'s sessions."""
    return reverse("admin:scs_django_session_user", args=[owner.pk])


def test_lists_the_users_sessions_without_tokens(engine, owner, admin_client):
    laptop, phone = logged_in_by_form(owner), logged_in_by_form(owner)
    response = admin_client.get(url_of(owner))
    assert response.status_code == 200
    html = response.content.decode()
    for client in (laptop, phone):
        token = client.cookies[COOKIE].value
        key_hash = tokens.hash_token(token)
        assert key_hash[:8] in html
        assert token not in html
        assert key_hash not in html
    assert len(response.context["sessions"]) == 2


def test_revoke_one_session(engine, owner, admin_client):
    laptop, phone = logged_in_by_form(owner), logged_in_by_form(owner)
    prefix = hash_of(phone)[:8]
    response = confirm(
        admin_client, admin_client.post(url_of(owner), {"session": prefix})
    )
    assert response.redirect_chain == [(url_of(owner), 302)]
    assert user_of(phone) is None
    assert user_of(laptop) == str(owner.pk)


def test_revoke_all_sessions_of_the_user(engine, owner, admin_client):
    laptop, phone = logged_in_by_form(owner), logged_in_by_form(owner)
    confirm(admin_client, admin_client.post(url_of(owner), {"session": "all-others"}))
    assert user_of(laptop) is None
    assert user_of(phone) is None
    assert admin_client.get(url_of(owner)).status_code == 200  # the admin stays in


def test_a_bad_prefix_is_a_message_not_an_error(engine, owner, admin_client):
    logged_in_by_form(owner)
    response = admin_client.post(url_of(owner), {"session": "zz"}, follow=True)
    assert response.status_code == 200
    assert len(response.context["sessions"]) == 1


def test_staff_without_permission_cannot_revoke(engine, owner, user_factory):
    phone = logged_in_by_form(owner)
    staff = logged_in_by_form(user_factory(is_staff=True))
    assert staff.get(url_of(owner)).status_code == 403
    prefix = hash_of(phone)[:8]
    assert staff.post(url_of(owner), {"session": prefix}).status_code == 403
    assert user_of(phone) == str(owner.pk)


def test_user_admin_mixin_action(engine, owner, user_factory):
    phone = logged_in_by_form(owner)

    class SessionsUserAdmin(UserSessionsAdminMixin, UserAdmin):
        pass

    model_admin = SessionsUserAdmin(User, AdminSite())
    request = RequestFactory().post("/", {"post": "yes"})  # confirmed
    request.user = user_factory(is_staff=True, is_superuser=True)
    request.session = engine.store_class()
    request._messages = type("Messages", (), {"add": lambda *a, **k: None})()
    model_admin.revoke_all_sessions(request, User.objects.filter(pk=owner.pk))
    assert user_of(phone) is None


def offered_actions(client, url):
    response = client.get(url)
    assert response.status_code == 200
    form = response.context["action_form"]  # None when no action is offered
    return [name for name, _ in form.fields["action"].choices] if form else []


def revoke_users_in_user_admin(client, *users, **fields):
    return client.post(
        USERS,
        {
            "action": "revoke_all_sessions",
            "_selected_action": [user.pk for user in users],
            "index": 0,
            **fields,
        },
    )


@pytest.mark.urls("tests.user_admin_urls")
def test_user_admin_action_needs_the_delete_session_permission(engine, user_factory):
    boss = user_factory(is_staff=True, is_superuser=True)
    boss_laptop = logged_in_by_form(boss)
    viewer = staff_with(user_factory, "auth.view_user")
    revoke_users_in_user_admin(viewer, boss)
    revoke_users_in_user_admin(viewer, boss, post="yes")
    assert user_of(boss_laptop) == str(boss.pk)
    assert "revoke_all_sessions" not in offered_actions(viewer, USERS)
    assert "revoke_all_sessions" not in viewer.get(USERS).content.decode()

    revoker = staff_with(user_factory, "auth.view_user", "scs_django.delete_session")
    assert "revoke_all_sessions" in offered_actions(revoker, USERS)
    response = confirm(revoker, revoke_users_in_user_admin(revoker, boss))
    assert response.redirect_chain[-1][1] == 302
    assert user_of(boss_laptop) is None


def test_user_admin_action_called_without_permission_is_refused(
    engine, owner, user_factory
):
    phone = logged_in_by_form(owner)

    class SessionsUserAdmin(UserSessionsAdminMixin, UserAdmin):
        pass

    model_admin = SessionsUserAdmin(User, AdminSite())
    request = RequestFactory().post("/", {"post": "yes"})  # confirmed
    request.user = user_factory(is_staff=True)
    request.user.user_permissions.add(Permission.objects.get(codename="view_user"))
    request.session = engine.store_class()
    request._messages = type("Messages", (), {"add": lambda *a, **k: None})()
    with pytest.raises(PermissionDenied):
        model_admin.revoke_all_sessions(request, User.objects.filter(pk=owner.pk))
    assert user_of(phone) == str(owner.pk)


def test_view_permission_shows_the_page_without_revoke_buttons(
    engine, owner, user_factory
):
    phone = logged_in_by_form(owner)
    viewer = staff_with(user_factory, "scs_django.view_session")
    response = viewer.get(url_of(owner))
    assert response.status_code == 200
    assert len(response.context["sessions"]) == 1
    assert response.context["can_revoke"] is False
    html = response.content.decode()
    assert 'name="session"' not in html
    assert "Revoke" not in html
    prefix = hash_of(phone)[:8]
    for session in (prefix, "all-others"):
        for step in ({}, {"post": "yes"}):
            data = {"session": session, **step}
            assert viewer.post(url_of(owner), data).status_code == 403
    assert user_of(phone) == str(owner.pk)
