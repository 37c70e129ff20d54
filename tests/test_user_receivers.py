"""Sessions end when their user's password changes, or the user is deactivated
or deleted; the session that changed the password stays."""

import pytest
from django.contrib.auth import get_user_model
from django.db import connections
from django.db.models.signals import post_init
from django.test.utils import CaptureQueriesContext

from scs_django.models import Session
from scs_django.signals import session_revoked
from tests.factories import PASSWORD
from tests.utils import is_live, logged_in, token_of, user_of

pytestmark = pytest.mark.django_db(databases="__all__")

NEW_PASSWORD = "a new Passw0rd!"


def change_password(client):
    return client.post(
        "/accounts/password_change/",
        {
            "old_password": PASSWORD,
            "new_password1": NEW_PASSWORD,
            "new_password2": NEW_PASSWORD,
        },
    )


def test_password_change_ends_the_other_sessions_and_keeps_this_one(
    client, db_alias, user_factory
):
    user, bystander = user_factory(), user_factory()
    client.force_login(user)
    other = logged_in(user)
    unrelated = logged_in(bystander)
    before = token_of(client)

    response = change_password(client)

    assert response.status_code == 302, response.content
    assert token_of(client) != before  # update_session_auth_hash renewed it
    assert user_of(client) == str(user.pk)
    # Ended in the store, not just refused later by Django's auth hash check.
    assert not is_live(other)
    assert user_of(other) is None
    assert Session.objects.filter(user=user).count() == 1
    assert user_of(unrelated) == str(bystander.pk)


def test_without_the_setting_a_password_change_leaves_the_rows(
    client, db_alias, settings, user_factory
):
    settings.SCS = {"REVOKE_ON_PASSWORD_CHANGE": False}
    user = user_factory()
    client.force_login(user)
    other = logged_in(user)
    assert change_password(client).status_code == 302
    assert is_live(other)
    assert user_of(client) == str(user.pk)


def test_password_set_outside_a_request_ends_every_session(db_alias, user_factory):
    user = user_factory()
    first, second = logged_in(user), logged_in(user)
    user.set_password(NEW_PASSWORD)
    user.save()
    assert not is_live(first) and not is_live(second)


def test_password_set_on_a_user_loaded_without_it_ends_every_session(
    db_alias, user_factory
):
    user = user_factory()
    client = logged_in(user)
    partial = get_user_model().objects.only("username").get(pk=user.pk)
    partial.set_password(NEW_PASSWORD)
    partial.save()
    assert not is_live(client)


def test_saves_that_keep_password_and_active_flag_end_nothing(
    client, db_alias, user_factory
):
    user = user_factory()
    first = logged_in(user)
    user.first_name = "Ada"
    user.save()
    user.save(update_fields=["last_login"])
    # Changed but not saved: not a change yet.
    user.set_password(NEW_PASSWORD)
    user.save(update_fields=["first_name"])
    # Logging in elsewhere saves last_login on the same user.
    client.post("/accounts/login/", {"username": user.username, "password": PASSWORD})
    assert is_live(first)
    assert user_of(first) == str(user.pk)


def test_deactivation_ends_every_session_of_the_user(db_alias, user_factory):
    user, bystander = user_factory(), user_factory()
    first, second = logged_in(user), logged_in(user)
    unrelated = logged_in(bystander)
    user.is_active = False
    user.save()
    for client in (first, second):
        assert not is_live(client)
        assert user_of(client) is None
    assert user_of(unrelated) == str(bystander.pk)


def test_deactivation_through_the_admin_ends_the_sessions(
    client, db_alias, user_factory
):
    admin = user_factory(is_staff=True, is_superuser=True)
    user = user_factory()
    device = logged_in(user)
    client.force_login(admin)
    response = client.post(
        f"/admin/auth/user/{user.pk}/change/",
        {
            "username": user.username,
            "email": user.email,
            "is_active": "",
            "date_joined_0": "2026-01-01",
            "date_joined_1": "00:00:00",
        },
    )
    assert response.status_code == 302, response.content
    assert not is_live(device)
    assert user_of(client) == str(admin.pk)


def test_deleting_a_user_ends_their_sessions(db_alias, user_factory):
    user, bystander = user_factory(), user_factory()
    first, second = logged_in(user), logged_in(user)
    unrelated = logged_in(bystander)
    received = []

    def receiver(sender, user, count, **kwargs):
        received.append((user.username, count))

    session_revoked.connect(receiver)
    try:
        user.delete()
    finally:
        session_revoked.disconnect(receiver)
    assert received == [(user.username, 2)]
    assert not is_live(first) and not is_live(second)
    assert user_of(first) is None
    assert is_live(unrelated)


def test_loading_a_user_runs_nothing_of_scs_django():
    # Every signed-in request loads its user: no receiver of ours runs then.
    assert not post_init.has_listeners(get_user_model())


def test_only_a_save_that_writes_a_watched_field_reads_the_stored_row(
    db_alias, user_factory
):
    user = user_factory()
    with CaptureQueriesContext(connections[db_alias]) as login_update:
        user.save(update_fields=["last_login"])  # what every login does
    assert len(login_update) == 1
    with CaptureQueriesContext(connections[db_alias]) as full_save:
        user.first_name = "Ada"
        user.save()
    # The stored password hash and active flag, then the UPDATE.
    assert [q["sql"].split()[0] for q in full_save] == ["SELECT", "UPDATE"]


def test_a_password_changed_by_another_instance_is_seen(db_alias, user_factory):
    user = user_factory()
    device = logged_in(user)
    stale = get_user_model().objects.get(pk=user.pk)
    fresh = get_user_model().objects.get(pk=user.pk)
    fresh.first_name = "Ada"
    fresh.save()
    assert is_live(device)
    stale.set_password(NEW_PASSWORD)
    stale.save()
    assert not is_live(device)
