"""How a write reaches the store, for :class:`~scs_django.backends.base.ScsSessionStore`.

One optimistic update first, conditional on the version this request read;
when another request wrote in between, this request's changes are re-applied
on what that one stored, under the engine's lock, so that contention never
loses a write (DESIGN §8). A renewal is the same write under a new token hash.
"""

from __future__ import annotations

import functools
import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.contrib.sessions.backends.base import CreateError
from django.dispatch import Signal

from .. import codec, context, tokens
from ..merge import merge
from ..signals import session_renewed
from .api import SessionAPI
from .engine import Guard, Loaded, Record, StoragePrimitives
from .held import Held, RequestState
from .steps import Io, Steps

security_logger = logging.getLogger("scs_django.security")

# 256-bit tokens do not collide; the bound only stops a broken random source
# from looping forever.
CREATE_ATTEMPTS = 5


class Writes(SessionAPI, StoragePrimitives):
    """The write path and the helpers every step of a request uses."""

    state: RequestState
    _held: Held

    if TYPE_CHECKING:
        _session_cache: dict[str, Any]

    def _guard(self) -> Guard:
        # Store errors become SessionStoreUnavailable and mark the request.
        return Guard(self.is_unavailable, self.state)

    def _signal(self, signal: Signal, **kwargs: Any) -> Io:
        kwargs.update(sender=type(self), request=context.request_of(self))
        return Io(
            functools.partial(signal.send, **kwargs),
            functools.partial(signal.asend, **kwargs),
        )

    def _hash_now(self) -> str:
        # The hash of the current token: what a record is written (and
        # sealed) under, renamed there when a renewal is under way.
        key_hash = self.key_hash
        assert key_hash is not None  # noqa: S101 - only a session with a token is written
        return key_hash

    def _decode(self, payload: bytes, key_hash: str) -> codec.Envelope | None:
        envelope = codec.decode(payload, key_hash)
        if envelope is None:
            security_logger.warning(
                "Session %s could not be decoded or opened; treated as no session.",
                tokens.hash_prefix(key_hash),
            )
        return envelope

    def _storing(self, record: Record, now: datetime) -> Steps[Record | None]:
        if self._renaming_from is None:
            return (yield from self._writing(self.key_hash, record, now))
        return (yield from self._renaming(self._renaming_from, record, now))

    def _writing(
        self, key_hash: Any, record: Record, now: datetime, new_hash: Any = None
    ) -> Steps[Record | None]:
        """Conditional update, merging with concurrent writers; None when the
        session ended elsewhere."""
        version = self._held.version
        update = (self._update, self._aupdate)
        if (yield Io(*update, key_hash, record, now, version, new_hash)):
            return record

        # Another request wrote in between (or the session ended). Contention is
        # normal load, so rather than retrying optimistically (which can keep
        # losing), re-apply this request's changes under the engine's lock on
        # the session, where no other writer can get in between.
        def apply(latest: Loaded) -> Record | None:
            return self._merged(latest, key_hash, now)

        update_locked = (self._update_locked, self._aupdate_locked)
        written: Record | None = yield Io(
            *update_locked, key_hash, now, new_hash, apply
        )
        return written

    def _merged(self, latest: Loaded, key_hash: str, now: datetime) -> Record | None:
        # This request's changes re-applied on what another request stored
        # under ``key_hash``.
        theirs = self._decode(latest.payload, key_hash)
        if theirs is None:
            return None
        read = self._held.read_data()
        self._session_cache = merge(read, self._session_cache, theirs.data)
        try:
            self._held.take_latest(theirs, latest, key_hash)
        except (OverflowError, ValueError, TypeError):
            return None  # not an envelope this code wrote: treat it as gone
        client, target = self.state.client, self._hash_now()
        return self._held.record(self._session_cache, now, client, target)

    def _renaming(
        self, source: str, record: Record, now: datetime
    ) -> Steps[Record | None]:
        for _ in range(CREATE_ATTEMPTS):
            try:
                written = yield from self._writing(source, record, now, self.key_hash)
            except CreateError:  # the new token's hash is taken: draw another
                self._session_key, _ = self._renewal_token(source)
                # Sealed for the hash it is now written under.
                data, client = self._session_cache, self.state.client
                record = self._held.record(data, now, client, self._hash_now())
                continue
            if written is not None:
                self._renaming_from = None
                yield self._signal(
                    session_renewed, session=self, previous_key_hash=source
                )
            return written
        raise CreateError("Could not renew the session under a unique token.")
