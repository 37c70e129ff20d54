"""The cache engine on a local 3-node Redis Cluster, reached through django-redis.

A session key's hash tag is the first two hex digits of its token hash, so the
sessions of one user are spread over many slots, and so over every node, while
each user's index lives in the user's own slot. These tests show create, read,
renew, per-user listing and revoke working across slots, at the store level
and through the middleware. Only this module starts the cluster.
"""

from __future__ import annotations

import shutil
from collections import Counter

import pytest
import redis
from django.conf import settings as django_settings
from django.test import Client
from django_redis import get_redis_connection

from scs_django import tokens
from scs_django.backends.cache import SessionStore, redis_sessions
from tests.engines import parse_redis_value
from tests.factories import PASSWORD
from tests.servers import RedisCluster, ServerUnavailable

ALIAS = "sessions"
COOKIE = django_settings.SESSION_COOKIE_NAME

# Enough sessions that each of the 3 nodes holds some: the chance that one
# node gets none of 60 random tags is about 3 * (2/3) ** 60, below 1e-10.
MANY = 60


@pytest.fixture(scope="module")
def redis_cluster():
    with RedisCluster() as cluster:
        yield cluster


@pytest.fixture(autouse=True)
def cluster(settings, redis_cluster):
    """The cache engine on the cluster; yields the cluster client (emptied)."""
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        ALIAS: {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": redis_cluster.url,
            "OPTIONS": {
                "CONNECTION_FACTORY": "scs_django.backends.redis.ClusterConnectionFactory"
            },
        },
    }
    settings.SESSION_ENGINE = "scs_django.backends.cache"
    settings.SCS = {"CACHE_ALIAS": ALIAS}
    client = get_redis_connection(ALIAS)
    assert isinstance(client, redis.cluster.RedisCluster)
    client.flushall()  # on every primary, like the next one
    client.script_flush()  # each test's first writes load the scripts again
    yield client
    client.close()


@pytest.fixture
def ops():
    """The native operations behind the engine, for key names."""
    return redis_sessions()


def session_key_of(ops, token: str) -> str:
    return ops.session_key(tokens.hash_token(token))


def node_port(client, key: str) -> int:
    return int(client.get_node_from_key(key).port)


def keys_per_node(
    redis_cluster: RedisCluster, pattern: str, kind: bytes | None = None
) -> Counter[int]:
    """How many keys matching *pattern* each node really holds (asked directly),
    only those whose value starts with *kind* if given."""
    counts: Counter[int] = Counter()
    for port in redis_cluster.ports:
        with redis.Redis(host=redis_cluster.host, port=port) as node:
            counts[port] = sum(
                1
                for key in node.scan_iter(match=pattern, count=1000)
                if kind is None or (node.get(key) or b"")[:1] == kind
            )
    return counts


def new_session(**data) -> SessionStore:
    session = SessionStore()
    session.update(data)
    session.save()
    return session


def signed_in(user_id: int, **data) -> SessionStore:
    return new_session(_auth_user_id=str(user_id), **data)


def is_live(token: str) -> bool:
    return SessionStore().exists(token)


def test_the_cluster_has_three_primaries_sharing_every_slot(cluster, redis_cluster):
    primaries = cluster.get_primaries()
    assert sorted(int(node.port) for node in primaries) == sorted(redis_cluster.ports)
    for port in redis_cluster.ports:
        info = redis_cluster.cluster_info(port)
        assert info["cluster_state"] == "ok"
        assert info["cluster_slots_ok"] == "16384"
        assert info["cluster_known_nodes"] == "3"


@pytest.mark.parametrize("missing", ["redis-server", "redis-cli"])
def test_a_missing_binary_fails_with_what_to_install(monkeypatch, missing):
    real_which = shutil.which

    def which(name, *args, **kwargs):
        return None if name == missing else real_which(name, *args, **kwargs)

    monkeypatch.setattr(shutil, "which", which)
    with pytest.raises(ServerUnavailable, match="apt-get install redis-"):
        RedisCluster().start()


def test_the_key_layout_uses_the_hash_tag(cluster, ops):
    session = new_session(n=1)
    key = ops.session_key(session.key_hash)
    assert key.endswith(f"scs:s:{{{session.key_hash[:2]}}}{session.key_hash[2:]}")
    assert cluster.exists(key) == 1
    assert cluster.keyslot(key) == cluster.keyslot(f"{{{session.key_hash[:2]}}}")
    # The server agrees with the client on the slot.
    assert cluster.cluster_keyslot(key) == cluster.keyslot(key)
    assert parse_redis_value(cluster.get(key))["user"] == ""


def test_sessions_on_every_node_are_created_and_read_back(cluster, ops, redis_cluster):
    sessions = [new_session(n=i, text=f"session {i}") for i in range(MANY)]

    assert len({s.session_key for s in sessions}) == MANY
    counts = keys_per_node(redis_cluster, "*scs:s:*")
    assert sum(counts.values()) == MANY
    assert len(counts) == 3 and min(counts.values()) > 0, counts
    for session in sessions:
        key = ops.session_key(session.key_hash)
        assert cluster.exists(key) == 1
        # The client routes the key to the node that really holds it.
        with redis.Redis(host=redis_cluster.host, port=node_port(cluster, key)) as n:
            assert n.exists(key) == 1

    for i, session in enumerate(sessions):
        again = SessionStore(session.session_key)
        assert again["n"] == i
        assert again["text"] == f"session {i}"


def test_sessions_are_updated_in_every_slot(cluster, redis_cluster):
    sessions = [new_session(n=i) for i in range(MANY)]
    for i, session in enumerate(sessions):
        again = SessionStore(session.session_key)
        again["n"] = i * 10
        again.save()
    for i, session in enumerate(sessions):
        assert SessionStore(session.session_key)["n"] == i * 10


def test_renewal_keeps_each_session_in_its_slot(cluster, ops, redis_cluster):
    sessions = [new_session(n=i) for i in range(MANY)]
    renewed_on = Counter()

    for i, session in enumerate(sessions):
        old_token, old_hash = session.session_key, session.key_hash
        old_key = ops.session_key(old_hash)
        session.cycle_key()
        new_token, new_hash = session.session_key, session.key_hash
        new_key = ops.session_key(new_hash)

        assert new_token != old_token
        assert new_hash[:2] == old_hash[:2]
        assert cluster.keyslot(new_key) == cluster.keyslot(old_key)
        assert cluster.cluster_keyslot(new_key) == cluster.cluster_keyslot(old_key)
        # Only the forward a revoke follows is left under the old key.
        assert cluster.get(old_key) == b"r" + new_hash.encode()
        assert cluster.exists(new_key) == 1
        assert not is_live(old_token)
        assert SessionStore(old_token).load() == {}
        assert SessionStore(new_token)["n"] == i
        renewed_on[node_port(cluster, new_key)] += 1

        # The renewed session takes writes under its new token.
        session["after"] = i
        session.save()
        assert SessionStore(new_token)["after"] == i

    assert len(renewed_on) == 3, renewed_on
    # Sessions, not counting the forwards the renewals left.
    assert sum(keys_per_node(redis_cluster, "*scs:s:*", b"s").values()) == MANY


def test_a_users_sessions_are_listed_and_revoked_across_slots(
    cluster, ops, redis_cluster
):
    user_id, other_id = 4242, 777
    sessions = [signed_in(user_id, n=i) for i in range(MANY)]
    other = signed_in(other_id)
    index = ops.user_key(user_id)
    index_slot = cluster.keyslot(index)

    ports = {node_port(cluster, ops.session_key(s.key_hash)) for s in sessions}
    assert len(ports) == 3
    slots = {cluster.keyslot(ops.session_key(s.key_hash)) for s in sessions}
    assert len(slots - {index_slot}) > 1
    # The index was written with the sessions; it sits in the user's own slot.
    assert index == f"{ops.prefix}u:{{{user_id}}}"
    assert cluster.zcard(index) == MANY
    assert 0 < cluster.pttl(index)

    listed = SessionStore.user_sessions(user_id)
    assert {info.key_hash for info in listed} == {s.key_hash for s in sessions}
    assert {info.user_id for info in listed} == {user_id}
    assert [info.key_hash for info in SessionStore.user_sessions(other_id)] == [
        other.key_hash
    ]

    # A renewed session is listed under its new hash only.
    renewed = sessions[0]
    old_hash = renewed.key_hash
    renewed.cycle_key()
    hashes = {info.key_hash for info in SessionStore.user_sessions(user_id)}
    assert renewed.key_hash in hashes
    assert old_hash not in hashes
    assert len(hashes) == MANY

    # Revoking half of them ends exactly those, wherever they live.
    doomed, kept = sessions[: MANY // 2], sessions[MANY // 2 :]
    assert len({node_port(cluster, ops.session_key(s.key_hash)) for s in doomed}) > 1
    assert SessionStore.revoke_keys([s.key_hash for s in doomed]) == len(doomed)
    assert not any(is_live(s.session_key) for s in doomed)
    assert all(is_live(s.session_key) for s in kept)

    # Listing skips the dead ones and prunes them from the index.
    listed = SessionStore.user_sessions(user_id)
    assert {info.key_hash for info in listed} == {s.key_hash for s in kept}
    members = {m.decode() for m in cluster.zrange(index, 0, -1)}
    assert members == {s.key_hash for s in kept}

    # Revoking a revoked session again counts nothing.
    assert SessionStore.revoke_keys([doomed[0].key_hash]) == 0

    # All the others, except one to keep.
    keep = kept[0]
    assert SessionStore.revoke_user(user_id, keep_hash=keep.key_hash) == len(kept) - 1
    assert [info.key_hash for info in SessionStore.user_sessions(user_id)] == [
        keep.key_hash
    ]
    assert {m.decode() for m in cluster.zrange(index, 0, -1)} == {keep.key_hash}
    assert is_live(keep.session_key)
    assert is_live(other.session_key)


def test_expired_members_are_pruned_by_clear_expired(cluster, ops):
    user_id = 31337
    sessions = [signed_in(user_id) for _ in range(12)]
    for session in sessions[:6]:
        cluster.delete(ops.session_key(session.key_hash))  # as a TTL expiry would
    SessionStore.clear_expired()
    members = {m.decode() for m in cluster.zrange(ops.user_key(user_id), 0, -1)}
    assert members == {s.key_hash for s in sessions[6:]}


@pytest.mark.django_db
def test_requests_through_the_middleware_across_slots(
    cluster, ops, redis_cluster, user_factory
):
    user = user_factory()
    browsers = [Client() for _ in range(12)]
    for i, browser in enumerate(browsers):
        assert browser.get(f"/write/?value=v{i}").status_code == 200
        anonymous = browser.cookies[COOKIE].value
        assert cluster.exists(session_key_of(ops, anonymous)) == 1
        assert browser.get("/read/").json() == {"value": f"v{i}", "user": None}

        # Login on top of the anonymous session: a new token in the same slot,
        # the old one dead, the data kept.
        response = browser.post(
            "/accounts/login/", {"username": user.username, "password": PASSWORD}
        )
        assert response.status_code == 302
        token = browser.cookies[COOKIE].value
        assert token != anonymous
        assert cluster.keyslot(session_key_of(ops, token)) == cluster.keyslot(
            session_key_of(ops, anonymous)
        )
        assert cluster.get(session_key_of(ops, anonymous))[:1] == b"r"  # a forward
        assert not is_live(anonymous)
        assert browser.get("/read/").json() == {"value": f"v{i}", "user": str(user.pk)}

    tokens_by_browser = [b.cookies[COOKIE].value for b in browsers]
    hashes = {tokens.hash_token(t) for t in tokens_by_browser}
    assert len({cluster.keyslot(ops.session_key(h)) for h in hashes}) > 1
    assert {info.key_hash for info in SessionStore.user_sessions(user.pk)} == hashes

    # An explicit renewal in a view.
    first = browsers[0]
    before = first.cookies[COOKIE].value
    assert first.get("/renew/").status_code == 200
    after = first.cookies[COOKIE].value
    assert after != before
    assert not is_live(before)
    assert first.get("/read/").json() == {"value": "v0", "user": str(user.pk)}
    listed = {info.key_hash for info in SessionStore.user_sessions(user.pk)}
    assert tokens.hash_token(after) in listed
    assert tokens.hash_token(before) not in listed

    # Logging out in one browser ends that session only.
    second = browsers[1]
    gone = second.cookies[COOKIE].value
    assert second.post("/accounts/logout/").status_code in (200, 302)
    assert not is_live(gone)
    listed = {info.key_hash for info in SessionStore.user_sessions(user.pk)}
    assert tokens.hash_token(gone) not in listed
    assert len(listed) == len(browsers) - 1

    # Revoking the rest from elsewhere signs every other browser out.
    assert SessionStore.revoke_user(user.pk, keep_hash=tokens.hash_token(after)) == (
        len(browsers) - 2
    )
    for browser in browsers[2:]:
        assert browser.get("/read/").json()["user"] is None
    assert first.get("/read/").json() == {"value": "v0", "user": str(user.pk)}
