"""Users in one database, sessions in another, as Django's multi-database docs
split them with a router: everything a user does works, every query goes
where the router says, and a schema error is a 500, never a 503."""

import io
import sqlite3
from contextlib import contextmanager
from datetime import timedelta

import pytest
import time_machine
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.db import SessionStore as DjangoStore
from django.core.management import call_command
from django.db import DatabaseError, connections, transaction
from django.db.migrations.executor import MigrationExecutor
from django.test import Client, override_settings
from django.utils import timezone

from scs_django import sessions, tokens
from scs_django.importer import import_django_sessions
from scs_django.models import Session
from tests.engines import use_engine
from tests.routers import SPLITS, AuthRouter, use_database
from tests.utils import client_with, hash_of, logged_in_by_form, user_of

pytestmark = pytest.mark.django_db(databases="__all__")

COOKIE = django_settings.SESSION_COOKIE_NAME
TABLE = "scs_django_session"
# Past the absolute timeout (SESSION_COOKIE_AGE, two weeks).
LATER = timedelta(days=15)

WITH_DJANGO_SESSIONS = [*django_settings.INSTALLED_APPS, "django.contrib.sessions"]
SPLIT_ENGINES = {
    "db-postgresql": ("postgresql", "db-postgresql"),
    "db-sqlite": ("sqlite", "db-sqlite"),
    "cached_db-postgresql": ("postgresql", "cached_db-redis"),
    "cached_db-sqlite": ("sqlite", "cached_db-redis"),
}


@pytest.fixture(params=list(SPLIT_ENGINES))
def split(request, settings):
    """The session engine, with users and sessions split by ``AuthRouter``.

    Yields the router; factories write users to its ``users`` database.
    """
    vendor, engine = SPLIT_ENGINES[request.param]
    router = SPLITS[vendor]
    with use_engine(engine, settings), use_database(router.users):
        settings.DATABASE_ROUTERS = [router]
        yield router


def session_rows(router, **filters):
    """The rows of the session table in the router's sessions database."""
    return Session.objects.using(router.sessions).filter(**filters)


def tables(alias):
    connection = connections[alias]
    with connection.cursor() as cursor:
        return set(connection.introspection.table_names(cursor))


def foreign_keys(alias):
    connection = connections[alias]
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, TABLE)
    return {
        name for name, constraint in constraints.items() if constraint["foreign_key"]
    }


def test_each_database_holds_its_own_tables_and_no_foreign_key_joins_them(split):
    assert "auth_user" in tables(split.users)
    assert TABLE not in tables(split.users)
    assert TABLE in tables(split.sessions)
    assert "auth_user" not in tables(split.sessions)
    assert foreign_keys(split.sessions) == set()


def test_login_and_request_session_work_with_the_session_in_its_own_database(
    split, user_factory
):
    user = user_factory()
    browser = logged_in_by_form(user)

    assert user_of(browser) == str(user.pk)
    assert browser.get("/write/", {"value": "kept"}).status_code == 200
    assert browser.get("/read/").json() == {"value": "kept", "user": str(user.pk)}
    row = session_rows(split).get(key_hash=hash_of(browser))
    assert row.user_id == user.pk
    # The relation still works; the user comes from the users' database.
    assert row.user == user
    assert row.user._state.db == split.users


def test_listing_and_revoking_a_users_sessions(split, user_factory):
    user, bystander = user_factory(), user_factory()
    phone, laptop = logged_in_by_form(user), logged_in_by_form(user)
    unrelated = logged_in_by_form(bystander)

    listed = laptop.get("/my-sessions/").json()["sessions"]
    assert len(listed) == 2
    assert [s["is_current"] for s in listed].count(True) == 1
    assert laptop.post("/my-sessions/end-others/").json() == {"ended": 1}
    assert user_of(phone) is None
    assert user_of(laptop) == str(user.pk)

    assert sessions.revoke(user) == 1
    assert user_of(laptop) is None
    assert user_of(unrelated) == str(bystander.pk)


def test_deleting_a_user_ends_their_sessions_and_removes_their_rows(
    split, user_factory
):
    user, bystander = user_factory(), user_factory()
    user_id = user.pk
    logged_in_by_form(user)
    with time_machine.travel(timezone.now() + LATER, tick=False):
        # One row long expired, one live: with the foreign key gone, nothing
        # but scs_django removes either.
        live = logged_in_by_form(user)
        unrelated = logged_in_by_form(bystander)
        assert session_rows(split, user_id=user_id).count() == 2
        user.delete()
        assert user_of(live) is None
        assert not session_rows(split, user_id=user_id).exists()
        assert user_of(unrelated) == str(bystander.pk)


def test_deleting_users_with_a_queryset_ends_each_ones_sessions(split, user_factory):
    first, second, bystander = user_factory(), user_factory(), user_factory()
    browsers = [
        logged_in_by_form(first),
        logged_in_by_form(first),
        logged_in_by_form(second),
    ]
    unrelated = logged_in_by_form(bystander)

    get_user_model().objects.filter(pk__in=[first.pk, second.pk]).delete()

    assert [user_of(browser) for browser in browsers] == [None, None, None]
    assert set(session_rows(split).values_list("user_id", flat=True)) == {bystander.pk}
    assert user_of(unrelated) == str(bystander.pk)


def delete_through_the_admin(admin, user):
    url = f"/admin/auth/user/{user.pk}/delete/"
    page = admin.get(url)
    assert page.status_code == 200, page.content
    return admin.post(url, {"post": "yes"})


def test_the_admin_deletes_a_user_and_their_sessions(split, user_factory):
    admin = logged_in_by_form(user_factory(is_staff=True, is_superuser=True))
    user = user_factory()
    device = logged_in_by_form(user)

    response = delete_through_the_admin(admin, user)

    assert response.status_code == 302, response.content
    assert not get_user_model().objects.filter(pk=user.pk).exists()
    assert user_of(device) is None
    assert not session_rows(split, user_id=user.pk).exists()


def test_the_admin_deletes_a_user_with_sessions_in_one_database_too(
    db_alias, user_factory
):
    # The cascade used to list the sessions, which nobody may delete in the
    # admin, so the page refused every user who had a session.
    admin = logged_in_by_form(user_factory(is_staff=True, is_superuser=True))
    user = user_factory()
    device = logged_in_by_form(user)

    response = delete_through_the_admin(admin, user)

    assert response.status_code == 302, response.content
    assert not get_user_model().objects.filter(pk=user.pk).exists()
    assert user_of(device) is None


def test_the_session_admin_lists_searches_and_revokes(split, user_factory):
    admin = logged_in_by_form(user_factory(is_staff=True, is_superuser=True))
    user = user_factory(username="ada")
    device = logged_in_by_form(user)
    row = session_rows(split).get(key_hash=hash_of(device))

    listing = admin.get("/admin/scs_django/session/")
    assert listing.status_code == 200, listing.content
    assert "ada" in listing.text
    assert admin.get("/admin/scs_django/session/", {"q": "ada"}).status_code == 200
    assert admin.get(f"/admin/scs_django/session/user/{user.pk}/").status_code == 200
    detail = admin.get(f"/admin/scs_django/session/{row.pk}/change/")
    assert detail.status_code == 200 and "ada" in detail.text

    chosen = {"action": "revoke_selected", "_selected_action": [row.pk]}
    asked = admin.post("/admin/scs_django/session/", chosen)
    assert asked.status_code == 200 and "ada" in asked.text  # the confirmation page
    assert user_of(device) == str(user.pk)
    response = admin.post("/admin/scs_django/session/", {**chosen, "post": "yes"})
    assert response.status_code == 302, response.content
    assert user_of(device) is None


def test_scs_cleanup_deletes_expired_sessions_from_the_sessions_database(
    split, user_factory
):
    expired = logged_in_by_form(user_factory())
    out = io.StringIO()
    with time_machine.travel(timezone.now() + LATER, tick=False):
        live = logged_in_by_form(user_factory())
        call_command("scs_cleanup", stdout=out)
    assert out.getvalue().startswith("deleted 1 expired sessions")
    assert not session_rows(split, key_hash=hash_of(expired)).exists()
    assert session_rows(split, key_hash=hash_of(live)).exists()


@pytest.fixture
def django_session_table(split):
    """django_session in the sessions' database, as Django's own model makes it."""
    connection = connections[split.sessions]
    with override_settings(INSTALLED_APPS=WITH_DJANGO_SESSIONS):
        from django.contrib.sessions.models import Session as DjangoSession

        sql, params = connection.schema_editor().table_sql(DjangoSession)
    with connection.cursor() as cursor:
        cursor.execute(sql, params or None)
    return connection


def test_import_finds_the_users_in_their_own_database(
    split, django_session_table, user_factory, settings
):
    settings.SCS = {"ACCEPT_LEGACY_TOKENS": True}
    user = user_factory()
    keys = {"k" * 32: user.pk, "g" * 32: user.pk + 1000}  # the second user is gone
    expire = django_session_table.ops.adapt_datetimefield_value(
        timezone.now() + timedelta(days=1)
    )
    with django_session_table.cursor() as cursor:
        for key, user_id in keys.items():
            data = DjangoStore().encode(
                {
                    "_auth_user_id": str(user_id),
                    "_auth_user_backend": "django.contrib.auth.backends.ModelBackend",
                    "_auth_user_hash": user.get_session_auth_hash(),
                }
            )
            cursor.execute(
                "INSERT INTO django_session VALUES (%s, %s, %s)", [key, data, expire]
            )

    result = import_django_sessions()

    assert (result.imported, result.skipped) == (1, 1)
    browser = client_with("k" * 32)
    assert user_of(browser) == str(user.pk)


# -- schema errors are bugs, not outages -------------------------------------------


@contextmanager
def undone(alias):
    """Roll back whatever the block did on ``alias``, a failed statement included."""
    with transaction.atomic(using=alias):
        yield
        transaction.set_rollback(True, using=alias)


@pytest.mark.parametrize("vendor", list(SPLITS))
@pytest.mark.parametrize("path, cookie", [("/read/", True), ("/write/", False)])
def test_a_missing_session_table_is_a_500_with_the_real_error(
    vendor, path, cookie, settings
):
    users = SPLITS[vendor].users
    # Sessions routed to a database where scs_django was never migrated; a
    # read loads the session of the cookie, a write creates one.
    settings.DATABASE_ROUTERS = [AuthRouter(users, users)]
    browser = Client(raise_request_exception=False)
    if cookie:
        browser.cookies[COOKIE] = tokens.new_token()

    with undone(users):
        response = browser.get(path)
    assert response.status_code == 500

    browser.raise_request_exception = True
    with undone(users), pytest.raises(DatabaseError) as raised:
        browser.get(path)
    assert TABLE in str(raised.value)


@pytest.fixture
def sqlite_write_lock():
    """Another process's write transaction on the "sqlite" test database."""
    with use_database("sqlite"):
        connection = connections["sqlite"]
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA busy_timeout = 200")  # not the 20 s of settings
        other = sqlite3.connect(connection.settings_dict["NAME"], isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            other.rollback()
            other.close()
            with connection.cursor() as cursor:
                cursor.execute("PRAGMA busy_timeout = 20000")


def test_a_locked_sqlite_database_is_still_unavailable(sqlite_write_lock):
    response = Client().get("/write/")
    assert response.status_code == 503
    assert COOKIE not in response.cookies


# -- the migration that drops the foreign key --------------------------------------


@pytest.mark.django_db(databases=["default"])
def test_an_existing_database_loses_its_foreign_key_on_migrate():
    executor = MigrationExecutor(connections["default"])
    # The migrations one by one, as a database created before the squash has them.
    executor.loader.replace_migrations = False
    executor.loader.build_graph()
    executor.migrate([("scs_django", "0002_session_metadata")])
    assert len(foreign_keys("default")) == 1

    executor.loader.build_graph()
    executor.migrate([("scs_django", "0003_session_user_without_constraint")])
    assert foreign_keys("default") == set()
