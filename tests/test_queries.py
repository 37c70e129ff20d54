"""SQL statements per request, counted on PostgreSQL and SQLite.

These run in autocommit mode (transaction=True) like a real request, so what
is counted is every statement the request sends, savepoints included.
"""

import pytest
import time_machine
from django.conf import settings as django_settings

from tests.factories import PASSWORD
from tests.utils import start_session

pytestmark = pytest.mark.django_db(databases="__all__", transaction=True)

COOKIE = django_settings.SESSION_COOKIE_NAME


def test_request_that_does_not_touch_the_session_runs_no_statement(
    client, db_alias, count_session_queries
):
    start_session(client)
    with count_session_queries(db_alias) as ctx:
        response = client.get("/untouched/")
    assert ctx.queries == []
    assert COOKIE not in response.cookies


def test_reading_an_existing_session_is_one_statement(
    client, db_alias, count_session_queries
):
    start_session(client)
    with count_session_queries(db_alias) as ctx:
        response = client.get("/read/")
    assert response.json()["value"] == "cart"
    assert len(ctx.queries) == 1, ctx.queries
    assert COOKIE not in response.cookies


def test_writing_an_existing_session_is_two_statements(
    client, db_alias, count_session_queries
):
    start_session(client)
    with count_session_queries(db_alias) as ctx:
        client.get("/write/", {"value": "changed"})
    assert len(ctx.queries) == 2, ctx.queries
    assert client.get("/read/").json()["value"] == "changed"


def test_creating_a_session_is_one_statement(client, db_alias, count_session_queries):
    with count_session_queries(db_alias) as ctx:
        response = client.get("/write/")
    assert len(ctx.queries) == 1, ctx.queries
    assert ctx.queries[0]["sql"].lstrip().upper().startswith("INSERT")
    assert COOKIE in response.cookies


def test_login_on_top_of_an_anonymous_session_is_at_most_three_session_statements(
    client, db_alias, count_session_queries, user_factory
):
    user = user_factory()
    anonymous = start_session(client)
    with count_session_queries(db_alias) as ctx:
        response = client.post(
            "/accounts/login/", {"username": user.username, "password": PASSWORD}
        )
    assert response.status_code == 302
    assert len(ctx.session_queries) <= 3, ctx.session_queries
    assert client.cookies[COOKIE].value != anonymous


@pytest.mark.parametrize("elapsed, statements", [(59, 1), (60, 2)])
def test_idle_timeout_costs_a_statement_only_once_per_touch_interval(
    client, db_alias, count_session_queries, settings, elapsed, statements
):
    settings.SCS = {"IDLE_TIMEOUT": 600, "TOUCH_INTERVAL": 60}
    with time_machine.travel("2026-03-01 12:00:00+00:00", tick=False) as clock:
        start_session(client)
        clock.shift(elapsed)
        with count_session_queries(db_alias) as ctx:
            response = client.get("/read/")
    assert response.json()["value"] == "cart"
    assert len(ctx.queries) == statements, ctx.queries
    assert COOKIE not in response.cookies
