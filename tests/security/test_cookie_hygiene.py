"""Whatever arrives in the Cookie header: no 500, no store query, no stray cookie.

DESIGN §3.3 and §3.4. The header goes into the WSGI environ and the ASGI scope
byte for byte (Django parses the two differently: WSGI decodes UTF-8, ASGI
latin-1), and a live session exists whose token each case embeds, so a
parser that let any of them through would be caught reading it.

Each case is its own test on the database engines (PostgreSQL and SQLite),
over both transports; every engine then gets all the cases in one test over
WSGI, since the parsing happens before any engine is involved.
"""

import pytest
from django.conf import settings

from scs_django import tokens
from tests.engines import DB_ENGINES, ENGINES
from tests.security.transport import Transport, json_body, session_cookie

pytestmark = pytest.mark.django_db(databases="__all__")

NAME = settings.SESSION_COOKIE_NAME


def alphabet(n):
    """``n`` characters of the token alphabet (so only the length is wrong)."""
    chars = "AbC3_-xYz9"
    return (chars * (n // len(chars) + 1))[:n]


# Each case turns the live token into the bytes of a whole Cookie header.
HEADERS = {
    "empty-header": lambda t: b"",
    "empty-value": lambda t: f"{NAME}=",
    "whitespace": lambda t: f"{NAME}= \t  ",
    "length-1": lambda t: f"{NAME}={alphabet(1)}",
    "length-8": lambda t: f"{NAME}={alphabet(8)}",
    "length-42": lambda t: f"{NAME}={t[:42]}",
    "length-44": lambda t: f"{NAME}={t}A",
    "length-64": lambda t: f"{NAME}={alphabet(64)}",
    "length-4KB": lambda t: f"{NAME}={alphabet(4096)}",
    "length-16KB": lambda t: f"{NAME}={alphabet(16384)}",
    "length-16KB-header": lambda t: f"{NAME}={t}; pad={alphabet(16384)}; {NAME}={t}",
    "plus-slash": lambda t: f"{NAME}=+{t[1:21]}/{t[22:]}",
    "padding": lambda t: f"{NAME}={t}=",
    "standard-base64": lambda t: f"{NAME}={t[:20]}+/{t[22:]}=",
    "percent-2F": lambda t: f"{NAME}={t[:40]}%2F",
    "percent-encoded-token": lambda t: f"{NAME}=%{ord(t[0]):02X}{t[1:]}",
    "double-quoted": lambda t: f'{NAME}="{t}"',
    "inner-quote": lambda t: f'{NAME}={t[:21]}"{t[22:]}',
    "single-quoted": lambda t: f"{NAME}='{t}'",
    "backslash": lambda t: f"{NAME}={t[:21]}\\{t[22:]}",
    "semicolon": lambda t: f"{NAME}={t[:21]};{t[21:]}",
    "comma": lambda t: f"{NAME}={t[:21]},{t[21:]}",
    "crlf": lambda t: f"{NAME}={t[:21]}\r\n{t[21:]}",
    "crlf-header-injection": lambda t: f"{NAME}={t}\r\nSet-Cookie: {NAME}={t}",
    "script": lambda t: f"{NAME}=<script>alert(1)</script>",
    "path-traversal": lambda t: f"{NAME}=../../../../etc/passwd",
    "sql": lambda t: f"{NAME}={t}' OR '1'='1",
    "nul-raw": lambda t: f"{NAME}={t[:21]}\x00{t[22:]}",
    "nul-through-quoting": lambda t: f'{NAME}="\\000{t[1:]}"',
    "token-through-octal-quoting": lambda t: f'{NAME}="\\{ord(t[0]):03o}{t[1:]}"',
    "non-ascii": lambda t: f"{NAME}={t[:21]}é{t[22:]}",
    "non-ascii-only": lambda t: f"{NAME}={'ßüñ' * 15}",
    "high-bytes": lambda t: NAME.encode() + b"=" + bytes(range(0x80, 0x80 + 43)),
    "invalid-utf8": lambda t: (
        NAME.encode() + b"=" + t[:21].encode() + b"\xff" + t[22:].encode()
    ),
    "fullwidth-digits": lambda t: f"{NAME}={t[:21]}３{t[22:]}",
    "stored-hash": lambda t: f"{NAME}={tokens.hash_token(t)}",
    "two-cookies-same-name": lambda t: f"{NAME}={t}; {NAME}={t}",
    "two-cookies-garbage-first": lambda t: f"{NAME}=garbage; {NAME}={t}",
    "two-cookies-garbage-last": lambda t: f"{NAME}={t}; {NAME}=garbage",
    "two-cookies-fresh-token-last": lambda t: f"{NAME}={t}; {NAME}={alphabet(43)}",
    "nameless-token": lambda t: t,
    "name-in-upper-case": lambda t: f"{NAME.upper()}={t}",
    "name-with-prefix": lambda t: f"x{NAME}={t}",
}


def names_the_session_cookie(header):
    raw = header if isinstance(header, str) else header.decode("latin-1")
    return any(chunk.split("=")[0].strip() == NAME for chunk in raw.split(";"))


def assert_no_session(response):
    assert response.status_code < 500, response.content
    assert not response.cookies, response.cookies.output()  # no Set-Cookie at all


on_databases = pytest.mark.parametrize("engine", DB_ENGINES, indirect=True)


@on_databases
@pytest.mark.parametrize("case", list(HEADERS))
def test_malformed_cookie_is_no_session_without_a_store_query(
    case, transport, engine, live_token, log_scan
):
    header = HEADERS[case](live_token)
    for path in ("/read/", "/untouched/"):
        with engine.no_traffic():
            response = transport.get(path, cookie=header)
        assert_no_session(response)
        if path == "/read/":
            assert json_body(response) == {"value": None, "user": None}
    if names_the_session_cookie(header):
        security = [r for r in log_scan.records if r.name == "scs_django.security"]
        assert security, "a malformed session cookie is logged"


@on_databases
@pytest.mark.parametrize("case", list(HEADERS))
def test_a_write_after_a_malformed_cookie_gets_a_fresh_server_made_token(
    case, engine, live_token, stored, log_scan
):
    header = HEADERS[case](live_token)
    transport = Transport("wsgi")
    token, traffic = write_gets_a_fresh_token(
        header, transport, engine, live_token, stored
    )
    assert token in log_scan.issued, "made by scs_django.tokens.new_token"
    # No read: the cookie never reached the store.
    [insert] = [q for q in traffic.queries if "scs_django_session" in q["sql"]]
    assert insert["sql"].lstrip().upper().startswith("INSERT"), insert


@pytest.mark.parametrize("engine", list(ENGINES), indirect=True)
def test_every_engine_ignores_every_malformed_cookie(
    engine, live_token, stored, log_scan
):
    transport = Transport("wsgi")
    for case, make in HEADERS.items():
        header = make(live_token)
        for path in ("/read/", "/untouched/"):
            with engine.no_traffic():
                response = transport.get(path, cookie=header)
            assert_no_session(response)
        token, _ = write_gets_a_fresh_token(
            header, transport, engine, live_token, stored
        )
        assert token in log_scan.issued, case


def write_gets_a_fresh_token(header, transport, engine, live_token, stored):
    """Write with ``header``; check that the cookie set is new and the live
    session untouched. Returns the new token and the store traffic."""
    raw = header if isinstance(header, str) else header.decode("latin-1")
    before, hashes = stored(live_token), engine.stored.hashes()
    with engine.traffic() as traffic:
        response = transport.get("/write/", cookie=header, query={"value": "new"})
    assert response.status_code == 200
    token = session_cookie(response).value
    assert tokens.is_well_formed(token)
    assert token != live_token and token not in raw
    assert stored(live_token) == before
    assert engine.stored.hashes() == hashes | {tokens.hash_token(token)}
    return token, traffic


def test_no_cookie_at_all(transport, engine):
    for path in ("/read/", "/untouched/"):
        with engine.no_traffic():
            response = transport.get(path)
        assert_no_session(response)
    response = transport.get("/write/")
    assert tokens.is_well_formed(session_cookie(response).value)


def test_the_harness_does_deliver_a_well_formed_cookie(transport, engine, live_token):
    # The control case: the same requests with the plain token do read it.
    response = transport.get("/read/", cookie=f"other=1; {NAME}={live_token}")
    assert json_body(response)["value"] == "secret"
    assert session_cookie(response) is None


def test_surrounding_whitespace_is_not_part_of_the_token(transport, engine, live_token):
    response = transport.get("/read/", cookie=f"  {NAME} =  {live_token}  ;")
    assert json_body(response)["value"] == "secret"


@pytest.mark.parametrize(
    "where",
    [
        {"query": {NAME: "TOKEN"}},
        {"form": {NAME: "TOKEN"}, "method": "POST"},
        {"headers": [(NAME, "TOKEN")]},
        {"headers": [("X-Session-Token", "TOKEN")]},
        {"headers": [("Authorization", "Bearer TOKEN")]},
        {"headers": [("X-Forwarded-Cookie", f"{NAME}=TOKEN")]},
        {"headers": [("Cookie2", f"{NAME}=TOKEN")]},
    ],
    ids=["query", "form", "header", "x-header", "bearer", "forwarded", "cookie2"],
)
def test_a_token_outside_the_cookie_is_ignored(where, transport, engine, live_token):
    def fill(value):
        if isinstance(value, dict):
            return {k: fill(v) for k, v in value.items()}
        if isinstance(value, list):
            return [tuple(fill(v) for v in pair) for pair in value]
        return value.replace("TOKEN", live_token) if isinstance(value, str) else value

    kwargs = fill(where)
    with engine.no_traffic():
        response = transport.request("/read/", **kwargs)
    assert_no_session(response)
    assert json_body(response) == {"value": None, "user": None}
