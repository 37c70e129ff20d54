"""Encoding of the stored envelope: session data plus its lifetime.

The created time and the absolute deadline travel inside the envelope, so
editing a database column or a Redis header cannot extend a session. With
``SCS["ENCRYPTION"]`` on (the default) the envelope is sealed by
:mod:`scs_django.crypto`, bound to the hash of the session's token: then a
blob that does not open, a plain envelope among them, is no session.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, NamedTuple

from django.conf import settings
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


@lru_cache(maxsize=8)
def _serializer_for(path: str) -> Any:
    # One instance per path: Django's serializers keep no state, and this sits
    # on every read.
    return import_string(path)()


def _serializer() -> Any:
    return _serializer_for(settings.SESSION_SERIALIZER)


def encode(
    data: dict[str, Any], *, created: int, absolute: int, key_hash: str
) -> bytes:
    """Serialise ``data`` with its deadlines, sealed for the session stored
    under ``key_hash`` when encryption is on; refuses what cannot be stored."""
    try:
        body: bytes = _serializer().dumps({"c": created, "a": absolute, "d": data})
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
        obj = _serializer().loads(blob[1:])
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
    return Envelope(data, created, absolute)
