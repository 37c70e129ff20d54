"""``manage.py scs_rotate_keys`` seals every stored session again under the
current key (DESIGN §7), on a live site, without losing a write."""

from __future__ import annotations

import base64
import re
import threading
from io import StringIO
from unittest import mock

import pytest
import redis
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connections

from scs_django import codec, crypto, rotation
from tests.engines import DB_ENGINES, REDIS_ENGINES, use_engine

pytestmark = pytest.mark.django_db(databases="__all__")

OLD = base64.b64encode(bytes(range(32))).decode()
NEW = base64.b64encode(bytes(range(100, 132))).decode()
ROTATABLE = [*DB_ENGINES, *REDIS_ENGINES]


def key_id(key):
    return crypto.key_id(crypto.parse_key(key))


def keys(settings, *keys, algorithm="aes-gcm"):
    extra = {"ENCRYPTION_KEYS": list(keys)} if keys else {}
    scs = {
        k: v for k, v in getattr(settings, "SCS", {}).items() if k != "ENCRYPTION_KEYS"
    }
    settings.SCS = {**scs, "ENCRYPTION": algorithm, **extra}


def saved(engine, **data):
    session = engine.store_class()
    session.update(data)
    session.save()
    return session


def blob_of(engine, key_hash):
    return bytes(engine.stored.get(key_hash)["data"])


def rotate(*args):
    out = StringIO()
    call_command("scs_rotate_keys", *args, stdout=out)
    return out.getvalue().strip()


@pytest.fixture
def rotatable(request, settings):
    with use_engine(request.param, settings) as engine:
        yield engine


def on(*names):
    return pytest.mark.parametrize("rotatable", list(names), indirect=True)


@on(*ROTATABLE)
def test_old_sessions_open_and_a_write_seals_them_under_the_new_key(
    rotatable, settings
):
    keys(settings, OLD)
    session = saved(rotatable, value="cart")
    keys(settings, NEW, OLD)
    assert crypto.key_id_of(blob_of(rotatable, session.key_hash)) == key_id(OLD)
    loaded = rotatable.store_class(session.session_key)
    assert loaded["value"] == "cart"
    loaded["more"] = 1
    loaded.save()
    assert crypto.key_id_of(blob_of(rotatable, session.key_hash)) == key_id(NEW)


@on(*ROTATABLE)
def test_rotation_leaves_no_session_under_the_old_key(rotatable, settings):
    keys(settings, OLD)
    sessions = [saved(rotatable, value=i) for i in range(7)]
    keys(settings, NEW, OLD)
    current = saved(rotatable, value="new")
    for session in sessions:  # cached_db: copies of the old blobs are cached
        assert rotatable.store_class(session.session_key)["value"] is not None
    summary = rotate("--batch-size", "3")
    assert summary.startswith(f"re-sealed 7 sessions under key {key_id(NEW).hex()}")
    assert "1 already current; 0 unreadable; 0 changed meanwhile" in summary
    for session in [*sessions, current]:
        assert crypto.key_id_of(blob_of(rotatable, session.key_hash)) == key_id(NEW)
    keys(settings, NEW)
    for i, session in enumerate(sessions):
        assert rotatable.store_class(session.session_key)["value"] == i
    assert rotate().startswith("re-sealed 0 sessions")


@on(*ROTATABLE)
def test_sessions_left_under_a_removed_key_are_fresh_anonymous_sessions(
    rotatable, settings
):
    keys(settings, OLD)
    session = saved(rotatable, value="cart", _auth_user_id="1")
    before = blob_of(rotatable, session.key_hash)
    keys(settings, NEW)
    loaded = rotatable.store_class(session.session_key)
    assert dict(loaded.items()) == {}
    loaded["value"] = "other"
    loaded.save()
    assert loaded.session_key != session.session_key
    assert "1 unreadable" in rotate()
    assert blob_of(rotatable, session.key_hash) == before


@on(*ROTATABLE)
def test_unreadable_blobs_are_counted_and_left_alone(rotatable, settings):
    keys(settings, OLD)
    session = saved(rotatable, value="cart")
    before = blob_of(rotatable, session.key_hash)
    keys(settings, NEW)
    assert rotate().endswith("0 already current; 1 unreadable; 0 changed meanwhile")
    assert blob_of(rotatable, session.key_hash) == before


@on(*ROTATABLE)
def test_plain_sessions_are_sealed_once_encryption_is_switched_on(rotatable, settings):
    settings.SCS = {**getattr(settings, "SCS", {}), "ENCRYPTION": None}
    session = saved(rotatable, value="cart")
    assert blob_of(rotatable, session.key_hash)[:1] == codec.PLAIN
    keys(settings, NEW)
    assert rotate().startswith("re-sealed 1 sessions")
    blob = blob_of(rotatable, session.key_hash)
    assert crypto.key_id_of(blob) == key_id(NEW)
    assert b"cart" not in blob
    assert rotatable.store_class(session.session_key)["value"] == "cart"


@on(*ROTATABLE)
def test_a_dry_run_counts_and_writes_nothing(rotatable, settings):
    keys(settings, OLD)
    sessions = [saved(rotatable, value=i) for i in range(3)]
    blobs = [blob_of(rotatable, s.key_hash) for s in sessions]
    keys(settings, NEW, OLD)
    summary = rotate("--dry-run")
    assert summary == (
        f"would re-seal 3 sessions under key {key_id(NEW).hex()}; 0 already "
        "current; 0 unreadable (dry run, nothing written)"
    )
    assert [blob_of(rotatable, s.key_hash) for s in sessions] == blobs


@on("db-postgresql")
def test_a_row_written_meanwhile_is_not_overwritten(rotatable, settings):
    keys(settings, OLD)
    session = saved(rotatable, value="cart")
    keys(settings, NEW, OLD)
    real = rotation.examine

    def write_first(blob, key_hash):
        found = real(blob, key_hash)
        loaded = rotatable.store_class(session.session_key)
        loaded["value"] = "newer"
        loaded.save()
        return found

    with mock.patch.object(rotation, "examine", write_first):
        assert rotate().endswith("0 unreadable; 1 changed meanwhile")
    assert rotatable.store_class(session.session_key)["value"] == "newer"


@on("cache-redis")
def test_redis_is_walked_with_scan_never_keys(rotatable, settings):
    keys(settings, OLD)
    for i in range(5):
        saved(rotatable, value=i)
    keys(settings, NEW, OLD)
    execute = redis.client.Redis.execute_command
    with mock.patch.object(
        redis.client.Redis, "execute_command", autospec=True, side_effect=execute
    ) as sent:
        assert rotate("--batch-size", "2").startswith("re-sealed 5 sessions")
    commands = [call.args[1] for call in sent.call_args_list]
    assert "SCAN" in commands
    assert "KEYS" not in commands


@on("cache-locmem")
def test_a_cache_that_cannot_be_listed_is_refused(rotatable, settings):
    keys(settings, NEW)
    with pytest.raises(CommandError, match="cannot list its sessions"):
        rotate()


def test_the_cookie_engine_has_nothing_to_rotate(settings):
    settings.SESSION_ENGINE = "scs_django.backends.cookie"
    assert "stores nothing on the server" in rotate()


@on("db-sqlite")
def test_it_refuses_when_sessions_are_not_sealed(rotatable, settings):
    settings.SCS = {**getattr(settings, "SCS", {}), "ENCRYPTION": None}
    with pytest.raises(CommandError, match='SCS\\["ENCRYPTION"\\] is None'):
        rotate()


# -- on a live site --------------------------------------------------------------------

WRITERS = 8
WRITES = 12
SESSIONS = 40
WRITTEN = SESSIONS // 2  # the writers' sessions; the rest only the command seals


def written_to(thread, n):
    """The session thread ``thread`` writes its ``n``-th key to: the threads
    meet on sessions (``thread`` + 3 writes where ``thread`` wrote before)."""
    return (n * 3 + thread) % WRITTEN


@pytest.mark.django_db(databases="__all__", transaction=True)
@on(*ROTATABLE)
def test_rotation_while_threads_write_loses_no_write(rotatable, settings):
    keys(settings, OLD)
    tokens = [saved(rotatable, start=i).session_key for i in range(SESSIONS)]
    keys(settings, NEW, OLD)
    go = threading.Barrier(WRITERS + 1, timeout=30)
    errors = []

    def writer(thread):
        try:
            go.wait()
            for n in range(WRITES):
                session = rotatable.store_class(tokens[written_to(thread, n)])
                session[f"t{thread}-{n}"] = n
                session.save()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(WRITERS)]
    for thread in threads:
        thread.start()
    go.wait()
    summaries = [rotate("--batch-size", "7")]
    while any(thread.is_alive() for thread in threads):
        summaries.append(rotate("--batch-size", "7"))
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    summaries.append(rotate())
    resealed = sum(int(re.match(r"re-sealed (\d+) ", s)[1]) for s in summaries)
    assert WRITTEN <= resealed <= SESSIONS, summaries
    expected = {token: {"start": i} for i, token in enumerate(tokens)}
    for thread in range(WRITERS):
        for n in range(WRITES):
            expected[tokens[written_to(thread, n)]][f"t{thread}-{n}"] = n
    keys(settings, NEW)
    for token, data in expected.items():
        session = rotatable.store_class(token)
        assert dict(session.items()) == data
        blob = blob_of(rotatable, session.key_hash)
        assert crypto.key_id_of(blob) == key_id(NEW)
