"""Encoding of the stored envelope: session data plus its lifetime.

The created time and the absolute deadline travel inside the envelope, so
editing a database column or a Redis header cannot extend a session. With
``SCS["ENCRYPTION"]`` on (the default) the envelope is sealed by
:mod:`scs_django.crypto`, bound to the hash of the session's token: then a
blob that does not open, a plain envelope among them, is no session.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from json.encoder import (  # type: ignore[attr-defined]
    c_make_encoder,
    encode_basestring_ascii,
)
from json.scanner import c_make_scanner  # type: ignore[attr-defined]
from typing import Any, NamedTuple

from django.conf import settings
from django.core.signing import JSONSerializer
from django.utils.module_loading import import_string

from . import conf, crypto
from .exceptions import SessionNotSerializable, SessionTooLarge

# First byte of every stored blob: the envelope format. Plain serialised data;
# a sealed blob starts with crypto.VERSION.
PLAIN = b"\x01"
# What a stored envelope is sealed for (the AAD's purpose): the same in a
# database row and in a cache, which hold copies of one another.
PURPOSE = b"session"


class Envelope(NamedTuple):
    data: dict[str, Any]
    created: int  # microseconds since the Unix epoch
    absolute: int  # microseconds since the Unix epoch


# Django's JSON serializer reads with json.loads(), three Python calls deep;
# the C scanner under it does the same in one call. Used only for that exact
# serializer, on input it takes whole; anything else goes the usual way.
_scan = c_make_scanner(json.JSONDecoder()) if c_make_scanner is not None else None


def _json_loads(body: bytes) -> Any:
    text = body.decode("latin-1")
    if _scan is not None:
        try:
            obj, end = _scan(text, 0)
        except (StopIteration, ValueError):
            pass
        else:
            if end == len(text):
                return obj
    return json.loads(text)


# And it writes with json.dumps(obj, separators=(",", ":")), which builds a
# JSONEncoder and then its C encoder on every call; this C encoder, made once
# with the same options, gives the same text. No circular-reference markers:
# a cycle ends in RecursionError instead of ValueError, refused all the same.
def _make_encoder() -> Callable[[Any], bytes] | None:
    if c_make_encoder is None:
        return None
    options = json.JSONEncoder(separators=(",", ":"))
    encoder = c_make_encoder(
        None,  # markers
        options.default,
        encode_basestring_ascii,
        None,  # indent
        options.key_separator,
        options.item_separator,
        options.sort_keys,
        options.skipkeys,
        options.allow_nan,
    )

    def dumps(obj: Any) -> bytes:
        return "".join(encoder(obj, 0)).encode("latin-1")

    return dumps


_json_dumps = _make_encoder()


def serializer_class() -> Any:
    """The ``SESSION_SERIALIZER`` class."""
    return import_string(settings.SESSION_SERIALIZER)


# (dumps, loads) of the serializer, made once and kept until the setting
# changes: Django's serializers keep no state, and this sits on every read.
_serializers: list[tuple[Callable[[Any], bytes], Callable[[bytes], Any]]] = []


def _serializer_pair() -> tuple[Callable[[Any], bytes], Callable[[bytes], Any]]:
    if not _serializers:
        serializer = serializer_class()()
        if type(serializer) is JSONSerializer:
            _serializers.append((_json_dumps or serializer.dumps, _json_loads))
        else:
            _serializers.append((serializer.dumps, serializer.loads))
    return _serializers[0]


conf.reset_on_change(("SESSION_SERIALIZER",), _serializers.clear)


def encode(
    data: dict[str, Any], *, created: int, absolute: int, key_hash: str
) -> bytes:
    """Serialise ``data`` with its deadlines, sealed for the session stored
    under ``key_hash`` when encryption is on; refuses what cannot be stored."""
    try:
        dumps = _serializers[0][0] if _serializers else _serializer_pair()[0]
        body = dumps({"c": created, "a": absolute, "d": data})
    except (TypeError, ValueError, RecursionError) as exc:
        raise SessionNotSerializable(
            f"The session cannot be encoded with {settings.SESSION_SERIALIZER}: "
            f"{exc}. Store only values that serializer accepts."
        ) from exc
    blob = PLAIN + body
    if crypto.enabled():
        blob = crypto.seal(blob, key_hash=key_hash, purpose=PURPOSE)
    limit = conf.get("MAX_BYTES")
    if limit and len(blob) > limit:
        raise SessionTooLarge(
            f"The encoded session is {len(blob)} bytes, more than "
            f'SCS["MAX_BYTES"] = {limit}. Store less in the session, or raise the limit.'
        )
    return blob


def decode(blob: bytes | memoryview | None, key_hash: str) -> Envelope | None:
    """Return the envelope in ``blob``, stored under ``key_hash``, or None
    when it is not one we wrote for that session (with encryption on: one
    that does not open, never read as plain data)."""
    if not blob:
        return None
    if crypto.enabled():
        opened = crypto.open_sealed(blob, key_hash=key_hash, purpose=PURPOSE)
        if opened is None:
            return None
        blob = opened
    elif not isinstance(blob, bytes):
        blob = bytes(blob)
    if blob[:1] != PLAIN:
        return None
    try:
        loads = _serializers[0][1] if _serializers else _serializer_pair()[1]
        obj = loads(blob[1:])
    except Exception:  # noqa: BLE001 - any undecodable blob is "no session"
        return None
    if not isinstance(obj, dict):
        return None
    data, created, absolute = obj.get("d"), obj.get("c"), obj.get("a")
    if (
        not isinstance(data, dict)
        or type(created) is not int
        or type(absolute) is not int
    ):
        return None
    # Envelope(...) without NamedTuple's Python-level __new__: every read.
    return tuple.__new__(Envelope, (data, created, absolute))
