"""Exceptions a site can see."""

from __future__ import annotations


class SessionStoreUnavailable(Exception):
    """The session store could not be reached; the middleware answers 503."""


class SessionTooLarge(ValueError):
    """The encoded session is larger than ``SCS["MAX_BYTES"]``; nothing was written."""


class SessionNotSerializable(TypeError):
    """A session value cannot be encoded by ``SESSION_SERIALIZER``; nothing was written."""
