"""The sealed-cookie engine (``scs_django.backends.cookie``): the whole session
sealed into its cookie, nothing kept on the server.

Most tests go through the test client and scs_django's middleware, as a
browser would. Tests that need no user run without a database: a query would
fail them, which is how they show that the engine sends none.

The applicable part of the contract suite (tests/test_contract.py) is
imported at the end and runs here on this engine; the rest of it is about a
store on the server (token hashes, ``exists()``, deleting by key, revoking,
``clear_expired``) and does not apply.
"""

from __future__ import annotations

import base64
import logging
import os
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from django.conf import settings as django_settings
from django.contrib.auth import get_user
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.test import AsyncClient, Client, RequestFactory
from django.test.utils import override_settings

from scs_django import crypto, sessions, tokens
from scs_django.backends.cookie import (
    COOKIE_LIMIT,
    PURPOSE,
    SessionStore,
    set_cookie_length,
)
from scs_django.exceptions import SessionNotSerializable, SessionTooLarge
from tests.factories import PASSWORD
from tests.security.transport import Transport, json_body, session_cookie
from tests.utils import START, post_login, token_of

ENGINE = "scs_django.backends.cookie"
NAME = django_settings.SESSION_COOKIE_NAME
KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
ALGORITHMS = list(crypto.ALGORITHMS)


@pytest.fixture(autouse=True)
def cookie_engine(settings):
    settings.SESSION_ENGINE = ENGINE


@pytest.fixture
def store_class():
    return SessionStore


@pytest.fixture
def session():
    return SessionStore()


def blob_of(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def text_of(blob: bytes) -> str:
    return base64.urlsafe_b64encode(blob).rstrip(b"=").decode("ascii")


def sealed_cookie(**data) -> str:
    """The cookie value of a session holding ``data``, sealed now."""
    session = SessionStore()
    session.update(data)
    session.save()
    return session.session_key


def read_with(value: str | None, path: str = "/read/"):
    """What a browser sending ``value`` as its session cookie gets back."""
    client = Client()
    if value is not None:
        client.cookies[NAME] = value
    return client.get(path)


def is_cleared(response) -> bool:
    morsel = session_cookie(response)
    return morsel is not None and morsel.value == "" and morsel["max-age"] == 0


# -- the round trip ----------------------------------------------------------------


def test_a_write_sends_the_sealed_session_and_a_read_gets_it_back(client):
    response = client.get("/write/", {"value": "cart"})
    morsel = response.cookies[NAME]
    assert SessionStore.accepts_cookie(morsel.value)
    assert not tokens.is_well_formed(morsel.value)
    assert crypto.is_sealed(blob_of(morsel.value))
    assert b"cart" not in blob_of(morsel.value)
    assert morsel["max-age"] == django_settings.SESSION_COOKIE_AGE
    assert morsel["httponly"] is True
    assert morsel["path"] == "/"
    assert morsel["samesite"] == "Lax"
    assert "private" in response["Cache-Control"]
    assert "Cookie" in response["Vary"]
    response = client.get("/read/")
    assert response.json() == {"value": "cart", "user": None}
    assert NAME not in response.cookies  # a read re-seals nothing


def test_a_visitor_whose_session_stays_empty_gets_no_cookie(client, settings):
    settings.SESSION_SAVE_EVERY_REQUEST = True
    for path in ("/read/", "/untouched/"):
        assert NAME not in client.get(path).cookies


def test_save_every_request_seals_a_live_session_again(client, settings):
    settings.SESSION_SAVE_EVERY_REQUEST = True
    client.get("/write/", {"value": "cart"})
    first = token_of(client)
    response = client.get("/untouched/")
    assert response.cookies[NAME].value not in ("", first)
    assert client.get("/read/").json()["value"] == "cart"


def test_each_seal_is_a_new_value(client):
    client.get("/write/", {"value": "same"})
    first = token_of(client)
    client.get("/write/", {"value": "same"})
    assert token_of(client) != first


def test_a_server_error_response_seals_nothing(client):
    response = client.get("/write-then-fail/")
    assert response.status_code == 500
    assert NAME not in response.cookies


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_each_algorithm_with_explicit_keys(client, settings, algorithm):
    settings.SCS = {"ENCRYPTION": algorithm, "ENCRYPTION_KEYS": [KEY]}
    client.get("/write/", {"value": algorithm})
    assert crypto.key_id_of(blob_of(token_of(client))) == crypto.key_id(KEY)
    assert client.get("/read/").json()["value"] == algorithm
    other = next(name for name in ALGORITHMS if name != algorithm)
    settings.SCS = {"ENCRYPTION": other, "ENCRYPTION_KEYS": [KEY]}
    assert client.get("/read/").json()["value"] is None


def test_rotated_keys_keep_cookies_open_and_seal_anew_under_the_first(client, settings):
    settings.SCS = {"ENCRYPTION_KEYS": [KEY]}
    client.get("/write/", {"value": "kept"})
    settings.SCS = {"ENCRYPTION_KEYS": [OTHER_KEY, KEY]}
    assert client.get("/read/").json()["value"] == "kept"
    client.get("/write/", {"value": "moved"})
    assert crypto.key_id_of(blob_of(token_of(client))) == crypto.key_id(OTHER_KEY)


def test_async_views_and_twins(settings):
    async def browse():
        client = AsyncClient()
        response = await client.get("/async/write/", {"value": "async"})
        value = response.cookies[NAME].value
        response = await client.get("/async/read/")
        return value, response.json()["value"]

    value, read = async_to_sync(browse)()
    assert read == "async"

    async def twins():
        session = SessionStore(value)
        assert await session.aload() == {"value": "async"}
        await session.aset("more", 1)
        await session.asave()
        again = SessionStore(session.session_key)
        assert await again.aget("more") == 1
        assert not await again.aexists(session.session_key)
        await again.acycle_key()
        assert again.modified
        await again.aflush()
        assert again.session_key is None
        assert await again.aget_expiry_age() == django_settings.SESSION_COOKIE_AGE

    async_to_sync(twins)()


# -- deadlines ---------------------------------------------------------------------


def test_idle_timeout_ends_an_unused_cookie_and_activity_reseals_it(
    client, settings, clock
):
    settings.SCS = {"IDLE_TIMEOUT": 600, "TOUCH_INTERVAL": 60}
    response = client.get("/write/", {"value": "idle"})
    assert response.cookies[NAME]["max-age"] == 600
    first = token_of(client)
    clock.shift(timedelta(seconds=59))
    assert NAME not in client.get("/read/").cookies  # not due yet: no new seal
    clock.shift(timedelta(seconds=1))
    response = client.get("/read/")
    assert response.json()["value"] == "idle"
    assert response.cookies[NAME].value != first  # re-sealed: a new last-seen
    assert response.cookies[NAME]["max-age"] == 600
    clock.shift(timedelta(seconds=599))
    assert client.get("/read/").json()["value"] == "idle"
    # The copy last seen at the start has passed its idle deadline.
    assert read_with(first).json()["value"] is None
    clock.shift(timedelta(seconds=600))
    response = client.get("/read/")
    assert response.json()["value"] is None
    assert is_cleared(response)


def test_activity_reseals_at_most_once_per_touch_interval(client, settings, clock):
    settings.SCS = {"IDLE_TIMEOUT": 600, "TOUCH_INTERVAL": 60}
    client.get("/write/", {"value": "busy"})
    resealed = []
    for second in range(10, 181, 10):
        clock.shift(timedelta(seconds=10))
        if NAME in client.get("/read/").cookies:
            resealed.append(second)
    assert resealed == [60, 120, 180]


def test_absolute_deadline_is_not_extended_by_activity(client, settings, clock):
    settings.SCS = {"ABSOLUTE_TIMEOUT": 600, "IDLE_TIMEOUT": 300, "TOUCH_INTERVAL": 10}
    response = client.get("/write/", {"value": "short"})
    assert response.cookies[NAME]["max-age"] == 300
    for elapsed in range(100, 600, 100):
        clock.shift(timedelta(seconds=100))
        response = client.get("/write/", {"value": "short"})
        # Max-Age never outlives the absolute deadline.
        assert response.cookies[NAME]["max-age"] == min(300, 600 - elapsed)
    clock.shift(timedelta(seconds=99))
    assert client.get("/read/").json()["value"] == "short"
    clock.shift(timedelta(seconds=1))
    response = client.get("/read/")
    assert response.json()["value"] is None
    assert is_cleared(response)


def test_a_lowered_absolute_timeout_applies_to_sealed_cookies(settings, clock):
    value = sealed_cookie(value="old")
    settings.SCS = {"ABSOLUTE_TIMEOUT": 60}
    clock.shift(timedelta(seconds=59))
    assert SessionStore(value).get("value") == "old"
    clock.shift(timedelta(seconds=1))
    assert SessionStore(value).get("value") is None


def test_fixed_deadline_from_set_expiry_datetime(client, clock):
    session = SessionStore()
    session["value"] = "until noon"
    session.set_expiry(START + timedelta(seconds=100))
    session.save()
    assert session.get_cookie_age() == 100
    client.cookies[NAME] = session.session_key
    clock.shift(timedelta(seconds=50))
    response = client.get("/write/", {"value": "still"})
    assert response.cookies[NAME]["max-age"] == 50  # the deadline stays put
    clock.shift(timedelta(seconds=49))
    assert client.get("/read/").json()["value"] == "still"
    clock.shift(timedelta(seconds=1))
    assert client.get("/read/").json()["value"] is None


def test_set_expiry_seconds_is_a_per_session_idle_timeout(client, clock):
    response = client.get("/set-expiry/", {"seconds": 120})
    assert response.cookies[NAME]["max-age"] == 120
    clock.shift(timedelta(seconds=119))
    assert client.get("/read/").json()["value"] == "expiring"
    clock.shift(timedelta(seconds=120))
    assert client.get("/read/").json()["value"] is None


def test_lifetime_is_inside_the_seal(clock):
    session = SessionStore(sealed_cookie(value="x"))
    session.load()
    assert session.created_at == START
    assert session.absolute_expiry == START + timedelta(
        seconds=django_settings.SESSION_COOKIE_AGE
    )
    assert session.idle_expiry is None


def test_browser_session_cookie_has_no_max_age(client):
    response = client.get("/set-expiry/", {"seconds": 0})
    assert response.cookies[NAME]["max-age"] == ""
    assert client.get("/read/").json()["value"] == "expiring"


# -- login and logout ----------------------------------------------------------------


@pytest.mark.django_db
def test_login_gives_a_new_cookie_and_a_new_created_time(client, user_factory, clock):
    user = user_factory()
    client.get("/write/", {"value": "cart"})
    anonymous = token_of(client)
    clock.shift(timedelta(seconds=100))
    assert post_login(client, user).status_code == 302
    logged_in = token_of(client)
    assert logged_in != anonymous
    assert SessionStore(logged_in).created_at == START + timedelta(seconds=100)
    assert client.get("/read/").json() == {"value": "cart", "user": str(user.pk)}
    clock.shift(timedelta(seconds=100))
    assert post_login(client, user).status_code == 302  # the same user again
    assert token_of(client) != logged_in
    assert SessionStore(token_of(client)).created_at == START + timedelta(seconds=200)


@pytest.mark.django_db
def test_login_restarts_the_absolute_lifetime(client, settings, user_factory, clock):
    settings.SCS = {"ABSOLUTE_TIMEOUT": 600}
    user = user_factory()
    client.get("/write/", {"value": "cart"})
    clock.shift(timedelta(seconds=500))
    post_login(client, user)
    clock.shift(timedelta(seconds=500))
    assert client.get("/read/").json()["user"] == str(user.pk)


@pytest.mark.django_db
def test_another_user_logging_in_on_top_gets_an_empty_session(client, user_factory):
    alice, bob = user_factory(), user_factory()
    post_login(client, alice)
    client.get("/write/", {"value": "alice's"})
    post_login(client, bob)
    assert client.get("/read/").json() == {"value": None, "user": str(bob.pk)}


@pytest.mark.parametrize("path", ["/renew/", "/cycle-key/"])
def test_renewal_sends_a_new_value_with_the_same_data_and_lifetime(client, clock, path):
    client.get("/write/", {"value": "kept"})
    before = token_of(client)
    clock.shift(timedelta(seconds=10))
    response = client.get(path)
    after = response.cookies[NAME].value
    assert after not in ("", before)
    assert SessionStore(after).load() == {"value": "kept"}
    assert SessionStore(after).created_at == START


@pytest.mark.django_db
def test_test_client_login_and_force_login(user_factory):
    user = user_factory()
    client = Client()
    assert client.login(username=user.username, password=PASSWORD)
    assert client.get("/read/").json()["user"] == str(user.pk)
    other = Client()
    other.force_login(user)
    assert other.get("/read/").json()["user"] == str(user.pk)


@pytest.mark.django_db
def test_async_client_login(user_factory):
    user = user_factory()

    async def scenario():
        client = AsyncClient()
        await client.aforce_login(user)
        return (await client.get("/read/")).json()["user"]

    assert async_to_sync(scenario)() == str(user.pk)


@pytest.mark.django_db
def test_logout_clears_the_cookie(client, user_factory):
    user = user_factory()
    post_login(client, user)
    response = client.post("/accounts/logout/")
    assert is_cleared(response)
    assert client.get("/read/").json() == {"value": None, "user": None}


def test_flush_clears_the_cookie_and_flushing_nothing_sends_none(client):
    client.get("/write/")
    assert is_cleared(client.get("/logout-session/"))
    assert NAME not in Client().get("/logout-session/").cookies


@pytest.mark.django_db
def test_a_cookie_copied_before_logout_works_until_its_deadline(
    client, settings, user_factory, clock
):
    # The limit this engine documents: nothing on the server can end a cookie.
    settings.SCS = {"ABSOLUTE_TIMEOUT": 3600}
    user = user_factory()
    post_login(client, user)
    copied = token_of(client)
    client.post("/accounts/logout/")
    assert read_with(copied).json()["user"] == str(user.pk)
    clock.shift(timedelta(seconds=3600))
    response = read_with(copied)
    assert response.json()["user"] is None
    assert is_cleared(response)


@pytest.mark.django_db
def test_a_password_change_logs_out_copies_through_djangos_session_hash(
    client, user_factory
):
    user = user_factory()
    post_login(client, user)
    copied = token_of(client)
    response = client.post(
        "/accounts/password_change/",
        {
            "old_password": PASSWORD,
            "new_password1": "another long passphrase",
            "new_password2": "another long passphrase",
        },
    )
    assert response.status_code == 302
    assert token_of(client) != copied
    request = RequestFactory().get("/")
    request.session = SessionStore(token_of(client))
    assert get_user(request) == user
    request.session = SessionStore(copied)
    assert get_user(request).is_anonymous  # the copy still opens, but signs nobody in


@pytest.mark.django_db
def test_deactivating_the_user_logs_out_copies(client, user_factory):
    user = user_factory()
    post_login(client, user)
    request = RequestFactory().get("/")
    request.session = SessionStore(token_of(client))
    assert get_user(request) == user
    user.is_active = False
    user.save()
    request.session = SessionStore(token_of(client))
    assert get_user(request).is_anonymous


@pytest.mark.django_db
def test_a_users_sessions_cannot_be_listed_or_revoked(user_factory):
    user = user_factory()
    with pytest.raises(NotImplementedError, match="cannot list or revoke"):
        sessions.for_user(user)
    with pytest.raises(NotImplementedError, match="cannot list or revoke"):
        sessions.revoke(user)
    with pytest.raises(NotImplementedError):
        async_to_sync(sessions.afor_user)(user)


def test_cleanup_has_nothing_to_do_and_says_so(capsys):
    call_command("scs_cleanup")
    call_command("scs_cleanup", "--dry-run")
    out = capsys.readouterr().out
    assert f"{ENGINE} keeps no scs_django session table" in out
    SessionStore.clear_expired()
    async_to_sync(SessionStore.aclear_expired)()


# -- cookies that do not open ---------------------------------------------------------


def flipped(value: str, byte: int) -> str:
    blob = bytearray(blob_of(value))
    blob[byte] ^= 0x01
    return text_of(bytes(blob))


def foreign(**scs) -> str:
    with override_settings(SCS=scs):
        return sealed_cookie(value="planted")


def resealed(value: str, **binding) -> str:
    """``value``'s content sealed again for another ``key_hash`` or ``purpose``."""
    plain = crypto.open_sealed(blob_of(value), key_hash=NAME, purpose=PURPOSE)
    assert plain is not None
    binding = {"key_hash": NAME, "purpose": PURPOSE, **binding}
    return text_of(crypto.seal(plain, **binding))


TAMPERED = {
    "flipped-version": lambda v: flipped(v, 0),
    "flipped-key-id": lambda v: flipped(v, 4),
    "flipped-nonce": lambda v: flipped(v, crypto.HEADER_BYTES - 1),
    "flipped-ciphertext": lambda v: flipped(v, len(blob_of(v)) // 2),
    "flipped-tag": lambda v: flipped(v, len(blob_of(v)) - 1),
    "truncated-by-a-byte": lambda v: text_of(blob_of(v)[:-1]),
    "truncated-to-the-header": lambda v: text_of(blob_of(v)[: crypto.MIN_BYTES]),
    "garbage": lambda v: text_of(os.urandom(len(blob_of(v)))),
    "another-sites-key": lambda v: foreign(ENCRYPTION_KEYS=[OTHER_KEY]),
    "another-algorithm": lambda v: foreign(ENCRYPTION="chacha20-poly1305"),
    "another-purpose": lambda v: resealed(v, purpose=b"session"),
    "another-cookie-name": lambda v: resealed(v, key_hash="othername"),
}
MALFORMED = {
    "token": tokens.new_token(),
    "too-short": "A" * 49,
    "too-long": "A" * (COOKIE_LIMIT + 1),
    "not-base64url": "A" * 60 + "+/",
    "padded": "A" * 60 + "==",
    "nul": "A" * 60 + "\x00",
}


@pytest.mark.parametrize("how", list(TAMPERED))
@pytest.mark.parametrize("over", ["wsgi", "asgi"])
def test_a_tampered_cookie_is_a_fresh_anonymous_session(how, over, caplog):
    value = TAMPERED[how](sealed_cookie(value="secret"))
    transport = Transport(over)
    with caplog.at_level(logging.INFO, logger="scs_django"):
        response = transport.get("/read/", cookie=f"{NAME}={value}")
    assert response.status_code == 200
    assert json_body(response)["value"] is None
    assert is_cleared(response)
    lines = [r for r in caplog.records if r.name.startswith("scs_django")]
    assert len(lines) <= 1
    for record in lines:
        assert record.name == "scs_django.security"
        assert value[:16] not in record.getMessage()
    # A write starts a session of its own: nothing of the cookie is adopted.
    response = transport.get("/write/", cookie=f"{NAME}={value}")
    fresh = SessionStore(session_cookie(response).value)
    assert fresh.load() == {"value": "written"}


@pytest.mark.parametrize("how", list(MALFORMED))
def test_a_malformed_cookie_never_reaches_the_engine(how, caplog):
    transport = Transport("wsgi")
    with caplog.at_level(logging.INFO, logger="scs_django"):
        response = transport.get("/read/", cookie=f"{NAME}={MALFORMED[how]}")
    assert response.status_code == 200
    assert json_body(response)["value"] is None
    [line] = [r for r in caplog.records if r.name.startswith("scs_django")]
    assert line.getMessage().startswith("Ignored a malformed session cookie")


def test_a_cookie_that_opens_to_no_envelope_is_no_session():
    for plain in (b"", b"\x01not json", b'\x01{"d": {}, "c": 1}', b'\x01["d"]'):
        value = text_of(crypto.seal(plain, key_hash=NAME, purpose=PURPOSE))
        assert SessionStore(value).load() == {}


def test_impossible_deadlines_are_no_session(caplog):
    plain = (
        b'\x01{"c":99999999999999999999999,"a":99999999999999999999999,"s":1,"d":{}}'
    )
    value = text_of(crypto.seal(plain, key_hash=NAME, purpose=PURPOSE))
    session = SessionStore(value)
    with caplog.at_level(logging.INFO, logger="scs_django"):
        assert session.load() == {}
    assert session.session_key is None
    [line] = caplog.records
    assert "impossible deadlines" in line.getMessage()


# -- size --------------------------------------------------------------------------


def test_a_cookie_past_4_kb_is_refused_at_save(clock):
    # The largest value that fits, then one byte more.
    low, high = 0, COOKIE_LIMIT
    while low < high:
        middle = (low + high + 1) // 2
        try:
            sealed_cookie(value="x" * middle)
        except SessionTooLarge:
            high = middle - 1
        else:
            low = middle
    session = SessionStore()
    session["value"] = "x" * low
    session.save()
    age = session.get_cookie_age()
    assert set_cookie_length(session.session_key, age) <= COOKIE_LIMIT
    session["value"] = "x" * (low + 1)
    with pytest.raises(SessionTooLarge, match="more than the 4096 browsers keep"):
        session.save()
    # The session keeps the value it had, which still opens.
    assert SessionStore(session.session_key).get("value") == "x" * low


def test_the_computed_length_is_what_the_middleware_sends(client, settings):
    settings.SESSION_COOKIE_DOMAIN = "example.com"
    settings.SESSION_COOKIE_PATH = "/app/"
    response = client.get("/write/", secure=True)
    morsel = response.cookies[NAME]
    assert morsel["secure"] is True
    assert len(morsel.OutputString()) == set_cookie_length(
        morsel.value, int(morsel["max-age"])
    )


@pytest.mark.parametrize("over", ["wsgi", "asgi"])
def test_a_view_storing_too_much_gets_a_500_and_keeps_its_cookie(over):
    value = sealed_cookie(value="small")
    transport = Transport(over)
    response = transport.get(
        "/write-oversized/", cookie=f"{NAME}={value}", query={"bytes": "4000"}
    )
    assert response.status_code == 500
    assert session_cookie(response) is None
    response = transport.get("/read/", cookie=f"{NAME}={value}")
    assert json_body(response)["value"] == "small"
    response = transport.get("/write-oversized/", query={"bytes": "4000"})
    assert response.status_code == 500
    assert session_cookie(response) is None


def test_max_bytes_applies_to_the_sealed_session(settings):
    settings.SCS = {"MAX_BYTES": 200}
    with pytest.raises(SessionTooLarge, match=r'SCS\["MAX_BYTES"\] = 200'):
        sealed_cookie(value="x" * 200)


def test_an_unserialisable_value_is_refused():
    with pytest.raises(SessionNotSerializable):
        sealed_cookie(value=object())


# -- sealing is required ---------------------------------------------------------------


def test_the_engine_refuses_to_work_unsealed(settings):
    value = sealed_cookie(value="sealed")
    settings.SCS = {"ENCRYPTION": None}
    with pytest.raises(ImproperlyConfigured, match="anyone could write"):
        sealed_cookie(value="plain")
    with pytest.raises(ImproperlyConfigured, match="anyone could write"):
        SessionStore(value).load()
    SessionStore().load()  # no cookie, nothing to open: no error


# -- the contract suite, where it applies ----------------------------------------------
# Collected here, they run with this module's store_class and session fixtures.
# Left out: everything that looks at the store (engine.stored, token hashes,
# exists(), delete by key, renewal killing the old token, sessions ended
# elsewhere, clear_expired, a user's sessions), and the tests that save under
# one key and load the old key again (a cookie is a new value at every save).

from tests.test_contract import (  # noqa: E402, F401
    test_aget_expire_at_browser_close,
    test_aget_expiry_age_and_date,
    test_aget_expiry_age_default_is_the_absolute_timeout,
    test_ahas_key_akeys_avalues_aitems,
    test_aload,
    test_apop,
    test_aset_and_aget_roundtrip_through_a_new_store,
    test_aset_expiry,
    test_asetdefault,
    test_async_session_with_a_past_deadline_is_gone,
    test_async_test_cookie_helpers,
    test_clear_empties_the_session_and_marks_modified,
    test_default_expiry_age_is_the_absolute_timeout,
    test_default_expiry_date_is_the_absolute_timeout_from_modification,
    test_deleting_a_value_marks_the_session_modified,
    test_every_new_session_gets_its_own_token,
    test_expire_at_browser_close_follows_the_setting_unless_set,
    test_fixed_deadline_beyond_the_absolute_one_still_ends_at_the_absolute_one,
    test_has_key_reads_without_modifying,
    test_idle_timeout_ends_a_session_after_inactivity_only,
    test_keys_values_and_items_read_without_modifying,
    test_loading_a_stored_session_does_not_mark_it_modified,
    test_new_session_is_empty_untouched_and_has_no_key,
    test_pop_of_a_missing_key_returns_the_default_without_marking_modified,
    test_pop_of_a_missing_key_without_default_raises_key_error,
    test_pop_returns_an_existing_value_and_marks_modified,
    test_reading_a_missing_key_gives_none_or_the_default,
    test_saved_data_loads_in_a_new_store_with_the_same_key,
    test_session_key_cannot_be_assigned,
    test_session_saved_with_a_past_deadline_is_gone_for_a_new_store,
    test_set_expiry_datetime_is_a_fixed_deadline,
    test_set_expiry_never_goes_beyond_the_absolute_deadline,
    test_set_expiry_none_resets_to_the_defaults,
    test_set_expiry_seconds_is_an_idle_timeout_from_modification,
    test_set_expiry_timedelta_is_a_fixed_deadline,
    test_set_expiry_zero_expires_at_browser_close,
    test_setdefault_sets_only_a_missing_key,
    test_setting_a_value_marks_the_session_modified,
    test_test_cookie_helpers,
    test_update_sets_values_and_marks_modified,
)
