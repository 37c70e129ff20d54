"""No log record holds a token or a full token hash (DESIGN §3.2).

tests/conftest.py's ``no_secrets_in_logs`` fixture checks every record of
every test of the suite (tests/security/logscan.py). These tests check the
checker, and drive the code paths that log on purpose.
"""

import logging
import sys

import pytest
from django.conf import settings

from scs_django import tokens
from tests.engines import DB_ENGINES
from tests.factories import PASSWORD
from tests.security.logscan import leaks
from tests.security.transport import Transport

NAME = settings.SESSION_COOKIE_NAME


def record(msg, *args, exc_info=None):
    # Made by hand: a record made by a logger would fail this very test.
    return logging.LogRecord(
        "scs_django", logging.INFO, __file__, 1, msg, args, exc_info
    )


def test_a_token_the_test_issued_is_found_in_message_or_args():
    token = tokens.new_token()
    assert leaks(record("token %s", token), {token})
    assert leaks(record(f"token {token}"), {token})
    assert leaks(record("token %r", [token]), {token})


def test_anything_shaped_like_a_token_or_a_hash_is_found():
    token = "A" * 21 + "-" + "b" * 21
    assert leaks(record("cookie %s!", token), set()) == [
        "a 43-character base64url token"
    ]
    key_hash = tokens.hash_token(token)
    assert leaks(record("row %s", key_hash), set()) == ["a 64-hex-digit hash"]
    assert leaks(record("row %s", key_hash.upper()), set()) == ["a 64-hex-digit hash"]


def test_a_token_in_a_traceback_is_found():
    token = tokens.new_token()
    try:
        raise ValueError(f"bad session {token}")
    except ValueError:
        exc_info = sys.exc_info()
    assert leaks(record("failed", exc_info=exc_info), {token})


def test_what_may_be_logged_is_not_flagged():
    key_hash = tokens.hash_token(tokens.new_token())
    assert leaks(record("Session %s ended", tokens.hash_prefix(key_hash)), set()) == []
    assert (
        leaks(record("Ignored a malformed session cookie (43 characters)."), set())
        == []
    )
    assert leaks(record("%s", "x" * 44), set()) == []  # longer than a token
    assert leaks(record("%s", "a" * 63), set()) == []  # shorter than a hash


def test_records_of_loggers_that_do_not_propagate_are_seen(log_scan):
    isolated = logging.getLogger("tests.security.isolated")
    isolated.propagate = False
    try:
        isolated.debug("seen although no handler takes it")
    finally:
        isolated.propagate = True
    assert "seen although no handler takes it" in [
        r.getMessage() for r in log_scan.records
    ]


@pytest.mark.django_db(databases="__all__")
@pytest.mark.parametrize("engine", DB_ENGINES, indirect=True)
def test_flows_that_log_leak_nothing(engine, log_scan, user_factory, settings):
    """Malformed cookies, undecodable rows, a failed write, login, renewal and
    logout all log; the autouse fixture checks what they logged."""
    transport = Transport("wsgi")
    transport.get("/read/", cookie=f"{NAME}=not-a-token")
    token = transport.get("/write/").cookies[NAME].value
    model = engine.store_class.get_model_class()
    model.objects.filter(key_hash=tokens.hash_token(token)).update(data=b"\x01{")
    transport.get("/read/", cookie=f"{NAME}={token}")
    user = user_factory()
    response = transport.post(
        "/accounts/login/", form={"username": user.username, "password": PASSWORD}
    )
    logged_in = response.cookies[NAME].value
    transport.get("/renew/", cookie=f"{NAME}={logged_in}")
    transport.get("/write-then-raise/", cookie=f"{NAME}={logged_in}")
    messages = [r.getMessage() for r in log_scan.records]
    assert "Ignored a malformed session cookie (11 characters)." in messages
    prefix = tokens.hash_prefix(tokens.hash_token(token))
    assert (
        f"Session {prefix} could not be decoded or opened; treated as no session."
        in messages
    )
    assert any(
        m.startswith("Internal Server Error: /write-then-raise/") for m in messages
    )
    for logged in log_scan.records:
        assert leaks(logged, log_scan.issued) == [], logged.getMessage()
