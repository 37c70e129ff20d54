"""Sessions that cannot be stored: refused with a clear exception, before any write.

DESIGN §9: a session over ``SCS["MAX_BYTES"]`` raises ``SessionTooLarge``, a
value the serializer cannot encode (an object, a reference cycle, 100,000
levels of nesting) raises ``SessionNotSerializable``; both before the store
is asked to write, so the stored session stays as it was.

Through a view, the exception comes out of the middleware's
``process_response``; Django answers it with its 500 page and logs it (with
the traceback) on ``django.request``. Nothing is written and no cookie is
set or deleted, so the visitor keeps the session they had.
"""

import pytest
from asgiref.sync import async_to_sync
from django.conf import settings

from scs_django import codec, crypto, tokens
from scs_django.exceptions import SessionNotSerializable, SessionTooLarge
from tests.engines import DB_ENGINES
from tests.security.transport import json_body, session_cookie
from tests.views import _unstorable

pytestmark = pytest.mark.django_db(databases="__all__")

NAME = settings.SESSION_COOKIE_NAME
MAX_BYTES = 4096

UNSTORABLE = {
    "over-max-bytes": (lambda: "x" * MAX_BYTES, SessionTooLarge),
    "object": (lambda: _unstorable("object"), SessionNotSerializable),
    "reference-cycle": (lambda: _unstorable("circular"), SessionNotSerializable),
    "nested-100k-deep": (lambda: _unstorable("nested"), SessionNotSerializable),
    "set": (lambda: {1, 2}, SessionNotSerializable),
    "bytes": (lambda: b"\x00\xff", SessionNotSerializable),
    "tuple-key": (lambda: {(1, 2): "x"}, SessionNotSerializable),
}


@pytest.fixture(autouse=True)
def max_bytes(settings):
    settings.SCS = {"MAX_BYTES": MAX_BYTES}


@pytest.mark.parametrize("kind", list(UNSTORABLE))
def test_unstorable_change_is_refused_before_any_write(
    kind, engine, live_token, stored
):
    make, error = UNSTORABLE[kind]
    before = stored(live_token)
    session = engine.store_class(live_token)
    assert session["value"] == "secret"
    session["value"] = make()
    with engine.no_traffic():
        with pytest.raises(error) as info:
            session.save()
    # The message names what refused it, and says what to do.
    message = str(info.value)
    assert settings.SESSION_SERIALIZER in message or 'SCS["MAX_BYTES"]' in message
    assert "Store " in message
    assert stored(live_token) == before
    assert engine.store_class(live_token)["value"] == "secret"


@pytest.mark.parametrize("kind", list(UNSTORABLE))
def test_unstorable_new_session_stores_nothing(kind, engine):
    make, error = UNSTORABLE[kind]
    session = engine.store_class()
    session["value"] = make()
    with engine.no_traffic():
        with pytest.raises(error):
            session.save()
    assert session.session_key is None
    assert engine.stored.hashes() == set()


@pytest.mark.parametrize("kind", ["over-max-bytes", "nested-100k-deep"])
def test_unstorable_change_is_refused_by_asave_too(kind, engine, live_token, stored):
    make, error = UNSTORABLE[kind]
    before = stored(live_token)

    async def scenario():
        session = engine.store_class(live_token)
        await session.aset("value", make())
        await session.asave()

    with pytest.raises(error):
        async_to_sync(scenario)()
    assert stored(live_token) == before


def test_max_bytes_is_the_size_of_the_stored_envelope(engine, stored, settings):
    value = "y" * 1000
    first = engine.store_class()
    first["value"] = value
    first.save()
    size = len(stored(first.session_key)["data"])
    settings.SCS = {"MAX_BYTES": size}
    session = engine.store_class()
    session["value"] = value
    session.save()
    assert engine.store_class(session.session_key)["value"] == value
    settings.SCS = {"MAX_BYTES": size - 1}
    other = engine.store_class()
    other["value"] = value
    with pytest.raises(SessionTooLarge, match=rf"is {size} bytes, more than"):
        other.save()


def test_renewing_an_oversized_session_keeps_the_old_token_and_data(
    engine, live_token, stored
):
    before = stored(live_token)
    session = engine.store_class(live_token)
    session["value"] = "x" * MAX_BYTES
    with pytest.raises(SessionTooLarge):
        session.renew_token()
    assert stored(live_token) == before
    assert engine.stored.hashes() == {tokens.hash_token(live_token)}


@pytest.mark.parametrize(
    "path, error",
    [
        (f"/write-oversized/?bytes={MAX_BYTES}", SessionTooLarge),
        ("/write-unstorable/?kind=object", SessionNotSerializable),
        ("/write-unstorable/?kind=nested", SessionNotSerializable),
    ],
)
def test_view_storing_too_much_gets_a_500_and_keeps_the_session_and_cookie(
    path, error, transport, engine, live_token, stored, log_scan
):
    before = stored(live_token)
    url, _, query = path.partition("?")
    key, _, value = query.partition("=")
    response = transport.get(url, cookie=f"{NAME}={live_token}", query={key: value})
    assert response.status_code == 500
    assert session_cookie(response) is None
    assert stored(live_token) == before
    [logged] = [r for r in log_scan.records if r.name == "django.request"]
    assert logged.exc_info[0] is error
    response = transport.get("/read/", cookie=f"{NAME}={live_token}")
    assert json_body(response)["value"] == "secret"


@pytest.mark.parametrize("kind", ["object", "nested"])
def test_view_storing_too_much_without_a_session_gets_no_cookie(
    kind, transport, engine
):
    response = transport.get("/write-unstorable/", query={"kind": kind})
    assert response.status_code == 500
    assert session_cookie(response) is None
    assert engine.stored.hashes() == set()


@pytest.mark.parametrize("engine", DB_ENGINES, indirect=True)
def test_deeply_nested_blob_in_the_store_is_no_session(engine, live_token):
    # What the encoder refuses may still be planted in a row: it must not
    # crash the decoder (RecursionError) but read as "no session".
    nested = "[" * 100_000 + "]" * 100_000
    plain = codec.PLAIN + ('{"c":1,"a":2,"d":{"value":' + nested + "}}").encode()
    key_hash = tokens.hash_token(live_token)
    # Sealed as the engine seals, so that it reaches the decoder.
    blob = crypto.seal(plain, key_hash=key_hash, purpose=codec.PURPOSE)
    model = engine.store_class.get_model_class()
    model.objects.filter(key_hash=key_hash).update(data=blob)
    assert codec.decode(blob, key_hash) is None
    session = engine.store_class(live_token)
    assert session.get("value") is None
    assert session.session_key is None
