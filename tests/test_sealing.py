"""Session data sealed at rest on every engine (DESIGN §7): what the store
holds opens only for its own session, and anything else is no session."""

from __future__ import annotations

import base64
import logging
import pickle

import pytest
from asgiref.sync import async_to_sync

from scs_django import codec, crypto, tokens
from tests.engines import CacheEntries, DatabaseRows, RedisValues

pytestmark = pytest.mark.django_db(databases="__all__")

ALGORITHMS = ["aes-gcm", "chacha20-poly1305"]
EXPLICIT = [base64.b64encode(bytes(range(32))).decode()]
SECRET = "plum tart, second shelf"


@pytest.fixture(params=["derived", "explicit"])
def keys(request):
    return request.param


def seal_with(settings, algorithm, keys):
    extra = {"ENCRYPTION_KEYS": EXPLICIT} if keys == "explicit" else {}
    settings.SCS = {**getattr(settings, "SCS", {}), "ENCRYPTION": algorithm, **extra}


def saved(engine, **data):
    session = engine.store_class()
    session.update(data)
    session.save()
    return session


def stored_blob(engine, key_hash):
    row = engine.stored.get(key_hash)
    assert row is not None
    return bytes(row["data"])


def replace_blob(engine, key_hash, blob, *, in_cache=False):
    """Put ``blob`` where the engine keeps the session's data: its database
    row (cached_db: and drop the copy, so the row is read), its Redis value or
    its cache entry; with ``in_cache``, cached_db's copy in Redis instead."""
    view = engine.stored
    if engine.kind == "cached_db" and in_cache:
        view = engine.cached()
    if isinstance(view, DatabaseRows):
        model = engine.store_class.get_model_class()
        assert model.objects.filter(key_hash=key_hash).update(data=blob) == 1
        if engine.kind == "cached_db":
            engine.redis().delete(engine.cached().key(key_hash))
    elif isinstance(view, RedisValues):
        key = view.key(key_hash)
        value = engine.redis().get(key)
        head = len(value) - len(view.get(key_hash)["data"])
        assert engine.redis().set(key, value[:head] + blob, keepttl=True)
    else:
        assert isinstance(view, CacheEntries)
        entry = view.get(key_hash)
        header = entry["raw"][: len(entry["raw"]) - len(entry["data"])]
        key = f"{view.prefix}s:{key_hash}"
        view.cache.set(key, header + blob, 3600)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_a_session_round_trips_sealed(engine, settings, algorithm, keys):
    seal_with(settings, algorithm, keys)
    session = saved(engine, secret=SECRET)
    blob = stored_blob(engine, session.key_hash)
    assert crypto.is_sealed(blob)
    assert crypto.key_id_of(blob) == crypto.current_key_id()
    assert SECRET.encode() not in blob
    assert engine.store_class(session.session_key)["secret"] == SECRET

    async def asynchronously():
        session = engine.store_class()
        await session.aset("secret", SECRET)
        await session.asave()
        loaded = engine.store_class(session.session_key)
        return session.key_hash, await loaded.aget("secret")

    key_hash, value = async_to_sync(asynchronously)()
    assert value == SECRET
    assert crypto.is_sealed(stored_blob(engine, key_hash))


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_a_renewal_reseals_the_data_for_the_new_token(engine, settings, algorithm):
    seal_with(settings, algorithm, "derived")
    session = saved(engine, secret=SECRET)
    old_hash, old_blob = session.key_hash, stored_blob(engine, session.key_hash)
    session.renew_token()
    new_blob = stored_blob(engine, session.key_hash)
    assert codec.decode(new_blob, session.key_hash).data == {"secret": SECRET}
    # Bound to its token's hash: the old blob does not open as the new session.
    assert codec.decode(old_blob, session.key_hash) is None
    assert codec.decode(new_blob, old_hash) is None
    assert engine.store_class(session.session_key)["secret"] == SECRET


def test_the_algorithms_do_not_open_each_others_blobs(engine, settings):
    seal_with(settings, "aes-gcm", "derived")
    session = saved(engine, secret=SECRET)
    seal_with(settings, "chacha20-poly1305", "derived")
    assert engine.store_class(session.session_key).get("secret") is None


def flipped(blob, offset):
    return blob[:offset] + bytes([blob[offset] ^ 0x01]) + blob[offset + 1 :]


REGIONS = {
    "version": lambda b: flipped(b, 0),
    "key id": lambda b: flipped(b, 1 + crypto.KEY_ID_BYTES - 1),
    "nonce": lambda b: flipped(b, crypto.HEADER_BYTES - 1),
    "ciphertext": lambda b: flipped(b, crypto.HEADER_BYTES),
    "tag": lambda b: flipped(b, len(b) - 1),
    "empty": lambda b: b"",
    "one byte": lambda b: b[:1],
    "header - 1": lambda b: b[: crypto.HEADER_BYTES - 1],
    "header": lambda b: b[: crypto.HEADER_BYTES],
    "header + 15": lambda b: b[: crypto.HEADER_BYTES + 15],
    "garbage appended": lambda b: b + b"\x00garbage",
}


@pytest.mark.parametrize("tamper", list(REGIONS))
def test_a_tampered_blob_is_no_session(engine, tamper, caplog):
    session = saved(engine, secret=SECRET)
    blob = stored_blob(engine, session.key_hash)
    replace_blob(engine, session.key_hash, REGIONS[tamper](blob))
    with caplog.at_level(logging.INFO, logger="scs_django"):
        loaded = engine.store_class(session.session_key)
        assert loaded.get("secret") is None
    assert loaded.session_key is None  # a fresh anonymous session
    warnings = [r for r in caplog.records if r.name == "scs_django.security"]
    assert len(warnings) == 1
    assert session.session_key not in warnings[0].getMessage()
    assert session.key_hash not in warnings[0].getMessage()


def test_a_blob_moved_to_another_session_does_not_open(engine):
    victim = saved(engine, _auth_user_id="1", secret=SECRET)
    attacker = saved(engine, secret="mine")
    replace_blob(engine, attacker.key_hash, stored_blob(engine, victim.key_hash))
    loaded = engine.store_class(attacker.session_key)
    assert loaded.get("_auth_user_id") is None
    assert loaded.get("secret") is None
    assert loaded.session_key is None


@pytest.mark.parametrize("engine", ["cached_db-redis"], indirect=True)
def test_a_tampered_cache_copy_is_no_session_either(engine):
    session = saved(engine, secret=SECRET)
    engine.store_class(session.session_key).load()  # the copy is in Redis
    blob = engine.cached().get(session.key_hash)["data"]
    replace_blob(engine, session.key_hash, flipped(blob, len(blob) - 1), in_cache=True)
    assert engine.store_class(session.session_key).get("secret") is None


class Canary:
    ran = False

    def __reduce__(self):
        return (Canary.trip, ())

    @staticmethod
    def trip():
        Canary.ran = True


def test_a_planted_plain_envelope_or_pickle_is_no_session(engine):
    session = saved(engine, secret=SECRET)
    plain = codec.PLAIN + b'{"c": 0, "a": 99999999999999999, "d": {"secret": "x"}}'
    replace_blob(engine, session.key_hash, plain)
    assert engine.store_class(session.session_key).get("secret") is None
    session = saved(engine, secret=SECRET)
    replace_blob(engine, session.key_hash, pickle.dumps({"canary": Canary()}))
    assert engine.store_class(session.session_key).get("secret") is None
    assert not Canary.ran


def test_with_encryption_off_sessions_are_plain_and_sealed_ones_are_gone(
    engine, settings
):
    sealed = saved(engine, secret=SECRET)
    settings.SCS = {**getattr(settings, "SCS", {}), "ENCRYPTION": None}
    plain = saved(engine, secret=SECRET)
    blob = stored_blob(engine, plain.key_hash)
    assert blob.startswith(codec.PLAIN) and not crypto.is_sealed(blob)
    assert engine.store_class(plain.session_key)["secret"] == SECRET
    # Never read as plain data: what was sealed is no session without keys.
    assert engine.store_class(sealed.session_key).get("secret") is None
    assert tokens.is_well_formed(sealed.session_key)
