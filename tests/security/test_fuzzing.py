"""Property-based fuzzing: any input is a session or "no session", never an error.

Hypothesis drives the cookie parser (the middleware's ``process_request`` and
``process_response`` under WSGI and ASGI), the token check, the envelope
decoder and the step that turns a stored envelope into a session. None of
these tests may touch a database (pytest-django would refuse): the parser and
the decoder decide before any store is asked.
"""

import io
import json
import string
from datetime import datetime, timezone

import pytest
import time_machine
from django.conf import settings
from django.core.handlers.asgi import ASGIRequest
from django.core.handlers.wsgi import WSGIRequest
from django.http import HttpResponse
from django.test import override_settings
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from scs_django import codec, crypto, tokens
from scs_django.backends.base import Loaded
from scs_django.backends.db import SessionStore as DBSessionStore
from scs_django.middleware import SessionMiddleware
from tests.security.transport import asgi_scope, wsgi_environ

NAME = settings.SESSION_COOKIE_NAME
ALPHABET = string.ascii_letters + string.digits + "-_"

fuzz = hypothesis_settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

HASH = tokens.hash_token("f" * 43)

token_shaped = st.from_regex(r"[A-Za-z0-9_-]{43}", fullmatch=True)
# Pieces a cookie header is made of, to reach the parser's corners more often
# than random bytes do.
cookie_pieces = st.one_of(
    st.sampled_from(
        [
            NAME,
            "=",
            ";",
            "; ",
            " ",
            ",",
            '"',
            "\\",
            "\\000",
            "\\101",
            "\x00",
            "\r\n",
            "\t",
            "%2F",
            "é",
            "\x80",
            "\xff",
            NAME.upper(),
            "$Version=1",
        ]
    ),  # fmt: skip
    token_shaped,
    st.text(ALPHABET, max_size=50),
    st.text(max_size=10),
)
cookie_headers = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=300).map(lambda s: s.encode("utf-8", "surrogatepass")),
    st.lists(cookie_pieces, max_size=20).map(
        lambda parts: "".join(parts).encode("utf-8", "surrogatepass")
    ),
    st.tuples(token_shaped, st.sampled_from(['"{}"', "{}; {}", " {} ", "{},x"])).map(
        lambda t: f"{NAME}={t[1].format(t[0], t[0])}".encode()
    ),
)


def sent_pairs(header):
    """Every (name, value) pair of a Cookie header, split as browsers mean it."""
    pairs = []
    for chunk in header.split(";"):
        name, eq, value = chunk.partition("=")
        if eq:
            pairs.append((name.strip(), value.strip()))
    return pairs


def make_request(transport, header):
    if transport == "wsgi":
        return WSGIRequest(wsgi_environ("/", cookie=header))
    scope = asgi_scope("/", cookie=header)
    scope.pop("_body_file")
    return ASGIRequest(scope, io.BytesIO(b""))


@pytest.mark.parametrize("transport", ["wsgi", "asgi"])
@fuzz
@given(header=cookie_headers)
def test_any_cookie_header_gives_a_session_or_none(transport, header):
    middleware = SessionMiddleware(lambda request: HttpResponse())
    request = make_request(transport, header)
    middleware.process_request(request)
    token = request.session.session_key
    if token is not None:
        # Only a well-formed token, sent once under the cookie's name exactly
        # as it is: nothing the parser pieced together or unquoted.
        assert tokens.is_well_formed(token)
        raw = request.META["HTTP_COOKIE"]
        assert [v for n, v in sent_pairs(raw) if n == NAME] == [token]
    response = middleware.process_response(request, HttpResponse())
    assert not response.cookies


@fuzz
@given(
    value=st.one_of(
        st.text(),
        st.text(ALPHABET, min_size=40, max_size=46),
        token_shaped,
        token_shaped.flatmap(
            lambda t: st.tuples(st.integers(0, 42), st.characters(codec="utf-8")).map(
                lambda edit: t[: edit[0]] + edit[1] + t[edit[0] + 1 :]
            )
        ),
        st.binary(max_size=50),
        st.integers(),
        st.none(),
        st.lists(st.text(max_size=3)),
    )
)
def test_token_check_accepts_exactly_43_base64url_characters(value):
    expected = (
        isinstance(value, str)
        and len(value) == 43
        and all(c in ALPHABET for c in value)
    )
    assert tokens.is_well_formed(value) is expected


json_values = st.recursive(
    st.one_of(
        st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20)
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(st.text(max_size=10), children, max_size=5),
    ),
    max_leaves=20,
)
envelopes = st.fixed_dictionaries(
    {},
    optional={
        "c": st.one_of(st.integers(), json_values),
        "a": st.one_of(st.integers(), json_values),
        "d": st.one_of(st.dictionaries(st.text(max_size=15), json_values), json_values),
    },
)
blobs = st.one_of(
    st.binary(max_size=200),
    st.binary(max_size=200).map(lambda b: codec.PLAIN + b),
    json_values.map(lambda v: codec.PLAIN + json.dumps(v).encode()),
    envelopes.map(lambda v: codec.PLAIN + json.dumps(v).encode()),
    st.integers(1, 200_000).map(lambda n: codec.PLAIN + b"[" * n + b"]" * n),
)


@fuzz
@given(blob=blobs, as_memoryview=st.booleans())
def test_decoder_gives_an_envelope_or_none(blob, as_memoryview):
    # The plain decoder (encryption off), on the bytes as they come...
    with override_settings(SCS={"ENCRYPTION": None}):
        envelope = codec.decode(memoryview(blob) if as_memoryview else blob, HASH)
    assert_envelope_or_none(envelope)
    # ...and, with encryption on, on the same bytes sealed as a store would
    # hold them: what opens goes through the same decoder.
    sealed = crypto.seal(blob, key_hash=HASH, purpose=codec.PURPOSE)
    opened = codec.decode(memoryview(sealed) if as_memoryview else sealed, HASH)
    assert opened == envelope
    # Unsealed, the same bytes are no session with encryption on.
    assert codec.decode(blob, HASH) is None


def assert_envelope_or_none(envelope):
    if envelope is not None:
        assert isinstance(envelope.data, dict)
        assert type(envelope.created) is int and type(envelope.absolute) is int


def test_decoder_reads_back_what_the_encoder_wrote():
    blob = codec.encode({"cart": [1, 2]}, created=5, absolute=9, key_hash=HASH)
    assert codec.decode(blob, HASH) == codec.Envelope({"cart": [1, 2]}, 5, 9)
    assert codec.decode(None, HASH) is None


class OneBlobStore(DBSessionStore):
    """The db engine's store with the row replaced by one fuzzed blob."""

    blob = b""

    def _fetch(self, key_hash, now):
        seen = datetime(2026, 5, 27, 23, 59, tzinfo=timezone.utc)
        return Loaded(self.blob, seen, 1)


stored_expiries = st.one_of(
    st.none(),
    st.integers(),
    st.floats(allow_nan=True),
    st.text(max_size=40),
    st.datetimes().map(lambda d: d.isoformat()),
    json_values,
)
stored_envelopes = st.fixed_dictionaries(
    {
        "c": st.one_of(st.integers(), st.integers(-(2**70), 2**70)),
        "a": st.one_of(st.integers(), st.integers(-(2**70), 2**70)),
        "d": st.fixed_dictionaries(
            {}, optional={"_session_expiry": stored_expiries, "value": json_values}
        ),
    }
)


NOW = 1_780_000_000_000_000  # 2026-05-28, in epoch microseconds
LATER = NOW + 10**12


@fuzz
@given(envelope=stored_envelopes)
# Found by the fuzzer; kept as fixed cases (a row edited in the store, or
# corrupted, must read as "no session", not raise on every request).
@example(envelope={"c": 0, "a": -62_135_596_800_000_001, "d": {}})  # year 0
@example(envelope={"c": 10**18, "a": LATER, "d": {}})  # year 33658
@example(envelope={"c": NOW, "a": LATER, "d": {"_session_expiry": "garbage"}})
@example(envelope={"c": NOW, "a": LATER, "d": {"_session_expiry": 10**20}})
def test_any_stored_envelope_loads_as_a_session_or_none(envelope):
    OneBlobStore.blob = codec.PLAIN + json.dumps(envelope).encode()
    session = OneBlobStore(tokens.new_token())
    with time_machine.travel(datetime(2026, 5, 28, tzinfo=timezone.utc), tick=False):
        data = session.load()
    assert isinstance(data, dict)
