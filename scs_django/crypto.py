"""Sealing of stored session blobs: authenticated encryption bound to the token.

A sealed blob is encrypted and authenticated with the algorithm of
``SCS["ENCRYPTION"]`` (AES-256-GCM by default, or ChaCha20-Poly1305) under the
first key of the key list; every key of the list opens. The keys are
``SCS["ENCRYPTION_KEYS"]`` or, without it, keys derived with HKDF-SHA256 from
``SECRET_KEY`` and then each of ``SECRET_KEY_FALLBACKS``, so rotating
``SECRET_KEY`` the Django way keeps sessions open. The raw secret is never
used as a key.

======  ====  ==========================================================
offset  size  field
======  ====  ==========================================================
0       1     format version, ``0x02`` (:data:`VERSION`)
1       8     key id: HMAC-SHA256 of a fixed label under the key, cut short
9       12    nonce, random for every seal
21      n+16  ciphertext of the n-byte plaintext, then the 16-byte tag
======  ====  ==========================================================

The additional authenticated data, which is not stored, binds a blob to the
algorithm, to its own header (version and key id), to a *purpose* (``b"db"``,
``b"cookie"``...) and to the hash of the session's token: a blob copied to
another row, another store or another algorithm does not open. The key id
lets the key list be reordered and tells which key sealed a blob; being a
pseudo-random function of the key, it reveals nothing of it.

The version byte continues :mod:`scs_django.codec`'s format bytes (``0x01`` is
plain serialised data), so the first byte of any stored blob says what it is.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import os
from collections.abc import Callable
from typing import NamedTuple

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.encoding import force_bytes

from . import conf

VERSION = 0x02
KEY_BYTES = 32
KEY_ID_BYTES = 8
NONCE_BYTES = 12
TAG_BYTES = 16
HEADER_BYTES = 1 + KEY_ID_BYTES + NONCE_BYTES
_ID_END = 1 + KEY_ID_BYTES  # version byte and key id: the header's first part
# The shortest blob: a sealed empty plaintext.
MIN_BYTES = HEADER_BYTES + TAG_BYTES

ALGORITHMS: dict[str, Callable[[bytes], AESGCM | ChaCha20Poly1305]] = {
    "aes-gcm": AESGCM,
    "chacha20-poly1305": ChaCha20Poly1305,
}

# HKDF's info: a new label gives new, unrelated keys.
SEAL_LABEL = b"scs_django session seal v1"
_HKDF_SALT = b"scs_django.crypto"
_KEY_ID_LABEL = b"scs_django key id v1"
_AAD_LABEL = b"scs_django seal v1"
_MAX_PURPOSE = 0xFFFF  # its length takes two bytes of the AAD


class _Keyring(NamedTuple):
    aad_prefix: bytes
    header: bytes  # version and key id of the first key
    sealer: AESGCM | ChaCha20Poly1305
    openers: dict[bytes, AESGCM | ChaCha20Poly1305]


def parse_key(value: object) -> bytes:
    """Return a key of ``SCS["ENCRYPTION_KEYS"]`` as 32 bytes.

    ``value`` is 32 bytes, or their base64 text, standard or URL-safe, with or
    without padding. Raises ``ValueError`` saying what is wrong, without
    repeating the key.
    """
    if isinstance(value, bytes):
        if len(value) != KEY_BYTES:
            raise ValueError(f"it is {len(value)} bytes, not {KEY_BYTES}")
        return value
    if not isinstance(value, str):
        raise ValueError(
            f"it is of type {type(value).__name__}, not bytes or base64 text"
        )
    text = value.rstrip("=")
    if set("+/") & set(text) and set("-_") & set(text):
        raise ValueError("it mixes standard and URL-safe base64")
    text = text.replace("-", "+").replace("_", "/")
    try:
        # validate: anything outside the alphabet is an error, not skipped.
        key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("it is not base64") from None
    if len(key) != KEY_BYTES:
        raise ValueError(f"it decodes to {len(key)} bytes, not {KEY_BYTES}")
    return key


def derive_key(secret: str | bytes, *, label: bytes = SEAL_LABEL) -> bytes:
    """Return the 32-byte key HKDF-SHA256 derives from ``secret`` under ``label``."""
    hkdf = HKDF(
        algorithm=hashes.SHA256(), length=KEY_BYTES, salt=_HKDF_SALT, info=label
    )
    return hkdf.derive(force_bytes(secret))


def key_id(key: bytes) -> bytes:
    """The id under which blobs sealed with ``key`` name it (8 bytes)."""
    return hmac.new(key, _KEY_ID_LABEL, hashlib.sha256).digest()[:KEY_ID_BYTES]


def configured_keys() -> list[bytes]:
    """The keys in use, the sealing one first, without duplicates.

    Raises ``ImproperlyConfigured`` when a key is malformed or there is none;
    the system checks report the same at startup.
    """
    explicit = conf.get("ENCRYPTION_KEYS")
    if explicit is not None:
        if not isinstance(explicit, (list, tuple)) or not explicit:
            raise ImproperlyConfigured(
                'SCS["ENCRYPTION_KEYS"] must be a non-empty list of keys, or None.'
            )
        keys = []
        for index, value in enumerate(explicit):
            try:
                keys.append(parse_key(value))
            except ValueError as exc:
                raise ImproperlyConfigured(
                    f'SCS["ENCRYPTION_KEYS"][{index}] is not a key: {exc}.'
                ) from None
    else:
        # Django refuses to return an empty SECRET_KEY (ImproperlyConfigured).
        # An empty fallback would give a key anyone can compute: skip it.
        secret_keys = [settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS]
        keys = [derive_key(secret) for secret in secret_keys if secret]
    return list(dict.fromkeys(keys))


# Cached until SCS changes, behind functools' C wrapper: every read asks.
@functools.cache
def enabled() -> bool:
    """True when sessions are sealed (``SCS["ENCRYPTION"]`` is not None)."""
    return conf.get("ENCRYPTION") is not None


conf.reset_on_change(("SCS",), enabled.cache_clear)


@functools.cache
def _keyring() -> _Keyring | None:
    algorithm = conf.get("ENCRYPTION")
    if algorithm is None:
        return None
    if not isinstance(algorithm, str) or algorithm not in ALGORITHMS:
        raise ImproperlyConfigured(
            f'SCS["ENCRYPTION"] is {algorithm!r}; it must be one of '
            f"{', '.join(map(repr, ALGORITHMS))} or None."
        )
    make = ALGORITHMS[algorithm]
    openers = {key_id(key): make(key) for key in configured_keys()}
    first = next(iter(openers))
    return _Keyring(
        aad_prefix=b"%s\x00%s\x00" % (_AAD_LABEL, algorithm.encode("ascii")),
        header=bytes([VERSION]) + first,
        sealer=openers[first],
        openers=openers,
    )


conf.reset_on_change(
    ("SCS", "SECRET_KEY", "SECRET_KEY_FALLBACKS"), _keyring.cache_clear
)


@functools.lru_cache(maxsize=16)
def _purpose_part(purpose: bytes) -> bytes:
    # Length-prefixed, as in _aad(); OverflowError past 2 bytes of length.
    return len(purpose).to_bytes(2, "big") + purpose


def _aad(ring: _Keyring, header: bytes, key_hash: str, purpose: bytes) -> bytes:
    # Length-prefixed purpose, key hash to the end: no two bindings share an AAD.
    return ring.aad_prefix + header + _purpose_part(purpose) + key_hash.encode()


def seal(plaintext: bytes, *, key_hash: str, purpose: bytes) -> bytes:
    """Encrypt ``plaintext`` under the first key, bound to ``key_hash`` and ``purpose``.

    ``key_hash`` is the hex hash of the session's token
    (:func:`scs_django.tokens.hash_token`). Raises ``ImproperlyConfigured``
    when encryption is off or misconfigured, ``TypeError`` or
    ``ValueError`` for arguments of the wrong kind.
    """
    ring = _keyring()
    if ring is None:
        raise ImproperlyConfigured(
            'SCS["ENCRYPTION"] is None: sessions are not sealed.'
        )
    if not isinstance(plaintext, bytes) or not isinstance(purpose, bytes):
        raise TypeError("seal() takes bytes for plaintext and purpose")
    if not isinstance(key_hash, str) or not key_hash:
        raise ValueError("seal() needs the token hash the blob is bound to")
    if len(purpose) > _MAX_PURPOSE:
        raise ValueError(f"seal() takes a purpose of at most {_MAX_PURPOSE} bytes")
    nonce = os.urandom(NONCE_BYTES)
    sealed = ring.sealer.encrypt(
        nonce, plaintext, _aad(ring, ring.header, key_hash, purpose)
    )
    return ring.header + nonce + sealed


def open_sealed(
    blob: bytes | memoryview, *, key_hash: str, purpose: bytes
) -> bytes | None:
    """Return the plaintext ``seal`` put in ``blob``, or None.

    None for anything that is not a blob sealed by one of the configured keys
    for this ``key_hash`` and ``purpose``: tampered, truncated, sealed for
    another session or purpose, under a removed key or another algorithm,
    plaintext, or not bytes at all. Always None while encryption is off; a
    blob is never read as plaintext. Raises only ``ImproperlyConfigured``,
    for an unknown algorithm or when no key is usable (the system checks
    report both at startup).
    """
    ring = _keyring()
    if ring is None:
        return None
    if isinstance(blob, memoryview):
        blob = blob.tobytes()
    # _sealed_bytes() written out: every read of a session comes here.
    if not (
        isinstance(blob, bytes)
        and len(blob) >= MIN_BYTES
        and blob[0] == VERSION
        and isinstance(purpose, bytes)
        and isinstance(key_hash, str)
        and key_hash
    ):
        return None
    header = blob[:_ID_END]
    opener = ring.openers.get(header[1:])
    if opener is None:
        return None
    try:
        # _aad(), written out with its purpose part cached: every read of a
        # session comes here.
        aad = ring.aad_prefix + header + _purpose_part(purpose) + key_hash.encode()
        return opener.decrypt(blob[_ID_END:HEADER_BYTES], blob[HEADER_BYTES:], aad)
    except (InvalidTag, ValueError, TypeError, OverflowError):
        # OverflowError: a purpose longer than its 2-byte length.
        # ValueError includes UnicodeEncodeError, from a key hash with surrogates.
        return None


def _sealed_bytes(blob: object) -> bytes | None:
    if isinstance(blob, memoryview):
        blob = blob.tobytes()
    if isinstance(blob, bytes) and len(blob) >= MIN_BYTES and blob[0] == VERSION:
        return blob
    return None


def is_sealed(blob: bytes | memoryview) -> bool:
    """True when ``blob`` has the shape of a sealed blob (not whether it opens)."""
    return _sealed_bytes(blob) is not None


def key_id_of(blob: bytes | memoryview) -> bytes | None:
    """The id of the key that sealed ``blob``, or None when it is not sealed.

    Compare with :func:`current_key_id` to find blobs to seal again under the
    current key.
    """
    sealed = _sealed_bytes(blob)
    return None if sealed is None else sealed[1 : 1 + KEY_ID_BYTES]


def current_key_id() -> bytes:
    """The id of the key new blobs are sealed with.

    Raises ``ImproperlyConfigured`` when encryption is off or no key is usable.
    """
    ring = _keyring()
    if ring is None:
        raise ImproperlyConfigured(
            'SCS["ENCRYPTION"] is None: sessions are not sealed.'
        )
    return ring.header[1:]
