"""Session tokens: the only place they are made or hashed."""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable
from importlib import import_module
from typing import Protocol, TypeGuard, cast

from . import conf

TOKEN_BYTES = 32
TOKEN_LENGTH = 43  # base64url of 32 bytes, without padding

_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{43}")
# django.contrib.sessions' keys: 32 characters drawn from [a-z0-9].
_LEGACY_RE = re.compile(r"[a-z0-9]{32}")


class _Digest(Protocol):
    def hexdigest(self) -> str: ...


def _own_sha256() -> Callable[[bytes], _Digest]:
    # Every request that reads a session hashes its token. CPython's own
    # SHA-256 (HACL* from 3.12) gives the digest hashlib's OpenSSL one gives,
    # through far less code: between requests the caches go cold, and there
    # the OpenSSL path cost about 5 µs more per read (benchmarks/requests.py).
    # A Python built without its own hashes falls back to hashlib's.
    for module in ("_sha2", "_sha256"):  # Python 3.12+, then 3.10 and 3.11
        try:
            return cast("Callable[[bytes], _Digest]", import_module(module).sha256)
        except (ImportError, AttributeError):
            continue
    return hashlib.sha256


sha256 = _own_sha256()


def new_token() -> str:
    """Return a fresh random token for a cookie (43 base64url characters)."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def is_well_formed(value: object) -> TypeGuard[str]:
    """True when ``value`` could be a token we issued; checked before any store call.

    With ``SCS["ACCEPT_LEGACY_TOKENS"]`` on, a django.contrib.sessions key is
    accepted too. It is hashed and looked up like any token, so only sessions
    imported by ``scs_import_sessions`` answer to it.
    """
    if not isinstance(value, str):
        return False
    if _TOKEN_RE.fullmatch(value) is not None:
        return True
    return bool(conf.get("ACCEPT_LEGACY_TOKENS")) and is_legacy(value)


def is_legacy(value: str) -> bool:
    """True when ``value`` has the format of a django.contrib.sessions key."""
    return _LEGACY_RE.fullmatch(value) is not None


def hash_token(token: str) -> str:
    """The SHA-256 hex digest under which a token's session is stored."""
    return sha256(token.encode("ascii")).hexdigest()


def hash_prefix(key_hash: str | None) -> str:
    """A short prefix of a token hash, the most that may appear in logs or pages."""
    return key_hash[:8] if key_hash else "-"
