"""The token hash is SHA-256, whichever implementation computes it."""

from __future__ import annotations

import hashlib
import importlib
import secrets
import sys
from unittest import mock

from scs_django import tokens


def test_hash_token_is_hashlibs_sha256_of_the_token():
    # What an operator computes to find a session's row or Redis key.
    for token in [tokens.new_token() for _ in range(50)] + ["a" * 32]:
        assert (
            tokens.hash_token(token)
            == hashlib.sha256(token.encode("ascii")).hexdigest()
        )


def test_a_python_without_its_own_sha256_uses_hashlibs():
    token = secrets.token_urlsafe(32)
    expected = hashlib.sha256(token.encode("ascii")).hexdigest()
    try:
        with mock.patch.dict(sys.modules, {"_sha2": None, "_sha256": None}):
            importlib.reload(tokens)
            assert tokens.sha256 is hashlib.sha256
            assert tokens.hash_token(token) == expected
    finally:
        importlib.reload(tokens)
    assert tokens.sha256 is not hashlib.sha256
    assert tokens.hash_token(token) == expected
