"""Moving over from django.contrib.sessions: users stay logged in, no raw key is kept."""

import io
import re
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.core.management import CommandError, call_command
from django.db import connections
from django.test import Client, override_settings

from scs_django import tokens
from scs_django.backends.db import SessionStore
from scs_django.importer import import_django_sessions
from scs_django.models import Session
from tests.factories import PASSWORD
from tests.utils import START, Tty, client_with, every_cell, ids_and_messages

pytestmark = [
    pytest.mark.django_db(databases="__all__"),
    # django_session is created inside each test's transaction, to be rolled
    # back with it: MariaDB's DDL commits at once, and the test's data with it.
    pytest.mark.db_aliases("postgresql", "sqlite"),
]

COOKIE = django_settings.SESSION_COOKIE_NAME
DAY = timedelta(days=1)
SUMMARY = re.compile(
    r"imported (\d+) sessions from django_session in \d+\.\d\ds; "
    r"(\d+) already present, (\d+) skipped"
)
WITH_DJANGO_SESSIONS = [*django_settings.INSTALLED_APPS, "django.contrib.sessions"]


def django_engine():
    """Django's own session app, engine and middleware, as before the switch."""
    return override_settings(
        INSTALLED_APPS=WITH_DJANGO_SESSIONS,
        SESSION_ENGINE="django.contrib.sessions.backends.db",
        MIDDLEWARE=[
            "django.contrib.sessions.middleware.SessionMiddleware"
            if name == "scs_django.middleware.SessionMiddleware"
            else name
            for name in django_settings.MIDDLEWARE
        ],
    )


def django_store():
    from django.contrib.sessions.backends.db import SessionStore as DjangoStore

    return DjangoStore()


@pytest.fixture
def django_table(db_alias):
    """django_session, created from Django's own model in the pinned database."""
    with override_settings(INSTALLED_APPS=WITH_DJANGO_SESSIONS):
        from django.contrib.sessions.models import Session as DjangoSession

        connection = connections[db_alias]
        sql, params = connection.schema_editor().table_sql(DjangoSession)
        with connection.cursor() as cursor:
            cursor.execute(sql, params or None)
    return db_alias


def log_in_with_django(client, user):
    """Log ``user`` in on a server still running Django's engine; ``client``, the
    browser, keeps the cookie it got there. Returns the Django session key."""
    with django_engine():
        # A client of its own: a client keeps the middleware it first ran with.
        old_server = Client()
        response = old_server.post(
            "/accounts/login/", {"username": user.username, "password": PASSWORD}
        )
        assert response.status_code == 302
        old_server.get("/write/", {"value": "cart"})
    key = old_server.cookies[COOKIE].value
    assert len(key) == 32  # a Django session key, not one of our tokens
    client.cookies[COOKIE] = key
    return key


def forget_django_sessions(alias):
    with connections[alias].cursor() as cursor:
        cursor.execute("DELETE FROM django_session")


def run_import(*args):
    out = io.StringIO()
    call_command("scs_import_sessions", *args, stdout=out)
    return out.getvalue().splitlines()


def test_a_user_logged_in_under_django_stays_logged_in_after_the_switch(
    client, django_table, user_factory, settings, clock
):
    user = user_factory()
    key = log_in_with_django(client, user)

    lines = run_import()
    forget_django_sessions(django_table)  # only our copy is left to find
    settings.SCS = {"ACCEPT_LEGACY_TOKENS": True}
    response = client.get("/read/")

    assert SUMMARY.fullmatch(lines[0]).groups() == ("1", "0", "0")
    assert isinstance(response.wsgi_request.session, SessionStore)
    assert response.wsgi_request.user == user
    assert response.json() == {"value": "cart", "user": str(user.pk)}
    assert COOKIE not in response.cookies  # nothing to renew on a read
    cells = list(every_cell(django_table))
    assert tokens.hash_token(key) in cells
    for cell in cells:
        if isinstance(cell, bytes):
            assert key.encode() not in cell
        else:
            assert key not in str(cell)


def test_the_next_login_replaces_the_legacy_key_with_a_token(
    client, django_table, user_factory, settings, clock
):
    user = user_factory()
    key = log_in_with_django(client, user)
    run_import()
    settings.SCS = {"ACCEPT_LEGACY_TOKENS": True}

    client.post("/accounts/login/", {"username": user.username, "password": PASSWORD})
    token = client.cookies[COOKIE].value

    assert tokens.is_well_formed(token) and not tokens.is_legacy(token)
    assert client.get("/read/").wsgi_request.user == user
    assert not SessionStore().exists(key)
    assert not Session.objects.filter(key_hash=tokens.hash_token(key)).exists()


def test_without_legacy_tokens_the_old_cookie_is_ignored(
    client, django_table, user_factory, clock
):
    log_in_with_django(client, user_factory())
    lines = run_import()
    assert lines[1] == (
        'SCS["ACCEPT_LEGACY_TOKENS"] is off: imported sessions do not answer to '
        "their cookies until you turn it on."
    )
    assert not client.get("/read/").wsgi_request.user.is_authenticated


def test_running_it_twice_imports_nothing_the_second_time(
    client, django_table, user_factory, clock
):
    for _ in range(3):
        log_in_with_django(client, user_factory())
    first = run_import("--batch-size", "2")
    columns = ("key_hash", "data", "created_at", "expiry")
    stored = list(Session.objects.order_by("key_hash").values_list(*columns))
    clock.shift(timedelta(minutes=5))
    second = run_import("--batch-size", "2")

    assert SUMMARY.fullmatch(first[0]).groups() == ("3", "0", "0")
    assert SUMMARY.fullmatch(second[0]).groups() == ("0", "3", "0")
    assert list(Session.objects.order_by("key_hash").values_list(*columns)) == stored


def test_deadlines_of_an_imported_session(django_table, settings, clock):
    with django_engine():
        default = django_store()
        default["n"] = 1
        default.create()
        two_hours = django_store()
        two_hours["n"] = 2
        two_hours.set_expiry(7200)
        two_hours.create()
    clock.shift(timedelta(hours=1))
    settings.SCS = {"IDLE_TIMEOUT": 3600}

    import_django_sessions()

    now = START + timedelta(hours=1)
    imported = Session.objects.get(key_hash=tokens.hash_token(default.session_key))
    # Django would have ended it at START + SESSION_COOKIE_AGE: so do we.
    assert imported.absolute_expiry == START + timedelta(
        seconds=settings.SESSION_COOKIE_AGE
    )
    # Django does not record when a session began: its life here starts now.
    assert imported.created_at == imported.last_seen == now
    assert imported.expiry == now + timedelta(hours=1)  # the site's idle timeout
    custom = Session.objects.get(key_hash=tokens.hash_token(two_hours.session_key))
    # set_expiry(7200) stays a per-session idle timeout, within Django's deadline.
    assert custom.absolute_expiry == custom.expiry == START + timedelta(hours=2)


def test_only_live_usable_sessions_are_imported(
    client, django_table, user_factory, clock
):
    with django_engine():
        expired = django_store()
        expired["n"] = 1
        expired.set_expiry(60)
        expired.create()
        empty = django_store()
        empty.create()
        tampered = django_store()
        tampered["n"] = 2
        tampered.create()
        live = django_store()
        live["n"] = 3
        live.create()
        odd_key = django_store()
        odd_key["n"] = 4
        odd_key.create()
    gone = user_factory()
    log_in_with_django(client, gone)
    gone.delete()
    with connections[django_table].cursor() as cursor:
        cursor.execute(
            "UPDATE django_session SET session_data = %s WHERE session_key = %s",
            ["eyJuIjoyfQ:forged:signature", tampered.session_key],
        )
        cursor.execute(
            "UPDATE django_session SET session_key = %s WHERE session_key = %s",
            [odd_key.session_key.upper(), odd_key.session_key],
        )
    clock.shift(timedelta(minutes=2))

    result = import_django_sessions()

    assert (result.imported, result.already_present, result.skipped) == (1, 0, 4)
    assert set(Session.objects.values_list("key_hash", flat=True)) == {
        tokens.hash_token(live.session_key)
    }
    with override_settings(SCS={"ACCEPT_LEGACY_TOKENS": True}):
        assert SessionStore(live.session_key)["n"] == 3


def test_saved_after_leaves_out_sessions_ended_after_the_first_run(
    client, django_table, user_factory, settings, clock
):
    user = user_factory()
    key = log_in_with_django(client, user)
    first = run_import()
    hint = first[-1]
    settings.SCS = {"ACCEPT_LEGACY_TOKENS": True}
    # On the new engine the user logs out: our copy is gone, Django's row stays.
    clock.shift(timedelta(minutes=1))
    client.post("/accounts/logout/")
    assert not Session.objects.exists()
    # Meanwhile a server still on Django's engine logs in another visitor.
    clock.shift(timedelta(minutes=1))
    straggler = log_in_with_django(Client(), user_factory())

    since = hint.rsplit(" ", 1)[-1]
    assert hint == (
        "To copy the sessions Django saves after this run, run again with "
        f"--saved-after {since}"
    )
    second = run_import("--saved-after", since)

    assert SUMMARY.fullmatch(second[0]).groups() == ("1", "0", "0")
    assert set(Session.objects.values_list("key_hash", flat=True)) == {
        tokens.hash_token(straggler)
    }
    # Whoever kept a copy of the logged-out cookie gets nothing back.
    thief = client_with(key)
    assert not thief.get("/read/").wsgi_request.user.is_authenticated


def test_dry_run_writes_nothing(client, django_table, user_factory, clock):
    log_in_with_django(client, user_factory())
    (line,) = run_import("--dry-run")
    assert re.fullmatch(
        r"would import 1 sessions from django_session in \d+\.\d\ds; "
        r"0 already present, 0 skipped",
        line,
    )
    assert not Session.objects.exists()


def test_progress_on_a_terminal(client, django_table, user_factory, clock):
    for _ in range(3):
        log_in_with_django(client, user_factory())
    out = Tty()
    call_command("scs_import_sessions", "--batch-size", "2", stdout=out)
    assert "\rImporting from django_session: 2/3 (66%)" in out.getvalue()
    assert "\rImporting from django_session: 3/3 (100%)" in out.getvalue()


def test_no_django_table_is_a_command_error(db_alias):
    with pytest.raises(CommandError, match="has no django_session table"):
        call_command("scs_import_sessions", stdout=io.StringIO())


@pytest.mark.parametrize(
    "value, accepted",
    [
        ("abcdefghijklmnopqrstuvwxyz012345", True),
        ("abcdefghijklmnopqrstuvwxyz01234", False),
        ("abcdefghijklmnopqrstuvwxyz0123456", False),
        ("ABCDEFGHIJKLMNOPQRSTUVWXYZ012345", False),
        ("abcdefghijklmnopqrstuvwxyz01234-", False),
    ],
)
def test_legacy_keys_are_well_formed_only_when_accepted(settings, value, accepted):
    assert not tokens.is_well_formed(value)
    settings.SCS = {"ACCEPT_LEGACY_TOKENS": True}
    assert tokens.is_well_formed(value) is accepted
    assert tokens.is_well_formed(tokens.new_token())


def test_accept_legacy_tokens_must_be_a_bool(settings):
    from scs_django.checks import check_settings

    settings.SCS = {"ACCEPT_LEGACY_TOKENS": "yes"}
    assert ids_and_messages(check_settings()) == [
        (
            "scs_django.E002",
            "SCS[\"ACCEPT_LEGACY_TOKENS\"] is 'yes'; it must be True or False.",
        )
    ]
