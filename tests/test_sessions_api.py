"""scs_django.sessions: listing a user's sessions and ending them."""

from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth.models import AnonymousUser
from django.test import Client, RequestFactory
from django.utils import timezone

from scs_django import sessions
from scs_django.backends.db import SessionStore
from scs_django.models import Session
from tests.utils import hash_of, is_live, logged_in, token_of, user_of

pytestmark = pytest.mark.django_db(databases="__all__")


def expire(client):
    Session.objects.filter(key_hash=hash_of(client)).update(
        expiry=timezone.now() - timedelta(seconds=1)
    )


def test_for_user_lists_the_users_live_sessions_and_nothing_else(
    db_alias, user_factory
):
    alice, bob = user_factory(), user_factory()
    first, second = logged_in(alice), logged_in(alice)
    logged_in(bob)
    Client().get("/write/")  # an anonymous session
    expired = logged_in(alice)
    expire(expired)

    listed = sessions.for_user(alice)

    assert {s.key_hash for s in listed} == {hash_of(first), hash_of(second)}
    assert {s.user_id for s in listed} == {alice.pk}
    assert not any(s.is_current for s in listed)
    assert listed[0].last_seen >= listed[1].last_seen
    row = Session.objects.get(key_hash=hash_of(first))
    [info] = [s for s in listed if s.key_hash == row.key_hash]
    assert (info.created_at, info.last_seen, info.expiry, info.absolute_expiry) == (
        row.created_at,
        row.last_seen,
        row.expiry,
        row.absolute_expiry,
    )


def test_for_user_marks_the_session_of_the_request(client, db_alias, user_factory):
    user = user_factory()
    client.force_login(user)
    logged_in(user)
    listed = client.get("/my-sessions/").json()["sessions"]
    assert len(listed) == 2
    assert [s["hash_prefix"] for s in listed if s["is_current"]] == [
        hash_of(client)[:8]
    ]


def test_a_session_whose_renewal_waits_for_the_response_is_still_current(
    db_alias, user_factory
):
    user = user_factory()
    client = logged_in(user)
    request = RequestFactory().get("/")
    request.session = SessionStore(token_of(client))
    request.session.state.defer_renewal = True
    request.session.cycle_key()  # stored under the old hash until saved
    [listed] = sessions.for_user(user, request)
    assert listed.is_current
    assert sessions.revoke(user, keep=request.session) == 0
    assert is_live(client)


def test_a_listed_session_shows_neither_token_nor_full_hash(db_alias, user_factory):
    user = user_factory()
    client = logged_in(user)
    [listed] = sessions.for_user(user)
    full, token = hash_of(client), token_of(client)
    for text in (repr(listed), str(listed)):
        assert full not in text
        assert token not in text
    assert listed.hash_prefix == full[:8]
    assert str(listed) == f"session {full[:8]}"


def test_nothing_to_list_or_end_for_an_anonymous_user(db_alias):
    Client().get("/write/")
    assert sessions.for_user(AnonymousUser()) == []
    assert sessions.revoke(AnonymousUser()) == 0
    assert sessions.revoke_session("0" * 8, user=AnonymousUser()) == 0


def test_revoke_ends_every_session_of_the_user_only(db_alias, user_factory):
    alice, bob = user_factory(), user_factory()
    first, second = logged_in(alice), logged_in(alice)
    bystander = logged_in(bob)
    anonymous = Client()
    anonymous.get("/write/")

    assert sessions.revoke(alice) == 2

    assert not is_live(first) and not is_live(second)
    assert user_of(first) is None and user_of(second) is None
    assert user_of(bystander) == str(bob.pk)
    assert is_live(anonymous)


def test_log_out_everywhere_else_keeps_only_the_current_session(
    client, db_alias, user_factory
):
    user = user_factory()
    client.force_login(user)
    others = [logged_in(user) for _ in range(3)]

    assert client.post("/my-sessions/end-others/").json() == {"ended": 3}

    assert user_of(client) == str(user.pk)
    for other in others:
        assert not is_live(other)
        assert user_of(other) is None
    assert Session.objects.filter(user=user).count() == 1


def test_expired_sessions_are_not_counted_as_revoked(db_alias, user_factory):
    user = user_factory()
    live, expired = logged_in(user), logged_in(user)
    expire(expired)
    assert sessions.revoke(user) == 1
    assert not is_live(live)


def test_revoke_session_by_hash_prefix(db_alias, user_factory):
    user = user_factory()
    first, second, third = logged_in(user), logged_in(user), logged_in(user)
    assert sessions.revoke_session(hash_of(first)[:8], user=user) == 1
    assert not is_live(first) and is_live(second)
    # Longer, upper-case and padded prefixes name a session too.
    assert sessions.revoke_session(f" {hash_of(second)[:20].upper()} ", user=user) == 1
    assert sessions.revoke_session(hash_of(third), user=user) == 1
    assert Session.objects.filter(user=user).count() == 0
    assert user_of(first) is None


def test_revoke_session_by_id(db_alias, user_factory):
    user = user_factory()
    first, second = logged_in(user), logged_in(user)
    row = Session.objects.get(key_hash=hash_of(first))
    assert sessions.revoke_session(row.pk, user=user) == 1
    assert not is_live(first) and is_live(second)
    assert sessions.revoke_session(row.pk, user=user) == 0


def test_revoke_session_never_ends_another_users_session(db_alias, user_factory):
    alice, bob = user_factory(), user_factory()
    logged_in(alice)
    bobs = logged_in(bob)
    row = Session.objects.get(key_hash=hash_of(bobs))
    assert sessions.revoke_session(hash_of(bobs)[:8], user=alice) == 0
    assert sessions.revoke_session(row.pk, user=alice) == 0
    assert is_live(bobs)
    assert user_of(bobs) == str(bob.pk)


@pytest.mark.parametrize(
    "name",
    ["", "1234567", "abc", "xyz12345", "12345678-", "0" * 65, 3.5, True, None],
)
def test_revoke_session_refuses_what_cannot_name_a_session(
    db_alias, user_factory, name
):
    user = user_factory()
    client = logged_in(user)
    with pytest.raises(ValueError, match="hash"):
        sessions.revoke_session(name, user=user)
    assert is_live(client)


def test_an_ambiguous_hash_prefix_is_refused(db_alias, user_factory):
    user = user_factory()
    template = Session.objects.get(key_hash=hash_of(logged_in(user)))
    for last in "01":
        template.pk, template.key_hash = None, "deadbeef" + last * 56
        template.save(force_insert=True)
    with pytest.raises(ValueError, match="2 sessions of this user start with"):
        sessions.revoke_session("deadbeef", user=user)
    assert Session.objects.filter(user=user).count() == 3
    assert sessions.revoke_session("deadbeef1", user=user) == 1
    assert Session.objects.filter(user=user).count() == 2


def test_each_engine_primitive_is_one_statement(
    db_alias, user_factory, count_session_queries
):
    user = user_factory()
    kept, *others = [logged_in(user) for _ in range(3)]

    with count_session_queries(db_alias) as ctx:
        assert len(SessionStore.user_sessions(user.pk)) == 3
    assert len(ctx.queries) == 1, ctx.queries

    with count_session_queries(db_alias) as ctx:
        assert SessionStore.revoke_keys([hash_of(others[0])]) == 1
    assert len(ctx.queries) == 1, ctx.queries
    assert ctx.queries[0]["sql"].lstrip().upper().startswith("DELETE")

    with count_session_queries(db_alias) as ctx:
        assert SessionStore.revoke_user(user.pk, keep_hash=hash_of(kept)) == 1
    assert len(ctx.queries) == 1, ctx.queries
    assert ctx.queries[0]["sql"].lstrip().upper().startswith("DELETE")
    assert is_live(kept)

    with count_session_queries(db_alias) as ctx:
        assert SessionStore.revoke_keys([]) == 0
    assert ctx.queries == []


def test_async_twins(db_alias, user_factory):
    user = user_factory()
    first, second, third = logged_in(user), logged_in(user), logged_in(user)
    request = RequestFactory().get("/")
    request.session = SessionStore(token_of(first))

    listed = async_to_sync(sessions.afor_user)(user, request)
    assert {s.key_hash for s in listed} == {hash_of(c) for c in (first, second, third)}
    assert [s.key_hash for s in listed if s.is_current] == [hash_of(first)]

    row = Session.objects.get(key_hash=hash_of(second))
    assert async_to_sync(sessions.arevoke_session)(row.pk, user=user) == 1
    assert async_to_sync(sessions.arevoke_session)(hash_of(third)[:8], user=user) == 1
    assert async_to_sync(sessions.arevoke)(user, keep=request.session) == 0
    assert async_to_sync(sessions.arevoke)(user) == 1
    assert Session.objects.filter(user=user).count() == 0
