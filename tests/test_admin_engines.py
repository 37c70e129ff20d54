"""The session list says whose sessions it shows, on every engine.

The cache engine keeps no rows in the session table; rows left there by a
database engine used before are not live sessions, and the list must not show
them as such.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from scs_django import tokens
from scs_django.backends import db
from scs_django.models import Session
from tests.utils import logged_in

pytestmark = pytest.mark.django_db(databases="__all__")

URL = "/admin/scs_django/session/"


@pytest.fixture
def staff(engine, user_factory):
    """A superuser's client, logged in on the engine under test."""
    return logged_in(user_factory(is_staff=True, is_superuser=True))


def leftover_row(ended=False):
    """A row written by the db engine, whatever SESSION_ENGINE says now; live,
    or ended an hour ago."""
    store = db.SessionStore()
    store["value"] = "from the db engine"
    store.create()
    rows = Session.objects.filter(key_hash=tokens.hash_token(store.session_key))
    if ended:
        rows.update(expiry=timezone.now() - timedelta(hours=1))
    return rows.get()


@pytest.mark.parametrize("engine", ["cache-redis"], indirect=True)
def test_rows_of_an_engine_not_in_use_are_not_shown_as_live(engine, staff):
    row, ended = leftover_row(), leftover_row(ended=True)
    response = staff.get(URL)
    assert response.status_code == 200
    html = response.content.decode()
    assert row.key_hash[:8] in html
    assert "scs_django.backends.cache" in html
    assert "not the sessions in use" in html
    assert ended.key_hash[:8] in html
    assert "Active" not in html and "expired" not in html  # no state at all
    assert response.context["action_form"] is None  # nothing to revoke here

    detail = staff.get(f"{URL}{row.pk}/change/")
    assert detail.status_code == 200
    assert "Active" not in detail.content.decode()


@pytest.mark.parametrize(
    "engine", ["db-postgresql", "db-sqlite", "cached_db-redis"], indirect=True
)
def test_the_list_names_the_engine_whose_sessions_it_shows(engine, staff):
    ended = leftover_row(ended=True)
    response = staff.get(URL)
    html = response.content.decode()
    assert engine.spec.module in html
    assert "not the sessions in use" not in html
    assert "Active" in html  # the state filter
    assert "Idle-expired, " in html  # beside the ended session's expiry
    assert ended.key_hash[:8] in html
    assert "revoke_selected" in html
