"""A user with thousands of sessions is revoked completely, in bounded batches.

Issue 11: ``revoke`` of a user with 10,000 sessions must finish and stay
bounded in memory. On Redis the user's index is copied and read in pages
(``ZRANGESTORE``, then ``ZRANGE`` of the copy, never the whole index in one
reply), each page's sessions ending in one round trip; on the database one set
based ``DELETE`` by user. The commands and statements are counted here, on the
real servers; how long it takes is in benchmarks/growth.py, never in a test.
"""

import math
from collections import Counter

import pytest
from django.contrib.auth import SESSION_KEY

from scs_django import sessions, tokens
from scs_django.backends.redis_users import BATCH, RedisUsers
from scs_django.signals import session_revoked
from tests.utils import stored_logins

pytestmark = pytest.mark.django_db(databases="__all__", transaction=True)

MANY = 2_500
LISTING_ENGINES = [
    "db-postgresql",
    "db-sqlite",
    "db-mariadb",
    "cache-redis",
    "cached_db-redis",
]


def alive(engine, session):
    return engine.store_class(session.session_key).get(SESSION_KEY) is not None


def data_statements(traffic):
    # Django wraps a delete in a transaction of its own: BEGIN ... COMMIT
    # where the database reports them.
    return [q["sql"] for q in traffic.queries if q["sql"] not in ("BEGIN", "COMMIT")]


class RedisCommands:
    """The commands the Redis server ran in a block, by name, from its own
    ``INFO commandstats`` (commands run inside scripts included)."""

    def __init__(self, client):
        self.client = client
        self.calls = Counter()

    def __enter__(self):
        self.client.config_resetstat()
        return self

    def __exit__(self, *exc):
        stats = self.client.info("commandstats")
        self.calls = Counter(
            {name.removeprefix("cmdstat_"): s["calls"] for name, s in stats.items()}
        )


@pytest.mark.parametrize("engine", LISTING_ENGINES, indirect=True)
def test_a_user_with_thousands_of_sessions_is_revoked_completely(engine, user_factory):
    user, other = user_factory(), user_factory()
    kept, *doomed = stored_logins(engine, user, MANY + 1)
    [bystander] = stored_logins(engine, other, 1)

    assert sessions.revoke(user, keep=kept) == MANY

    assert [s.key_hash for s in sessions.for_user(user)] == [kept.stored_hash]
    assert not any(alive(engine, session) for session in doomed[:: MANY // 50])
    assert not any(alive(engine, session) for session in doomed[-3:])
    assert alive(engine, kept) and alive(engine, bystander)
    assert len(sessions.for_user(other)) == 1


@pytest.mark.parametrize("engine", ["db-postgresql", "db-mariadb"], indirect=True)
def test_revoking_a_user_on_the_database_is_one_delete_whatever_the_count(
    engine, user_factory
):
    user = user_factory()
    kept, *_others = stored_logins(engine, user, 300)

    with engine.traffic() as traffic:
        assert sessions.revoke(user, keep=kept) == 299

    # No row is read into Python first.
    statements = data_statements(traffic)
    assert len(statements) == 1, statements
    assert statements[0].startswith("DELETE"), statements


@pytest.mark.parametrize("engine", ["db-sqlite"], indirect=True)
def test_revoking_thousands_of_sessions_by_hash_deletes_in_batches(
    engine, user_factory
):
    # The admin's "revoke selected" names the sessions: more hashes than
    # SQLite takes parameters in one statement (999 before 3.32) still end.
    from scs_django.backends.db import REVOKE_BATCH

    user = user_factory()
    made = stored_logins(engine, user, MANY)
    hashes = [s.stored_hash for s in made]

    with engine.traffic() as traffic:
        assert sessions.revoke_hashes(user, hashes) == MANY

    statements = data_statements(traffic)
    assert len(statements) == math.ceil(MANY / REVOKE_BATCH), statements
    assert all(sql.startswith("DELETE") for sql in statements)
    assert sessions.for_user(user) == []


def redis_pages(count):
    """Pages of the index copy a revoke of ``count`` members reads: one more
    than the full ones when the last is full too (it learns so from an empty
    page)."""
    return count // BATCH + 1


@pytest.mark.parametrize("engine", ["cache-redis"], indirect=True)
def test_revoking_a_user_on_redis_reads_the_index_in_pages(engine, user_factory):
    user = user_factory()
    kept, *_doomed = stored_logins(engine, user, MANY + 1)
    client = engine.redis()

    with RedisCommands(client) as redis_commands, engine.traffic() as traffic:
        assert sessions.revoke(user, keep=kept) == MANY

    calls = redis_commands.calls
    pages = redis_pages(MANY + 1)
    # One copy of the index, read a page at a time; never all of it at once.
    assert calls["zrangestore"] == 1
    assert calls["zrange"] == pages
    assert calls["smembers"] == calls["zscan"] == calls["sscan"] == 0
    # One script per session, and the members leave the index page by page.
    assert calls["evalsha"] == MANY
    assert calls["del"] == MANY + 1  # the sessions, then the copy
    assert calls["zrem"] == pages
    # The copy and the first page, then one round trip per page.
    assert traffic.redis_round_trips == 1 + pages
    assert client.zrange(user_key(engine, user), 0, -1) == [kept.stored_hash.encode()]
    assert list(client.scan_iter(match="*r:*")) == []


def user_key(engine, user):
    from scs_django.backends.cache import redis_sessions

    return redis_sessions().user_key(user.pk)


@pytest.mark.parametrize("engine", ["cache-redis"], indirect=True)
def test_a_small_revoke_on_redis_keeps_its_two_round_trips(engine, user_factory):
    user = user_factory()
    kept, *_others = stored_logins(engine, user, 3)

    with engine.traffic() as traffic:
        assert sessions.revoke(user, keep=kept) == 2

    assert traffic.redis_round_trips == 2


@pytest.mark.parametrize("engine", ["cache-redis"], indirect=True)
def test_a_session_renewed_while_a_later_page_waits_is_ended_on_redis(
    engine, user_factory, monkeypatch
):
    # The renewal moves a session that the revoke has not reached yet: the
    # copy still names its old key, whose forward leads to the new one.
    user = user_factory()
    made = stored_logins(engine, user, 2 * BATCH + 10)
    # The index is ordered by absolute expiry: the last one made is on the
    # last page.
    last = made[-1]
    renewed = []
    real_end = RedisUsers._end

    def end_then_renew(self, key_hashes, *args, **kwargs):
        result = real_end(self, key_hashes, *args, **kwargs)
        if not renewed:  # after the first page: a request renews a later one
            session = engine.store_class(last.session_key)
            session.load()
            session.renew_token()
            renewed.append(session.session_key)
        return result

    monkeypatch.setattr(RedisUsers, "_end", end_then_renew)
    assert sessions.revoke(user) == len(made)

    assert renewed and tokens.hash_token(renewed[0]) != last.stored_hash
    assert engine.store_class(renewed[0]).get(SESSION_KEY) is None
    assert sessions.for_user(user) == []


@pytest.mark.parametrize("engine", ["cache-redis", "db-postgresql"], indirect=True)
def test_receivers_of_session_revoked_get_every_hash_of_a_large_revoke(
    engine, user_factory
):
    user = user_factory()
    kept, *doomed = stored_logins(engine, user, 1_200)
    received = []

    def receiver(sender, count, key_hashes, **kwargs):
        received.append((count, set(key_hashes)))

    session_revoked.connect(receiver, weak=False)
    try:
        assert sessions.revoke(user, keep=kept) == len(doomed)
    finally:
        session_revoked.disconnect(receiver)

    assert received == [(len(doomed), {s.stored_hash for s in doomed})]
