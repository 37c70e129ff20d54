"""A user's sessions page is linked from the user's change page (Django's own
UserAdmin, and a user admin with UserSessionsAdminMixin) and from each row of
the session list and each session's page, on every engine it exists on."""

import re

import pytest
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import path, reverse

from scs_django.admin import SessionAdmin, UserSessionsAdminMixin
from scs_django.models import Session
from tests import urls
from tests.utils import hash_of, logged_in, row_of

pytestmark = pytest.mark.django_db(databases="__all__")


# As docs/admin.rst has it: the user admin with the mixin on the same site as
# the session admin. This module is that site's URLconf.
class SessionsUserAdmin(UserSessionsAdminMixin, UserAdmin):
    pass


site = admin.AdminSite(name="both")
site.register(User, SessionsUserAdmin)
site.register(Session, SessionAdmin)
urlpatterns = [path("both/", site.urls), *urls.urlpatterns]

EVERY_USER_ENGINE = ["db-postgresql", "cache-redis", "cached_db-redis"]
EVERY_DB_ENGINE = ["db-postgresql", "db-sqlite", "cached_db-redis"]
SESSIONS = "/admin/scs_django/session/"


@pytest.fixture
def boss(user_factory):
    return user_factory(is_staff=True, is_superuser=True)


def per_user_page(user):
    return reverse("admin:scs_django_session_user", args=[user.pk])


def links_to(html, url):
    return len(re.findall(rf'<a href="{re.escape(url)}"', html))


def staff_with(user_factory, *permissions):
    """A logged-in staff user's client holding only ``permissions`` (codenames)."""
    user = user_factory(is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=permissions))
    return logged_in(user)


@pytest.mark.parametrize("engine", EVERY_USER_ENGINE, indirect=True)
def test_djangos_user_change_page_links_to_the_users_sessions(
    engine, boss, user_factory
):
    owner = user_factory()
    phone = logged_in(owner)
    staff = logged_in(boss)
    html = staff.get(f"/admin/auth/user/{owner.pk}/change/").content.decode()
    assert links_to(html, per_user_page(owner)) == 1
    assert "History" in html  # Django's own tools are still there

    page = staff.get(per_user_page(owner))
    assert page.status_code == 200
    assert hash_of(phone)[:8] in page.content.decode()


@pytest.mark.parametrize("engine", ["db-postgresql"], indirect=True)
def test_no_link_for_staff_who_may_not_see_sessions(engine, user_factory):
    owner = user_factory()
    change_page = f"/admin/auth/user/{owner.pk}/change/"
    users_only = staff_with(user_factory, "view_user", "change_user")
    html = users_only.get(change_page).content.decode()
    assert "History" in html
    assert links_to(html, per_user_page(owner)) == 0

    both = staff_with(user_factory, "view_user", "view_session")
    assert links_to(both.get(change_page).content.decode(), per_user_page(owner)) == 1


@pytest.mark.urls("tests.user_admin_urls")
@pytest.mark.parametrize("engine", EVERY_USER_ENGINE, indirect=True)
def test_a_user_admin_with_the_mixin_links_once(engine, boss, user_factory):
    # That admin site has no session admin: the link goes to the default one.
    owner = user_factory()
    staff = logged_in(boss)
    html = staff.get(f"/users-admin/auth/user/{owner.pk}/change/").content.decode()
    assert per_user_page(owner).startswith("/admin/")
    assert links_to(html, per_user_page(owner)) == 1

    users_only = staff_with(user_factory, "view_user", "change_user")
    html = users_only.get(f"/users-admin/auth/user/{owner.pk}/change/").content.decode()
    assert "History" in html
    assert links_to(html, per_user_page(owner)) == 0


@pytest.mark.urls("tests.test_admin_links")
@pytest.mark.parametrize("engine", EVERY_USER_ENGINE, indirect=True)
def test_the_mixin_on_the_session_admins_site_links_once(engine, boss, user_factory):
    owner = user_factory()
    phone = logged_in(owner)
    staff = logged_in(boss)
    html = staff.get(f"/both/auth/user/{owner.pk}/change/").content.decode()
    url = reverse(
        "admin:scs_django_session_user", args=[owner.pk], current_app=site.name
    )
    assert url.startswith("/both/")
    assert links_to(html, url) == 1
    assert links_to(html, per_user_page(owner)) == 0
    page = staff.get(url)
    assert [s.hash_prefix for s in page.context["sessions"]] == [hash_of(phone)[:8]]


@pytest.mark.parametrize("engine", EVERY_DB_ENGINE, indirect=True)
def test_each_session_row_links_to_its_users_sessions(engine, boss, user_factory):
    ada, bob = user_factory(username="ada"), user_factory(username="bob")
    for client in (logged_in(ada), logged_in(ada), logged_in(bob)):
        assert row_of(client).user_id is not None
    anonymous = Client()
    anonymous.get("/write/", {"value": "cart"})
    staff = logged_in(boss)

    html = staff.get(SESSIONS).content.decode()
    assert links_to(html, per_user_page(ada)) == 2
    assert links_to(html, per_user_page(bob)) == 1
    assert links_to(html, per_user_page(boss)) == 1
    rows = re.findall(r"<tr>.*?</tr>", html, re.S)
    (anonymous_row,) = [row for row in rows if hash_of(anonymous)[:8] in row]
    assert "/session/user/" not in anonymous_row

    bob_phone = logged_in(bob)
    detail = staff.get(f"{SESSIONS}{row_of(bob_phone).pk}/change/")
    assert links_to(detail.content.decode(), per_user_page(bob)) == 1


@pytest.mark.parametrize("engine", ["cache-redis"], indirect=True)
def test_the_user_page_link_works_where_the_list_has_no_rows(
    engine, boss, user_factory
):
    owner = user_factory()
    phone = logged_in(owner)
    staff = logged_in(boss)
    html = staff.get(f"/admin/auth/user/{owner.pk}/change/").content.decode()
    (url,) = re.findall(r'<a href="([^"]+)" class="sessionslink"', html)
    page = staff.get(url)
    assert [s.hash_prefix for s in page.context["sessions"]] == [hash_of(phone)[:8]]
