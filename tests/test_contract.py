"""The behavioural contract every scs_django session engine keeps.

Each test talks to an engine only through Django's ``SessionBase`` API and
scs_django's additions, and runs once per engine of tests/engines.py: db on
PostgreSQL and on SQLite, cache on Redis and on LocMem, cached_db on
PostgreSQL + Redis. ``engine.stored`` looks at what the engine wrote (rows,
Redis hashes or cache entries). Where an engine keeps a weaker guarantee, the
test says so next to the assertion for that engine.

Async twins are driven from sync tests with ``async_to_sync``: their database
work then runs on the test's own connection, inside pytest-django's
transaction.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from typing import Any

import pytest
import time_machine
from asgiref.sync import async_to_sync
from django.conf import settings as django_settings
from django.contrib.sessions.backends.base import CreateError, UpdateError

from scs_django import codec, tokens
from scs_django.exceptions import SessionNotSerializable, SessionTooLarge

pytestmark = pytest.mark.django_db(databases="__all__")

TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{43}")

# A whole second, so stored and computed datetimes compare exactly.
START = datetime(2031, 3, 14, 9, 26, 53, tzinfo=dt_timezone.utc)

MALFORMED_KEYS = [
    pytest.param("", id="empty"),
    pytest.param("1", id="short"),
    pytest.param("x" * 42 + "!", id="bad-character"),
    pytest.param("x" * 42 + "=", id="padding"),
    pytest.param("x" * 44, id="overlong"),
    pytest.param("x" * 42, id="one-short"),
    pytest.param("x" * 42 + "\x00", id="nul"),
    pytest.param("é" * 43, id="non-ascii"),
    pytest.param("' OR 1=1 --" + "x" * 32, id="sql"),
]
MALFORMED_OR_MISSING_KEYS = [*MALFORMED_KEYS, pytest.param(None, id="none")]


@pytest.fixture
def session(store_class):
    return store_class()


@pytest.fixture
def no_queries(engine):
    """Context manager asserting that nothing is sent to any store."""
    return engine.no_traffic


def saved_session(store_class: Any, expiry: Any = None, **data: Any) -> Any:
    """A new session holding ``data`` (default ``colour="blue"``), saved."""
    session = store_class()
    session.update(data or {"colour": "blue"})
    if expiry is not None:
        session.set_expiry(expiry)
    session.save()
    return session


# -- a new session ------


def test_new_session_is_empty_untouched_and_has_no_key(session):
    assert session.session_key is None
    assert session.modified is False
    assert session.accessed is False
    assert session.is_empty()
    assert dict(session.items()) == {}


def test_session_key_cannot_be_assigned(session):
    with pytest.raises(AttributeError):
        session.session_key = tokens.new_token()


def test_reading_a_missing_key_gives_none_or_the_default(session):
    assert session.get("colour") is None
    assert session.get("colour", "grey") == "grey"
    assert "colour" not in session
    with pytest.raises(KeyError):
        session["colour"]
    assert session.accessed is True
    assert session.modified is False


def test_setting_a_value_marks_the_session_modified(session):
    session["colour"] = "blue"
    assert session.modified is True
    assert session["colour"] == "blue"
    assert session.get("colour", "grey") == "blue"
    assert "colour" in session
    assert not session.is_empty()


def test_deleting_a_value_marks_the_session_modified(session):
    session["colour"] = "blue"
    session.modified = False
    del session["colour"]
    assert session.modified is True
    assert "colour" not in session


def test_pop_returns_an_existing_value_and_marks_modified(session):
    session["colour"] = "blue"
    session.modified = session.accessed = False
    assert session.pop("colour") == "blue"
    assert session.accessed is True
    assert session.modified is True
    assert "colour" not in session


def test_pop_of_a_missing_key_returns_the_default_without_marking_modified(session):
    assert session.pop("colour", "grey") == "grey"
    assert session.accessed is True
    assert session.modified is False


def test_pop_of_a_missing_key_without_default_raises_key_error(session):
    with pytest.raises(KeyError):
        session.pop("colour")
    assert session.modified is False


def test_setdefault_sets_only_a_missing_key(session):
    assert session.setdefault("colour", "blue") == "blue"
    assert session.modified is True
    session.modified = False
    assert session.setdefault("colour", "red") == "blue"
    assert session["colour"] == "blue"
    assert session.modified is False


def test_update_sets_values_and_marks_modified(session):
    session.update({"colour": "blue", "size": 3})
    assert session.modified is True
    assert session.accessed is True
    assert session["colour"] == "blue"
    assert session["size"] == 3


def test_keys_values_and_items_read_without_modifying(session):
    session.update({"colour": "blue", "size": 3})
    session.modified = session.accessed = False
    assert sorted(session.keys()) == ["colour", "size"]
    assert sorted(map(str, session.values())) == ["3", "blue"]
    assert sorted(session.items()) == [("colour", "blue"), ("size", 3)]
    assert session.accessed is True
    assert session.modified is False


def test_has_key_reads_without_modifying(session):
    session["colour"] = "blue"
    session.modified = session.accessed = False
    assert session.has_key("colour")
    assert not session.has_key("size")
    assert session.accessed is True
    assert session.modified is False


def test_clear_empties_the_session_and_marks_modified(session):
    session["colour"] = "blue"
    session.modified = session.accessed = False
    session.clear()
    assert dict(session.items()) == {}
    assert session.accessed is True
    assert session.modified is True


def test_test_cookie_helpers(session):
    assert not session.test_cookie_worked()
    session.set_test_cookie()
    assert session.test_cookie_worked()
    assert session.modified is True
    session.delete_test_cookie()
    assert not session.test_cookie_worked()
    assert dict(session.items()) == {}


# -- storing and loading ------


def test_saved_data_loads_in_a_new_store_with_the_same_key(store_class, session):
    session.update({"colour": "blue", "sizes": [1, 2], "nested": {"a": None}})
    session.save()
    loaded = store_class(session.session_key)
    assert loaded.load() == {"colour": "blue", "sizes": [1, 2], "nested": {"a": None}}
    assert loaded.session_key == session.session_key


def test_loading_a_stored_session_does_not_mark_it_modified(store_class):
    key = saved_session(store_class).session_key
    loaded = store_class(key)
    assert loaded["colour"] == "blue"
    assert loaded.accessed is True
    assert loaded.modified is False
    assert not loaded.is_empty()


def test_saving_a_new_session_creates_it_under_a_fresh_token(session, engine):
    session["colour"] = "blue"
    session.save()
    assert TOKEN_RE.fullmatch(session.session_key)
    assert session.exists(session.session_key)
    assert engine.stored.hashes() == {tokens.hash_token(session.session_key)}


def test_saving_an_existing_session_updates_it_under_the_same_key(store_class, engine):
    key = saved_session(store_class).session_key
    loaded = store_class(key)
    loaded["colour"] = "red"
    loaded["size"] = 3
    loaded.save()
    assert loaded.session_key == key
    assert store_class(key).load() == {"colour": "red", "size": 3}
    assert engine.stored.hashes() == {tokens.hash_token(key)}


def test_every_new_session_gets_its_own_token(store_class):
    keys = {saved_session(store_class).session_key for _ in range(5)}
    assert len(keys) == 5


def test_exists_is_true_after_save_and_false_for_an_unknown_token(session):
    assert not session.exists(tokens.new_token())
    session["colour"] = "blue"
    session.save()
    assert session.exists(session.session_key)


@pytest.mark.parametrize("key", MALFORMED_OR_MISSING_KEYS)
def test_exists_is_false_for_malformed_keys_without_a_query(session, no_queries, key):
    with no_queries():
        assert session.exists(key) is False


def test_create_stores_an_empty_session_under_a_43_character_token(
    store_class, session, engine
):
    session.create()
    key = session.session_key
    assert TOKEN_RE.fullmatch(key)
    assert session.exists(key)
    assert engine.stored.get(tokens.hash_token(key)) is not None
    assert store_class(key).load() == {}


def test_create_on_a_session_with_a_key_stores_a_new_token(store_class):
    first = saved_session(store_class)
    old_key = first.session_key
    first.create()
    assert first.session_key != old_key
    assert first.exists(first.session_key)


def test_save_must_create_on_an_existing_key_raises_create_error(store_class):
    key = saved_session(store_class).session_key
    other = store_class(key)
    with pytest.raises(CreateError):
        other.save(must_create=True)
    assert store_class(key).load() == {"colour": "blue"}


def test_delete_removes_the_current_session(store_class, engine):
    session = saved_session(store_class)
    key = session.session_key
    session.delete()
    assert not session.exists(key)
    assert engine.stored.get(tokens.hash_token(key)) is None
    assert store_class(key).load() == {}


def test_delete_with_an_explicit_key_removes_that_session_only(store_class, engine):
    victim = saved_session(store_class, colour="red")
    bystander = saved_session(store_class, colour="green")
    store_class().delete(victim.session_key)
    assert not bystander.exists(victim.session_key)
    assert engine.stored.hashes() == {bystander.key_hash}
    assert store_class(bystander.session_key).load() == {"colour": "green"}


def test_delete_of_an_unknown_token_is_a_no_op(store_class, engine):
    kept = saved_session(store_class)
    store_class().delete(tokens.new_token())
    store_class(tokens.new_token()).delete()
    assert engine.stored.hashes() == {kept.key_hash}


@pytest.mark.parametrize("key", MALFORMED_KEYS)
def test_delete_of_a_malformed_key_is_a_no_op_without_a_query(
    store_class, engine, no_queries, key
):
    kept = saved_session(store_class)
    with no_queries():
        store_class().delete(key)
        store_class(key).delete()
    assert engine.stored.hashes() == {kept.key_hash}


def test_delete_of_a_session_without_key_is_a_no_op(session, no_queries):
    with no_queries():
        session.delete()


def test_flush_deletes_the_stored_session_and_starts_an_empty_one(store_class, engine):
    session = saved_session(store_class)
    key = session.session_key
    session.flush()
    assert session.session_key is None
    assert dict(session.items()) == {}
    assert session.modified is True
    assert not session.exists(key)
    assert engine.stored.hashes() == set()


def test_a_flushed_session_saves_under_a_new_token(store_class):
    session = saved_session(store_class)
    old_key = session.session_key
    session.flush()
    session["colour"] = "red"
    session.save()
    assert session.session_key not in (None, old_key)
    assert not session.exists(old_key)
    assert store_class(session.session_key).load() == {"colour": "red"}


# -- renewal ------


@pytest.mark.parametrize("method", ["cycle_key", "renew_token"])
def test_renewal_gives_a_new_token_keeps_the_data_and_kills_the_old_token(
    store_class, engine, method
):
    session = saved_session(store_class, colour="blue", size=3)
    old_key = session.session_key
    getattr(session, method)()
    new_key = session.session_key
    assert TOKEN_RE.fullmatch(new_key)
    assert new_key != old_key
    assert dict(session.items()) == {"colour": "blue", "size": 3}
    assert not session.exists(old_key)
    assert store_class(old_key).load() == {}
    assert store_class(new_key).load() == {"colour": "blue", "size": 3}
    assert engine.stored.hashes() == {tokens.hash_token(new_key)}


@pytest.mark.parametrize("method", ["cycle_key", "renew_token"])
def test_renewal_of_a_store_built_from_a_key_without_loading(store_class, method):
    old_key = saved_session(store_class, colour="blue").session_key
    fresh = store_class(old_key)
    assert fresh.accessed is False  # nothing loaded yet
    getattr(fresh, method)()
    assert fresh.session_key not in (None, old_key)
    assert dict(fresh.items()) == {"colour": "blue"}
    assert not fresh.exists(old_key)
    assert store_class(fresh.session_key).load() == {"colour": "blue"}


def test_renewal_stores_unsaved_changes_under_the_new_token(store_class):
    session = saved_session(store_class, colour="blue")
    session["size"] = 3
    session.renew_token()
    assert store_class(session.session_key).load() == {"colour": "blue", "size": 3}


def test_renewal_of_a_session_never_saved_leaves_it_without_key_until_save(
    store_class, session, engine
):
    session["colour"] = "blue"
    session.renew_token()
    assert session.session_key is None
    assert engine.stored.hashes() == set()
    session.save()
    assert TOKEN_RE.fullmatch(session.session_key)
    assert store_class(session.session_key).load() == {"colour": "blue"}


def test_old_token_holder_cannot_write_after_renewal(store_class, engine):
    holder = saved_session(store_class)
    old_key = holder.session_key
    renewed = store_class(old_key)
    renewed.renew_token()
    holder["colour"] = "red"
    with pytest.raises(UpdateError):
        holder.save()
    assert engine.stored.hashes() == {renewed.key_hash}
    assert store_class(renewed.session_key).load() == {"colour": "blue"}


def test_renewal_of_a_session_deleted_elsewhere_does_not_revive_it(store_class, engine):
    session = saved_session(store_class)
    session["size"] = 3  # loaded before the delete
    store_class().delete(session.session_key)
    session.renew_token()
    assert session.session_key is None
    assert dict(session.items()) == {}
    assert engine.stored.hashes() == set()


# -- unknown and malformed keys ------


def test_unknown_token_loads_empty_and_drops_the_key(store_class):
    unknown = tokens.new_token()
    session = store_class(unknown)
    assert session.load() == {}
    assert session.session_key is None


def test_unknown_token_is_never_adopted_by_a_save(store_class, engine):
    unknown = tokens.new_token()
    session = store_class(unknown)
    session["colour"] = "blue"
    assert session.session_key is None
    session.save()
    assert session.session_key not in (None, unknown)
    assert TOKEN_RE.fullmatch(session.session_key)
    assert engine.stored.get(tokens.hash_token(unknown)) is None
    assert not session.exists(unknown)
    assert store_class(session.session_key).load() == {"colour": "blue"}


def test_unknown_token_saved_without_reading_gets_a_new_token(store_class, engine):
    unknown = tokens.new_token()
    session = store_class(unknown)
    session.save()
    assert session.session_key not in (None, unknown)
    assert engine.stored.hashes() == {tokens.hash_token(session.session_key)}


@pytest.mark.parametrize("key", MALFORMED_KEYS)
def test_malformed_key_is_no_session_without_any_query(store_class, no_queries, key):
    with no_queries():
        session = store_class(key)
        assert session.session_key is None
        assert session.get("colour") is None
        assert session.load() == {}
        assert session.is_empty()


@pytest.mark.parametrize("key", MALFORMED_KEYS)
def test_malformed_key_saves_under_a_new_token(store_class, engine, key):
    session = store_class(key)
    session["colour"] = "blue"
    session.save()
    assert TOKEN_RE.fullmatch(session.session_key)
    assert session.session_key != key
    assert engine.stored.hashes() == {tokens.hash_token(session.session_key)}


# -- no resurrection ------


def test_session_deleted_elsewhere_is_not_resurrected_by_a_save(store_class, engine):
    first = saved_session(store_class)
    key = first.session_key
    store_class(key).delete()
    first["colour"] = "red"
    with pytest.raises(UpdateError):
        first.save()
    assert engine.stored.get(tokens.hash_token(key)) is None
    assert first.load() == {}
    assert engine.stored.hashes() == set()


def test_session_deleted_by_itself_is_not_resurrected_by_a_save(store_class, engine):
    session = saved_session(store_class)
    session.delete()
    session["colour"] = "red"
    with pytest.raises(UpdateError):
        session.save()
    assert engine.stored.hashes() == set()


def test_expired_session_is_not_resurrected_by_a_save(store_class, engine):
    with time_machine.travel(START, tick=False) as clock:
        session = saved_session(store_class, expiry=60)
        session["colour"] = "red"
        clock.shift(timedelta(seconds=61))
        with pytest.raises(UpdateError):
            session.save()
        assert store_class(session.session_key).load() == {}


# -- the token ------


def test_token_is_43_characters_of_base64url(session):
    session["colour"] = "blue"
    session.save()
    assert TOKEN_RE.fullmatch(session.session_key)


def test_stored_key_is_the_sha256_of_the_token(session, engine):
    session["colour"] = "blue"
    session.save()
    token = session.session_key
    row = engine.stored.get(tokens.hash_token(token))
    assert row is not None
    assert row["key_hash"] == tokens.hash_token(token) == session.key_hash
    assert row["key_hash"] == hashlib.sha256(token.encode("ascii")).hexdigest()
    assert len(row["key_hash"]) == 64


@pytest.mark.parametrize("renew", [False, True], ids=["created", "renewed"])
def test_no_stored_column_contains_the_token(store_class, engine, renew):
    session = saved_session(store_class, colour="blue")
    old_token = session.session_key
    if renew:
        session.renew_token()
    token = session.session_key
    row = engine.stored.get(tokens.hash_token(token))
    assert row is not None
    for name, value in row.items():
        for secret in {token, old_token}:
            if isinstance(value, bytes):
                assert secret.encode() not in value, name
            else:
                assert secret not in str(value), name
    envelope = codec.decode(row["data"], tokens.hash_token(token))
    assert envelope is not None
    assert envelope.data == {"colour": "blue"}
    assert token not in repr(envelope)
    assert old_token not in repr(envelope)


# -- expiry ------


def test_default_expiry_age_is_the_absolute_timeout(session, settings):
    assert session.get_expiry_age() == settings.SESSION_COOKIE_AGE
    settings.SESSION_COOKIE_AGE = 7200
    assert session.get_expiry_age() == 7200
    settings.SCS = {"ABSOLUTE_TIMEOUT": 3600}
    assert session.get_expiry_age() == 3600


def test_default_expiry_date_is_the_absolute_timeout_from_modification(session):
    modification = START
    assert session.get_expiry_date(
        modification=modification
    ) == modification + timedelta(seconds=django_settings.SESSION_COOKIE_AGE)


def test_set_expiry_seconds_is_an_idle_timeout_from_modification(session):
    modification = START
    session.set_expiry(10)
    assert session.get_expiry_age(modification=modification) == 10
    assert session.get_expiry_date(
        modification=modification
    ) == modification + timedelta(seconds=10)
    later = modification + timedelta(seconds=100)
    assert session.get_expiry_date(modification=later) == later + timedelta(seconds=10)


def test_set_expiry_timedelta_is_a_fixed_deadline(session):
    with time_machine.travel(START, tick=False):
        session.set_expiry(timedelta(seconds=10))
    deadline = START + timedelta(seconds=10)
    assert session.get_expiry_date(modification=START) == deadline
    assert session.get_expiry_age(modification=START) == 10
    assert (
        session.get_expiry_date(modification=START + timedelta(seconds=4)) == deadline
    )
    assert session.get_expiry_age(modification=START + timedelta(seconds=4)) == 6


def test_set_expiry_datetime_is_a_fixed_deadline(session):
    deadline = START + timedelta(seconds=10)
    session.set_expiry(deadline)
    assert session.get_expiry_date(modification=START) == deadline
    assert session.get_expiry_age(modification=START) == 10
    assert (
        session.get_expiry_date(modification=START + timedelta(seconds=7)) == deadline
    )


def test_set_expiry_never_goes_beyond_the_absolute_deadline(store_class):
    with time_machine.travel(START, tick=False):
        session = saved_session(store_class)
        absolute = session.absolute_expiry
        assert absolute == START + timedelta(seconds=django_settings.SESSION_COOKIE_AGE)
        session.set_expiry(absolute + timedelta(days=30))
        assert session.get_expiry_date() == absolute
        session.set_expiry(django_settings.SESSION_COOKIE_AGE * 2)
        assert session.get_expiry_date() == absolute
        assert session.get_expiry_age() == django_settings.SESSION_COOKIE_AGE


def test_fixed_deadline_beyond_the_absolute_one_still_ends_at_the_absolute_one(
    store_class, settings
):
    settings.SCS = {"ABSOLUTE_TIMEOUT": 3600}
    with time_machine.travel(START, tick=False) as clock:
        session = saved_session(store_class)
        session.set_expiry(START + timedelta(days=30))
        session.save()
        key = session.session_key
        clock.shift(timedelta(seconds=3599))
        assert store_class(key).get("colour") == "blue"
        clock.shift(timedelta(seconds=1))
        assert store_class(key).load() == {}


def test_set_expiry_zero_expires_at_browser_close(session):
    session.set_expiry(0)
    assert session.get_expire_at_browser_close() is True
    assert session.get_expiry_age() == django_settings.SESSION_COOKIE_AGE


def test_set_expiry_none_resets_to_the_defaults(session):
    session.set_expiry(10)
    session.set_expiry(None)
    assert "_session_expiry" not in session
    assert session.get_expiry_age() == django_settings.SESSION_COOKIE_AGE
    session.set_expiry(None)  # nothing to reset is fine too
    assert session.get_expiry_age() == django_settings.SESSION_COOKIE_AGE


@pytest.mark.parametrize("at_browser_close", [False, True])
def test_expire_at_browser_close_follows_the_setting_unless_set(
    session, settings, at_browser_close
):
    settings.SESSION_EXPIRE_AT_BROWSER_CLOSE = at_browser_close
    assert session.get_expire_at_browser_close() is at_browser_close
    session.set_expiry(10)
    assert session.get_expire_at_browser_close() is False
    session.set_expiry(0)
    assert session.get_expire_at_browser_close() is True
    session.set_expiry(None)
    assert session.get_expire_at_browser_close() is at_browser_close


def test_session_saved_with_a_past_deadline_is_gone_for_a_new_store(store_class):
    session = saved_session(store_class, expiry=-timedelta(seconds=10))
    key = session.session_key
    loaded = store_class(key)
    assert "colour" not in loaded
    assert loaded.session_key is None
    assert not session.exists(key)


def test_idle_timeout_ends_a_session_after_inactivity_only(store_class):
    with time_machine.travel(START, tick=False) as clock:
        key = saved_session(store_class, expiry=120).session_key
        clock.shift(timedelta(seconds=119))
        assert store_class(key).get("colour") == "blue"
        clock.shift(timedelta(seconds=1))
        assert store_class(key).get("colour") is None


def test_absolute_timeout_ends_a_session_despite_activity(store_class, settings):
    settings.SCS = {"ABSOLUTE_TIMEOUT": 600}
    with time_machine.travel(START, tick=False) as clock:
        session = saved_session(store_class)
        key = session.session_key
        for _ in range(5):
            clock.shift(timedelta(seconds=100))
            active = store_class(key)
            active["seen"] = active.get("seen", 0) + 1
            active.save()
        clock.shift(timedelta(seconds=99))
        assert store_class(key).get("seen") == 5
        clock.shift(timedelta(seconds=1))
        assert store_class(key).load() == {}


# -- clear_expired ------


def test_clear_expired_removes_exactly_the_expired_sessions(store_class, engine):
    with time_machine.travel(START, tick=False) as clock:
        idle = saved_session(store_class, expiry=60)
        fixed = saved_session(store_class, expiry=START + timedelta(minutes=5))
        long_idle = saved_session(store_class, expiry=3600)
        default = saved_session(store_class)
        already_past = saved_session(store_class, expiry=-timedelta(seconds=1))
        store_class.clear_expired()
        assert engine.stored.hashes() == {
            idle.key_hash,
            fixed.key_hash,
            long_idle.key_hash,
            default.key_hash,
        }
        clock.shift(timedelta(minutes=2))
        store_class.clear_expired()
        assert engine.stored.hashes() == {
            fixed.key_hash,
            long_idle.key_hash,
            default.key_hash,
        }
        clock.shift(timedelta(minutes=4))
        store_class.clear_expired()
        assert engine.stored.hashes() == {long_idle.key_hash, default.key_hash}
        assert store_class(long_idle.session_key).load() == {
            "colour": "blue",
            "_session_expiry": 3600,
        }
        # Asked on the test's clock: after it, whether Redis has dropped a
        # session stored already expired (a 1 ms TTL) is a race.
        assert not store_class().exists(already_past.session_key)


def test_clear_expired_removes_sessions_past_their_absolute_deadline(
    store_class, engine, settings
):
    settings.SCS = {"ABSOLUTE_TIMEOUT": 3600}
    with time_machine.travel(START, tick=False) as clock:
        old = saved_session(store_class)
        clock.shift(timedelta(minutes=30))
        young = saved_session(store_class)
        store_class.clear_expired()
        assert engine.stored.hashes() == {old.key_hash, young.key_hash}
        clock.shift(timedelta(minutes=30))
        store_class.clear_expired()
        assert engine.stored.hashes() == {young.key_hash}


# -- a user's sessions ------

# The generic cache path (LocMem here) keeps no per-user index: listing and
# revoking by user raise NotImplementedError (scs_django.W010 says so), and
# scs_django.sessions falls back to Django's session auth hash.
NO_USER_INDEX = {"cache-locmem"}


def user_session(store_class: Any, user: Any, **data: Any) -> Any:
    """A saved session logged in as ``user``."""
    return saved_session(store_class, _auth_user_id=str(user.pk), **data)


@pytest.fixture
def two_users(store_class, user_factory):
    """Sessions of two users and an anonymous one: (alice's two, bob's, anon)."""
    alice, bob = user_factory(), user_factory()
    sessions = (
        user_session(store_class, alice, device="laptop"),
        user_session(store_class, alice, device="phone"),
        user_session(store_class, bob, device="laptop"),
        saved_session(store_class),
    )
    return alice, bob, sessions


def test_a_session_stores_the_id_of_its_user(engine, two_users):
    alice, bob, (laptop, phone, bobs, anonymous) = two_users
    assert str(engine.stored.get(laptop.key_hash)["user_id"]) == str(alice.pk)
    assert str(engine.stored.get(bobs.key_hash)["user_id"]) == str(bob.pk)
    assert engine.stored.get(anonymous.key_hash)["user_id"] is None


def test_user_sessions_lists_the_live_sessions_of_that_user_only(
    engine, store_class, two_users
):
    alice, bob, (laptop, phone, bobs, anonymous) = two_users
    ended = user_session(store_class, alice, device="old")
    ended.delete()
    if engine.id in NO_USER_INDEX:
        with pytest.raises(NotImplementedError):
            store_class.user_sessions(alice.pk)
        return
    listed = store_class.user_sessions(alice.pk)
    assert {info.key_hash for info in listed} == {laptop.key_hash, phone.key_hash}
    info = next(info for info in listed if info.key_hash == laptop.key_hash)
    assert str(info.user_id) == str(alice.pk)
    assert info.absolute_expiry == laptop.absolute_expiry
    assert info.created_at == laptop.created_at
    assert laptop.session_key not in repr(info)
    assert {info.key_hash for info in store_class.user_sessions(bob.pk)} == {
        bobs.key_hash
    }


def test_user_sessions_leaves_out_expired_sessions(engine, store_class, user_factory):
    user = user_factory()
    with time_machine.travel(START, tick=False) as clock:
        user_session(store_class, user, _session_expiry=60)
        long = user_session(store_class, user)
        clock.shift(timedelta(seconds=61))
        if engine.id in NO_USER_INDEX:
            with pytest.raises(NotImplementedError):
                store_class.user_sessions(user.pk)
            return
        assert [info.key_hash for info in store_class.user_sessions(user.pk)] == [
            long.key_hash
        ]


def test_revoke_keys_ends_exactly_those_sessions(engine, store_class, two_users):
    alice, bob, (laptop, phone, bobs, anonymous) = two_users
    if engine.id in NO_USER_INDEX:
        with pytest.raises(NotImplementedError):
            store_class.revoke_keys([laptop.key_hash])
        assert store_class(laptop.session_key).load() != {}
        return
    assert store_class.revoke_keys([laptop.key_hash, tokens.hash_token("x" * 43)]) == 1
    assert store_class(laptop.session_key).load() == {}
    assert not store_class().exists(laptop.session_key)
    for alive in (phone, bobs, anonymous):
        assert store_class(alive.session_key).load() != {}
    assert store_class.revoke_keys([]) == 0


def test_revoked_session_is_not_resurrected_by_a_save(engine, store_class):
    session = saved_session(store_class)
    session["colour"] = "red"  # loaded before the revoke
    if engine.id in NO_USER_INDEX:
        with pytest.raises(NotImplementedError):
            store_class.revoke_keys([session.key_hash])
        session.save()  # nothing ended it, so the write lands
        assert store_class(session.session_key)["colour"] == "red"
        return
    store_class.revoke_keys([session.key_hash])
    with pytest.raises(UpdateError):
        session.save()
    assert engine.stored.hashes() == set()
    assert store_class(session.session_key).load() == {}


def test_revoke_user_ends_all_but_the_kept_session(engine, store_class, two_users):
    alice, bob, (laptop, phone, bobs, anonymous) = two_users
    if engine.id in NO_USER_INDEX:
        with pytest.raises(NotImplementedError):
            store_class.revoke_user(alice.pk, keep_hash=phone.key_hash)
        return
    assert store_class.revoke_user(alice.pk, keep_hash=phone.key_hash) == 1
    assert store_class(laptop.session_key).load() == {}
    for alive in (phone, bobs, anonymous):
        assert store_class(alive.session_key).load() != {}
    assert store_class.revoke_user(bob.pk) == 1
    assert store_class(bobs.session_key).load() == {}
    assert [i.key_hash for i in store_class.user_sessions(alice.pk)] == [phone.key_hash]


def test_async_user_sessions_and_revoke(engine, store_class, two_users):
    alice, bob, (laptop, phone, bobs, anonymous) = two_users

    async def scenario():
        listed = await store_class.auser_sessions(alice.pk)
        assert {i.key_hash for i in listed} == {laptop.key_hash, phone.key_hash}
        assert await store_class.arevoke_keys([laptop.key_hash]) == 1
        assert await store_class.arevoke_user(alice.pk) == 1
        assert await store_class.auser_sessions(alice.pk) == []

    if engine.id in NO_USER_INDEX:
        with pytest.raises(NotImplementedError):
            async_to_sync(store_class.auser_sessions)(alice.pk)
        return
    async_to_sync(scenario)()
    assert store_class(laptop.session_key).load() == {}
    assert store_class(phone.session_key).load() == {}
    assert store_class(bobs.session_key).get("device") == "laptop"


# -- size and serialisation limits ------


def test_too_large_session_is_refused_and_the_stored_one_kept(store_class, settings):
    settings.SCS = {"MAX_BYTES": 1024}
    session = saved_session(store_class, colour="blue")
    key = session.session_key
    session["essay"] = "x" * 2000
    with pytest.raises(SessionTooLarge):
        session.save()
    assert store_class(key).load() == {"colour": "blue"}


def test_too_large_new_session_stores_nothing(session, engine, settings):
    settings.SCS = {"MAX_BYTES": 1024}
    session["essay"] = "x" * 2000
    with pytest.raises(SessionTooLarge):
        session.save()
    assert engine.stored.hashes() == set()


def test_session_within_max_bytes_is_stored(session, settings, store_class):
    settings.SCS = {"MAX_BYTES": 1024}
    session["essay"] = "x" * 500
    session.save()
    assert store_class(session.session_key)["essay"] == "x" * 500


def test_unserialisable_value_is_refused_and_nothing_stored(session, engine):
    session["thing"] = object()
    with pytest.raises(SessionNotSerializable):
        session.save()
    assert engine.stored.hashes() == set()


def test_unserialisable_value_keeps_the_stored_session(store_class, engine):
    session = saved_session(store_class, colour="blue")
    session["thing"] = object()
    with pytest.raises(SessionNotSerializable):
        session.save()
    assert store_class(session.session_key).load() == {"colour": "blue"}
    assert engine.stored.hashes() == {session.key_hash}


def test_new_session_refused_once_can_be_saved_after_fixing_it(store_class, engine):
    # A save that raised wrote nothing, so it must also leave nothing behind in
    # the store object: trimming the data and saving again stores the session.
    session = store_class()
    session["colour"] = "blue"
    session["thing"] = object()
    with pytest.raises(SessionNotSerializable):
        session.save()
    del session["thing"]
    session.save()
    assert store_class(session.session_key).load() == {"colour": "blue"}
    assert engine.stored.hashes() == {session.key_hash}


# -- async twins ------


def test_aset_and_aget_roundtrip_through_a_new_store(store_class):
    async def scenario():
        session = store_class()
        await session.aset("colour", "blue")
        assert session.modified is True
        assert await session.aget("colour") == "blue"
        await session.asave()
        loaded = store_class(session.session_key)
        assert await loaded.aget("colour") == "blue"
        assert await loaded.aget("size") is None
        assert await loaded.aget("size", 3) == 3
        assert loaded.modified is False
        return session.session_key

    key = async_to_sync(scenario)()
    assert store_class(key).load() == {"colour": "blue"}


def test_apop(store_class):
    key = saved_session(store_class, colour="blue", size=3).session_key

    async def existing():
        session = store_class(key)
        assert await session.apop("colour") == "blue"
        assert session.modified is True
        assert await session.aget("colour") is None

    async def missing_with_default():
        session = store_class(key)
        assert await session.apop("shape", "round") == "round"
        assert session.modified is False

    async def missing_without_default():
        session = store_class(key)
        with pytest.raises(KeyError):
            await session.apop("shape")
        assert session.modified is False

    async_to_sync(existing)()
    async_to_sync(missing_with_default)()
    async_to_sync(missing_without_default)()


def test_asetdefault(store_class):
    key = saved_session(store_class, colour="blue").session_key

    async def scenario():
        session = store_class(key)
        assert await session.asetdefault("colour", "red") == "blue"
        assert session.modified is False
        assert await session.asetdefault("size", 3) == 3
        assert session.modified is True
        assert await session.aget("size") == 3

    async_to_sync(scenario)()


def test_aupdate(store_class):
    key = saved_session(store_class, colour="blue").session_key

    async def scenario():
        session = store_class(key)
        await session.aupdate({"colour": "red", "size": 3})
        assert session.modified is True
        await session.asave()

    async_to_sync(scenario)()
    assert store_class(key).load() == {"colour": "red", "size": 3}


def test_ahas_key_akeys_avalues_aitems(store_class):
    key = saved_session(store_class, colour="blue", size=3).session_key

    async def scenario():
        session = store_class(key)
        assert await session.ahas_key("colour")
        assert not await session.ahas_key("shape")
        assert sorted(await session.akeys()) == ["colour", "size"]
        assert sorted(map(str, await session.avalues())) == ["3", "blue"]
        assert sorted(await session.aitems()) == [("colour", "blue"), ("size", 3)]
        assert session.accessed is True
        assert session.modified is False

    async_to_sync(scenario)()


def test_async_test_cookie_helpers(store_class):
    async def set_it():
        session = store_class()
        assert not await session.atest_cookie_worked()
        await session.aset_test_cookie()
        assert await session.atest_cookie_worked()
        await session.asave()
        return session.session_key

    key = async_to_sync(set_it)()

    async def check_and_delete():
        session = store_class(key)
        assert await session.atest_cookie_worked()
        await session.adelete_test_cookie()
        assert not await session.atest_cookie_worked()
        assert not await session.ahas_key(session.TEST_COOKIE_NAME)

    async_to_sync(check_and_delete)()


@pytest.mark.parametrize("key", MALFORMED_OR_MISSING_KEYS)
def test_aexists_is_false_for_malformed_keys_without_a_query(session, no_queries, key):
    with no_queries():
        assert async_to_sync(session.aexists)(key) is False


def test_aexists(store_class):
    async def scenario():
        session = store_class()
        assert not await session.aexists(tokens.new_token())
        await session.aset("colour", "blue")
        await session.asave()
        assert await session.aexists(session.session_key)
        return session.session_key

    key = async_to_sync(scenario)()
    assert store_class().exists(key)


def test_acreate_stores_an_empty_session(store_class, engine):
    async def scenario():
        session = store_class()
        await session.acreate()
        assert await session.aexists(session.session_key)
        return session.session_key

    key = async_to_sync(scenario)()
    assert TOKEN_RE.fullmatch(key)
    assert engine.stored.hashes() == {tokens.hash_token(key)}
    assert store_class(key).load() == {}


def test_asave_creates_then_updates_and_refuses_a_second_create(store_class, engine):
    async def scenario():
        session = store_class()
        await session.aset("colour", "blue")
        await session.asave()
        key = session.session_key
        await session.aset("colour", "red")
        await session.asave()
        assert session.session_key == key
        with pytest.raises(CreateError):
            await store_class(key).asave(must_create=True)
        return key

    key = async_to_sync(scenario)()
    assert TOKEN_RE.fullmatch(key)
    assert store_class(key).load() == {"colour": "red"}
    assert engine.stored.hashes() == {tokens.hash_token(key)}


def test_aload(store_class):
    key = saved_session(store_class, colour="blue").session_key
    unknown = tokens.new_token()

    async def scenario():
        known = store_class(key)
        assert await known.aload() == {"colour": "blue"}
        assert known.session_key == key
        stranger = store_class(unknown)
        assert await stranger.aload() == {}
        assert stranger.session_key is None

    async_to_sync(scenario)()


def test_async_save_of_an_unknown_token_gets_a_new_token(store_class, engine):
    unknown = tokens.new_token()

    async def scenario():
        session = store_class(unknown)
        await session.aset("colour", "blue")
        await session.asave()
        return session.session_key

    key = async_to_sync(scenario)()
    assert key not in (None, unknown)
    assert engine.stored.hashes() == {tokens.hash_token(key)}


def test_adelete_by_current_and_explicit_key(store_class, engine):
    first = saved_session(store_class, colour="red")
    second = saved_session(store_class, colour="green")
    kept = saved_session(store_class, colour="blue")

    async def scenario():
        await store_class(first.session_key).adelete()
        await store_class().adelete(second.session_key)
        await store_class().adelete(tokens.new_token())
        await store_class().adelete("not a token")
        await store_class().adelete()

    async_to_sync(scenario)()
    assert engine.stored.hashes() == {kept.key_hash}


def test_aflush(store_class, engine):
    key = saved_session(store_class).session_key

    async def scenario():
        session = store_class(key)
        await session.aget("colour")
        await session.aflush()
        assert session.session_key is None
        assert dict(await session.aitems()) == {}
        assert not await session.aexists(key)

    async_to_sync(scenario)()
    assert engine.stored.hashes() == set()


@pytest.mark.parametrize("method", ["acycle_key", "arenew_token"])
@pytest.mark.parametrize("load_first", [True, False], ids=["loaded", "not-loaded"])
def test_async_renewal(store_class, engine, method, load_first):
    old_key = saved_session(store_class, colour="blue").session_key

    async def scenario():
        session = store_class(old_key)
        if load_first:
            await session.aload()
        await getattr(session, method)()
        assert session.session_key not in (None, old_key)
        assert dict(await session.aitems()) == {"colour": "blue"}
        assert not await session.aexists(old_key)
        return session.session_key

    new_key = async_to_sync(scenario)()
    assert TOKEN_RE.fullmatch(new_key)
    assert engine.stored.hashes() == {tokens.hash_token(new_key)}
    assert store_class(new_key).load() == {"colour": "blue"}
    assert store_class(old_key).load() == {}


def test_async_renewal_of_a_session_never_saved(store_class, engine):
    async def scenario():
        session = store_class()
        await session.aset("colour", "blue")
        await session.arenew_token()
        assert session.session_key is None
        return session

    session = async_to_sync(scenario)()
    assert engine.stored.hashes() == set()
    async_to_sync(session.asave)()
    assert store_class(session.session_key).load() == {"colour": "blue"}


def test_aget_expiry_age_and_date(store_class):
    async def scenario(key):
        session = store_class(key)
        assert await session.aget_expiry_age() == 60
        assert await session.aget_expiry_date() == START + timedelta(seconds=60)
        later = START + timedelta(seconds=30)
        assert await session.aget_expiry_age(modification=later) == 60
        assert await session.aget_expiry_date(modification=later) == later + timedelta(
            seconds=60
        )

    with time_machine.travel(START, tick=False):
        key = saved_session(store_class, expiry=60).session_key
        async_to_sync(scenario)(key)


def test_aget_expiry_age_default_is_the_absolute_timeout(session, settings):
    settings.SCS = {"ABSOLUTE_TIMEOUT": 3600}
    assert async_to_sync(session.aget_expiry_age)() == 3600
    assert async_to_sync(session.aget_expiry_date)(
        modification=START
    ) == START + timedelta(hours=1)


def test_aset_expiry(store_class):
    async def scenario():
        session = store_class()
        await session.aset_expiry(10)
        assert await session.aget_expiry_age(modification=START) == 10
        with time_machine.travel(START, tick=False):
            await session.aset_expiry(timedelta(seconds=30))
        assert await session.aget_expiry_date(
            modification=START + timedelta(seconds=5)
        ) == START + timedelta(seconds=30)
        await session.aset_expiry(START + timedelta(seconds=45))
        assert await session.aget_expiry_date(modification=START) == START + timedelta(
            seconds=45
        )
        await session.aset_expiry(None)
        assert not await session.ahas_key("_session_expiry")
        assert await session.aget_expiry_age() == django_settings.SESSION_COOKIE_AGE

    async_to_sync(scenario)()


@pytest.mark.parametrize("at_browser_close", [False, True])
def test_aget_expire_at_browser_close(store_class, settings, at_browser_close):
    settings.SESSION_EXPIRE_AT_BROWSER_CLOSE = at_browser_close
    key = saved_session(store_class, expiry=0).session_key

    async def scenario():
        assert await store_class(key).aget_expire_at_browser_close() is True
        fresh = store_class()
        assert await fresh.aget_expire_at_browser_close() is at_browser_close
        await fresh.aset_expiry(10)
        assert await fresh.aget_expire_at_browser_close() is False

    async_to_sync(scenario)()


def test_async_session_with_a_past_deadline_is_gone(store_class):
    async def scenario():
        session = store_class()
        await session.aset("colour", "blue")
        await session.aset_expiry(-timedelta(seconds=10))
        await session.asave()
        loaded = store_class(session.session_key)
        assert await loaded.aget("colour") is None
        assert loaded.session_key is None

    async_to_sync(scenario)()


def test_aclear_expired(engine, store_class):
    with time_machine.travel(START, tick=False) as clock:
        short = saved_session(store_class, expiry=60)
        long = saved_session(store_class, expiry=3600)
        clock.shift(timedelta(minutes=2))
        async_to_sync(store_class.aclear_expired)()
        assert engine.stored.hashes() == {long.key_hash}
        if engine.id == "cache-redis":
            # Redis forgets by TTL on its own clock, which did not travel, so
            # the entry lives out its real 60 seconds, and not one more.
            key = engine.stored.key(short.key_hash)
            assert 0 < engine.redis().pttl(key) <= 60_000


def test_async_session_deleted_elsewhere_is_not_resurrected(store_class, engine):
    key = saved_session(store_class).session_key

    async def scenario():
        first = store_class(key)
        assert await first.aget("colour") == "blue"
        await store_class(key).adelete()
        await first.aset("colour", "red")
        with pytest.raises(UpdateError):
            await first.asave()
        assert await first.aload() == {}

    async_to_sync(scenario)()
    assert engine.stored.hashes() == set()


def test_asave_of_a_too_large_session_keeps_the_stored_one(store_class, settings):
    settings.SCS = {"MAX_BYTES": 1024}
    key = saved_session(store_class, colour="blue").session_key

    async def scenario():
        session = store_class(key)
        await session.aset("essay", "x" * 2000)
        with pytest.raises(SessionTooLarge):
            await session.asave()

    async_to_sync(scenario)()
    assert store_class(key).load() == {"colour": "blue"}
