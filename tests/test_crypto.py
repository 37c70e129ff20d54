"""Sealing: what opens, what does not, and how keys rotate."""

import base64
import json
import pickle

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from scs_django import codec, crypto, tokens

KEY_A = bytes(range(32))
KEY_B = bytes(range(100, 132))
KEY_HASH = tokens.hash_token(tokens.new_token())
OTHER_HASH = tokens.hash_token(tokens.new_token())
PAYLOAD = b'{"_auth_user_id": "1", "cart": [1, 2, 3]}'
ALGORITHMS = ["aes-gcm", "chacha20-poly1305"]


def seal(plaintext=PAYLOAD, *, key_hash=KEY_HASH, purpose=b"db"):
    return crypto.seal(plaintext, key_hash=key_hash, purpose=purpose)


def opened(blob, *, key_hash=KEY_HASH, purpose=b"db"):
    return crypto.open_sealed(blob, key_hash=key_hash, purpose=purpose)


@pytest.fixture
def sealed():
    return seal()


def flip(blob, offset):
    return blob[:offset] + bytes([blob[offset] ^ 0x01]) + blob[offset + 1 :]


# -- round trips -------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_round_trip_with_keys_derived_from_secret_key(settings, algorithm):
    settings.SCS = {"ENCRYPTION": algorithm}
    blob = seal()
    assert opened(blob) == PAYLOAD
    assert len(blob) == crypto.HEADER_BYTES + len(PAYLOAD) + crypto.TAG_BYTES
    assert PAYLOAD not in blob


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize(
    "key",
    [
        KEY_A,
        base64.b64encode(KEY_A).decode(),
        base64.urlsafe_b64encode(KEY_A).decode(),
        base64.urlsafe_b64encode(KEY_A).decode().rstrip("="),
        base64.b64encode(KEY_A).decode().rstrip("="),
    ],
    ids=["bytes", "base64", "urlsafe", "urlsafe-unpadded", "base64-unpadded"],
)
def test_round_trip_with_explicit_keys(settings, algorithm, key):
    settings.SCS = {"ENCRYPTION": algorithm, "ENCRYPTION_KEYS": [key]}
    blob = seal()
    assert opened(blob) == PAYLOAD
    assert crypto.key_id_of(blob) == crypto.key_id(KEY_A)


def test_every_form_of_one_key_seals_for_the_others(settings):
    settings.SCS = {"ENCRYPTION_KEYS": [KEY_A]}
    blob = seal()
    settings.SCS = {"ENCRYPTION_KEYS": [base64.urlsafe_b64encode(KEY_A).decode()]}
    assert opened(blob) == PAYLOAD


@pytest.mark.parametrize("plaintext", [b"", b"\x00", b"x" * 70_000])
def test_any_plaintext_round_trips(plaintext):
    assert opened(seal(plaintext)) == plaintext


def test_a_memoryview_opens_like_bytes(sealed):
    # What PostgreSQL hands back for a binary column.
    assert opened(memoryview(sealed)) == PAYLOAD


# -- binding -----------------------------------------------------------------------


def test_a_blob_copied_to_another_session_does_not_open(sealed):
    assert opened(sealed, key_hash=OTHER_HASH) is None
    assert opened(sealed, key_hash=KEY_HASH.upper()) is None


def test_a_blob_for_another_purpose_does_not_open(sealed):
    assert opened(sealed, purpose=b"cookie") is None
    assert opened(sealed, purpose=b"") is None
    assert opened(seal(purpose=b""), purpose=b"db") is None


def test_purpose_and_key_hash_cannot_trade_bytes():
    blob = seal(key_hash="b" + KEY_HASH, purpose=b"a")
    assert opened(blob, key_hash=KEY_HASH, purpose=b"ab") is None


@pytest.mark.parametrize("sealed_with, opened_with", [ALGORITHMS, ALGORITHMS[::-1]])
def test_a_blob_sealed_with_another_algorithm_does_not_open(
    settings, sealed_with, opened_with
):
    settings.SCS = {"ENCRYPTION": sealed_with}
    blob = seal()
    settings.SCS = {"ENCRYPTION": opened_with}
    assert opened(blob) is None
    settings.SCS = {"ENCRYPTION": sealed_with}
    assert opened(blob) == PAYLOAD


# -- keys and rotation -------------------------------------------------------------


def test_secret_key_fallbacks_open_and_the_new_secret_seals(settings):
    settings.SECRET_KEY = "old-secret-key-of-this-site"
    settings.SECRET_KEY_FALLBACKS = []
    old_blob, old_id = seal(), crypto.current_key_id()

    settings.SECRET_KEY = "new-secret-key-of-this-site"
    settings.SECRET_KEY_FALLBACKS = ["old-secret-key-of-this-site"]
    assert opened(old_blob) == PAYLOAD
    new_blob = seal()
    assert crypto.key_id_of(new_blob) == crypto.current_key_id() != old_id
    assert crypto.key_id_of(old_blob) == old_id

    settings.SECRET_KEY_FALLBACKS = []
    assert opened(old_blob) is None
    assert opened(new_blob) == PAYLOAD


def test_explicit_keys_rotate_and_may_be_reordered(settings):
    settings.SCS = {"ENCRYPTION_KEYS": [KEY_A]}
    blob_a = seal()
    settings.SCS = {"ENCRYPTION_KEYS": [KEY_B, KEY_A]}
    blob_b = seal()
    assert crypto.current_key_id() == crypto.key_id(KEY_B)
    assert crypto.key_id_of(blob_b) == crypto.key_id(KEY_B)
    assert crypto.key_id_of(blob_a) == crypto.key_id(KEY_A)
    assert (opened(blob_a), opened(blob_b)) == (PAYLOAD, PAYLOAD)

    settings.SCS = {"ENCRYPTION_KEYS": [KEY_A, KEY_B]}
    assert (opened(blob_a), opened(blob_b)) == (PAYLOAD, PAYLOAD)
    assert crypto.current_key_id() == crypto.key_id(KEY_A)

    settings.SCS = {"ENCRYPTION_KEYS": [KEY_B]}
    assert (opened(blob_a), opened(blob_b)) == (None, PAYLOAD)


def test_explicit_keys_replace_the_secret_key(settings, sealed):
    settings.SCS = {"ENCRYPTION_KEYS": [KEY_A]}
    assert opened(sealed) is None


def test_derived_keys_differ_per_label_and_never_are_the_secret():
    secret = "s" * 32  # as long as a key: using it raw would be possible
    derived = crypto.derive_key(secret)
    assert len(derived) == crypto.KEY_BYTES
    assert derived != secret.encode()
    assert derived == crypto.derive_key(secret.encode())
    assert derived != crypto.derive_key(secret, label=b"another label")
    assert derived != crypto.derive_key("t" * 32)


def test_the_secret_key_itself_never_seals(settings):
    settings.SECRET_KEY = "k" * 32
    settings.SECRET_KEY_FALLBACKS = []
    blob = seal()
    raw = settings.SECRET_KEY.encode()
    assert crypto.current_key_id() == crypto.key_id(crypto.derive_key(raw))
    assert crypto.key_id_of(blob) != crypto.key_id(raw)
    nonce = blob[1 + crypto.KEY_ID_BYTES : crypto.HEADER_BYTES]
    with pytest.raises(InvalidTag):
        AESGCM(raw).decrypt(nonce, blob[crypto.HEADER_BYTES :], None)


def test_the_key_id_is_not_a_piece_of_the_key():
    key_id = crypto.key_id(KEY_A)
    assert len(key_id) == crypto.KEY_ID_BYTES
    assert key_id not in KEY_A
    assert key_id != crypto.key_id(KEY_B)


def test_an_empty_fallback_gives_no_key(settings):
    settings.SECRET_KEY_FALLBACKS = [""]
    assert crypto.configured_keys() == [crypto.derive_key(settings.SECRET_KEY)]


def test_a_repeated_secret_gives_one_key(settings):
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    assert len(crypto.configured_keys()) == 1


@pytest.mark.parametrize(
    "value, problem",
    [
        (KEY_A[:31], "it is 31 bytes, not 32"),
        (KEY_A + b"!", "it is 33 bytes, not 32"),
        (base64.b64encode(KEY_A[:24]).decode(), "it decodes to 24 bytes, not 32"),
        ("not base64 at all!", "it is not base64"),
        (KEY_A.hex(), "it decodes to 48 bytes, not 32"),
        ("", "it decodes to 0 bytes, not 32"),
        (
            "+" + base64.urlsafe_b64encode(b"\xff" * 32).decode()[1:],
            "it mixes standard",
        ),
        (None, "it is of type NoneType, not bytes or base64 text"),
        (bytearray(KEY_A), "it is of type bytearray, not bytes or base64 text"),
    ],
)
def test_malformed_keys_are_refused(value, problem):
    with pytest.raises(ValueError, match=problem):
        crypto.parse_key(value)


def test_a_malformed_key_is_reported_without_the_key(settings):
    settings.SCS = {"ENCRYPTION_KEYS": [KEY_A, "short"]}
    with pytest.raises(ImproperlyConfigured) as raised:
        seal()
    assert str(raised.value) == (
        'SCS["ENCRYPTION_KEYS"][1] is not a key: it is not base64.'
    )
    with pytest.raises(ImproperlyConfigured):
        opened(b"anything")


def test_an_unknown_algorithm_is_refused(settings):
    settings.SCS = {"ENCRYPTION": "rot13"}
    with pytest.raises(ImproperlyConfigured, match="'rot13'"):
        seal()


# -- settings ----------------------------------------------------------------------


def test_encryption_is_on_by_default(settings):
    settings.SCS = {}
    assert crypto.enabled()
    assert crypto.open_sealed(seal(), key_hash=KEY_HASH, purpose=b"db") == PAYLOAD


def test_turned_off_nothing_seals_and_nothing_opens(settings, sealed):
    settings.SCS = {"ENCRYPTION": None}
    assert not crypto.enabled()
    assert opened(sealed) is None
    with pytest.raises(ImproperlyConfigured):
        seal()
    with pytest.raises(ImproperlyConfigured):
        crypto.current_key_id()
    settings.SCS = {}
    assert opened(sealed) == PAYLOAD


def test_a_new_secret_key_takes_effect_at_once(settings, sealed):
    before = crypto.current_key_id()
    settings.SECRET_KEY = "a-different-secret-key"
    assert crypto.current_key_id() != before
    assert opened(sealed) is None


def test_seal_refuses_arguments_of_the_wrong_kind():
    with pytest.raises(TypeError):
        seal("text")
    with pytest.raises(TypeError):
        seal(purpose="db")
    with pytest.raises(ValueError):
        seal(key_hash="")
    with pytest.raises(ValueError):
        seal(purpose=b"p" * 65_536)


# -- tampering and garbage ---------------------------------------------------------


@pytest.mark.parametrize(
    "offset",
    [
        pytest.param(0, id="version"),
        pytest.param(1, id="key-id-first"),
        pytest.param(crypto.KEY_ID_BYTES, id="key-id-last"),
        pytest.param(1 + crypto.KEY_ID_BYTES, id="nonce-first"),
        pytest.param(crypto.HEADER_BYTES - 1, id="nonce-last"),
        pytest.param(crypto.HEADER_BYTES, id="ciphertext-first"),
        pytest.param(-crypto.TAG_BYTES - 1, id="ciphertext-last"),
        pytest.param(-crypto.TAG_BYTES, id="tag-first"),
        pytest.param(-1, id="tag-last"),
    ],
)
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_a_flipped_bit_anywhere_does_not_open(settings, algorithm, offset):
    settings.SCS = {"ENCRYPTION": algorithm}
    blob = seal()
    assert opened(flip(blob, offset % len(blob))) is None


def test_every_flipped_byte_does_not_open(sealed):
    for offset in range(len(sealed)):
        assert opened(flip(sealed, offset)) is None, offset


@pytest.mark.parametrize(
    "length",
    [
        0,
        1,
        crypto.HEADER_BYTES - 1,
        crypto.HEADER_BYTES,
        crypto.HEADER_BYTES + 15,
        crypto.HEADER_BYTES + crypto.TAG_BYTES,
        -1,
    ],
)
def test_a_truncated_blob_does_not_open(sealed, length):
    assert opened(sealed[:length]) is None


def test_a_sealed_empty_plaintext_truncated_does_not_open():
    blob = seal(b"")
    assert len(blob) == crypto.MIN_BYTES
    assert opened(blob[:-1]) is None


@pytest.mark.parametrize("garbage", [b"\x00", b"x" * 16, b"\x02" * 100])
def test_garbage_appended_does_not_open(sealed, garbage):
    assert opened(sealed + garbage) is None


def plain_envelope(data, **deadlines):
    """An envelope as codec writes it with encryption off."""
    with override_settings(SCS={"ENCRYPTION": None}):
        return codec.encode(data, key_hash=KEY_HASH, **deadlines)


def test_a_plaintext_envelope_does_not_open():
    envelope = plain_envelope({"_auth_user_id": "1"}, created=0, absolute=2**60)
    assert envelope.startswith(codec.PLAIN)
    assert opened(envelope) is None
    assert opened(PAYLOAD * 3) is None
    assert opened(json.dumps({"_auth_user_id": "1", "pad": "x" * 64}).encode()) is None


def test_a_pickle_payload_does_not_open():
    payload = pickle.dumps({"_auth_user_id": "1", "pad": "x" * 64}, protocol=2)
    assert opened(payload) is None
    assert opened(bytes([crypto.VERSION]) + payload) is None


@pytest.mark.parametrize("blob", [None, "text", 42, [1, 2], bytearray(b"\x02" * 40)])
def test_what_is_not_bytes_does_not_open(sealed, blob):
    assert opened(blob) is None


@pytest.mark.parametrize(
    "key_hash, purpose",
    [(None, b"db"), ("", b"db"), (KEY_HASH, "db"), (KEY_HASH, None), ("\udcff", b"db")],
)
def test_bad_bindings_do_not_open(sealed, key_hash, purpose):
    assert opened(sealed, key_hash=key_hash, purpose=purpose) is None


def test_a_blob_of_a_removed_key_does_not_open(settings):
    settings.SCS = {"ENCRYPTION_KEYS": [KEY_A]}
    blob = seal()
    settings.SCS = {"ENCRYPTION_KEYS": [KEY_B]}
    assert crypto.is_sealed(blob)
    assert opened(blob) is None


# -- shape and nonces --------------------------------------------------------------


def test_the_blob_layout(settings):
    settings.SCS = {"ENCRYPTION_KEYS": [KEY_A]}
    blob = seal()
    assert blob[0] == crypto.VERSION
    assert blob[1 : 1 + crypto.KEY_ID_BYTES] == crypto.key_id(KEY_A)
    assert len(blob) == 1 + 8 + 12 + len(PAYLOAD) + 16


def test_sealed_blobs_are_told_from_the_rest(sealed):
    assert crypto.is_sealed(sealed)
    assert crypto.is_sealed(memoryview(sealed))
    assert crypto.key_id_of(sealed) == crypto.current_key_id()
    envelope = plain_envelope({}, created=0, absolute=1)
    for other in (envelope, b"", sealed[: crypto.MIN_BYTES - 1]):
        assert not crypto.is_sealed(other)
        assert crypto.key_id_of(other) is None


def test_a_hundred_thousand_seals_use_distinct_nonces():
    nonces = {
        seal(b"same")[1 + crypto.KEY_ID_BYTES : crypto.HEADER_BYTES]
        for _ in range(100_000)
    }
    assert len(nonces) == 100_000
