"""How the cookie engine's session is sealed into its cookie value and
opened again (see :mod:`scs_django.backends.cookie`)."""

from __future__ import annotations

import base64
import binascii
import re
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpResponseBase

from .. import codec, conf, crypto, lifetime
from ..exceptions import SessionNotSerializable, SessionTooLarge

#: What a cookie is sealed for (the AAD's purpose): a blob sealed for a
#: database row or a cache does not open as a cookie, nor the reverse.
PURPOSE = b"cookie"
#: The most browsers keep of one cookie: name, value and attributes together
#: (RFC 6265, section 6.1).
COOKIE_LIMIT = 4096
# base64url of the shortest sealed blob, up to the largest cookie.
_MIN_LENGTH = -(-crypto.MIN_BYTES * 4 // 3)
VALUE = re.compile(rf"[A-Za-z0-9_-]{{{_MIN_LENGTH},{COOKIE_LIMIT}}}")


class Lifetime(NamedTuple):
    created: datetime
    absolute: datetime
    last_seen: datetime

    @classmethod
    def starting(cls, now: datetime) -> Lifetime:
        absolute = now + timedelta(seconds=conf.get("ABSOLUTE_TIMEOUT"))
        return cls(now, absolute, now)


class Opened(NamedTuple):
    data: dict[str, Any]
    created: int  # microseconds since the Unix epoch, as the others
    absolute: int
    last_seen: int


def require_sealing() -> None:
    if not crypto.enabled():
        raise ImproperlyConfigured(
            'The cookie session engine needs SCS["ENCRYPTION"]: anyone could write '
            'an unsealed cookie. Remove SCS["ENCRYPTION"] = None (the default seals '
            'with "aes-gcm"), or use a server-side engine.'
        )


def binding() -> str:
    # The AAD's "key hash": there is no token, so the cookie's name stands in.
    return str(settings.SESSION_COOKIE_NAME)


def set_cookie_length(value: str, max_age: int | None) -> int:
    """Bytes of the ``Set-Cookie`` header value the middleware sends for
    ``value``, with every attribute it may add (``Secure`` included, which it
    adds on HTTPS even without ``SESSION_COOKIE_SECURE``)."""
    name = str(settings.SESSION_COOKIE_NAME)
    response = HttpResponseBase()
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=settings.SESSION_COOKIE_PATH,
        domain=settings.SESSION_COOKIE_DOMAIN,
        secure=True,
        httponly=bool(settings.SESSION_COOKIE_HTTPONLY),
        samesite=settings.SESSION_COOKIE_SAMESITE,
    )
    return len(response.cookies[name].OutputString().encode("utf-8"))


def seal_cookie(serializer: Any, data: dict[str, Any], life: Lifetime) -> str:
    """The cookie value of ``data`` with ``life``: sealed, base64url."""
    envelope = {
        "c": lifetime.to_micros(life.created),
        "a": lifetime.to_micros(life.absolute),
        "s": lifetime.to_micros(life.last_seen),
        "d": data,
    }
    try:
        body: bytes = serializer.dumps(envelope)
    except (TypeError, ValueError, RecursionError) as exc:
        raise SessionNotSerializable(
            f"The session cannot be encoded with {settings.SESSION_SERIALIZER}: "
            f"{exc}. Store only values that serializer accepts."
        ) from exc
    blob = crypto.seal(codec.PLAIN + body, key_hash=binding(), purpose=PURPOSE)
    limit = conf.get("MAX_BYTES")
    if limit and len(blob) > limit:
        raise SessionTooLarge(
            f"The encoded session is {len(blob)} bytes, more than "
            f'SCS["MAX_BYTES"] = {limit}. Store less in the session, or raise '
            "the limit."
        )
    return base64.urlsafe_b64encode(blob).rstrip(b"=").decode("ascii")


def open_cookie(serializer: Any, value: str) -> Opened | None:
    """What the cookie value ``value`` holds; None unless it opens and is
    an envelope this module wrote."""
    try:
        blob = base64.b64decode(
            value + "=" * (-len(value) % 4), altchars=b"-_", validate=True
        )
    except (binascii.Error, ValueError):
        return None
    plain = crypto.open_sealed(blob, key_hash=binding(), purpose=PURPOSE)
    if plain is None or plain[:1] != codec.PLAIN:
        return None
    try:
        obj = serializer.loads(plain[1:])
    except Exception:  # noqa: BLE001 - anything undecodable is "no session"
        return None
    if not isinstance(obj, dict):
        return None
    data, created, absolute, seen = (obj.get(k) for k in ("d", "c", "a", "s"))
    if (
        not isinstance(data, dict)
        or type(created) is not int
        or type(absolute) is not int
        or type(seen) is not int
    ):
        return None
    return Opened(data, created, absolute, seen)
