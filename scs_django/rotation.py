"""Sealing every stored session again under the current key, in batches.

After a new key is put first in ``SCS["ENCRYPTION_KEYS"]`` (or a new
``SECRET_KEY`` with the old one in ``SECRET_KEY_FALLBACKS``), sessions a
request writes are sealed under it, and the others keep the old key until
they are written. :func:`rotate_keys` seals those again under the current key,
and seals plain blobs stored while ``SCS["ENCRYPTION"]`` was None, so that the
old key can be removed without ending them. It never parses the data: it opens
the blob and seals the same plaintext for the same token hash.

It runs while the site serves traffic. Each blob is replaced only if it is
still the one that was read (a database ``UPDATE`` conditional on the row's
version and data, a Redis script comparing the whole value), so a session a
request wrote meanwhile, already under the current key, is never overwritten.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from enum import Enum
from itertools import islice
from time import monotonic
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import router
from django.utils import timezone

from . import codec, crypto
from .backends import cached_db
from .backends.cache import SessionStore as CacheStore
from .backends.cache import cache_sessions
from .backends.db import SessionStore as DBStore
from .backends.operations import SessionOperations
from .backends.redis_layout import live_session
from .backends.redis_scripts import Script
from .lifetime import to_micros

DEFAULT_BATCH_SIZE = 1000

Progress = Callable[[int, int], Any]


class RotationUnsupported(Exception):
    """The engine keeps sessions where they cannot be listed and rewritten."""


class Blob(Enum):
    """What a stored blob needs."""

    CURRENT = "current"  # sealed under the current key already
    RESEAL = "reseal"  # opens, under an older key or as plain data
    UNREADABLE = "unreadable"  # opens under no configured key: left alone


@dataclass(frozen=True)
class RotationResult:
    """What :func:`rotate_keys` did."""

    key_id: bytes  # the id of the key sessions are sealed under now
    resealed: int  # sealed again (with dry_run: that would be)
    current: int  # already under the current key
    unreadable: int  # open under no configured key; left as they were
    changed: int  # written by a request meanwhile; left to that write
    seconds: float
    finished: bool = True  # False: max_seconds stopped it; run it again
    dry_run: bool = False


def examine(blob: bytes, key_hash: str) -> tuple[Blob, bytes | None]:
    """What ``blob``, stored under ``key_hash``, needs, and with
    :attr:`Blob.RESEAL` the same plaintext sealed under the current key."""
    if blob[:1] != codec.PLAIN and crypto.key_id_of(blob) == crypto.current_key_id():
        return Blob.CURRENT, None
    plain: bytes | None = blob
    if blob[:1] != codec.PLAIN:
        plain = crypto.open_sealed(blob, key_hash=key_hash, purpose=codec.PURPOSE)
    if plain is None:
        return Blob.UNREADABLE, None
    return Blob.RESEAL, crypto.seal(plain, key_hash=key_hash, purpose=codec.PURPOSE)


class _Tally:
    def __init__(self, dry_run: bool, max_seconds: float | None) -> None:
        self.started = monotonic()
        self.max_seconds = max_seconds
        self.dry_run = dry_run
        self.counts = dict.fromkeys(("resealed", "current", "unreadable", "changed"), 0)
        self.seen = 0

    def out_of_time(self) -> bool:
        elapsed = monotonic() - self.started
        return self.max_seconds is not None and elapsed >= self.max_seconds

    def add(self, blob: bytes, key_hash: str, write: Callable[[bytes], bool]) -> None:
        """Examine one blob and, unless in a dry run, ``write`` its new seal."""
        self.seen += 1
        kind, sealed = examine(blob, key_hash)
        if sealed is None:
            self.counts[kind.value] += 1
        elif self.dry_run or write(sealed):
            self.counts["resealed"] += 1
        else:
            self.counts["changed"] += 1

    def result(self, finished: bool) -> RotationResult:
        return RotationResult(
            key_id=crypto.current_key_id(),
            seconds=monotonic() - self.started,
            finished=finished,
            dry_run=self.dry_run,
            **self.counts,
        )


def rotate_keys(
    engine: type[Any],
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_seconds: float | None = None,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> RotationResult:
    """Seal every live session stored by ``engine`` (a ``SessionStore`` class)
    again under the current key, in batches of ``batch_size``.

    The db and cached_db engines and their subclasses, and the cache engine on
    django-redis, are supported; ``RotationUnsupported`` says why another
    engine is not. ``ImproperlyConfigured`` when sessions are not sealed
    (``SCS["ENCRYPTION"]`` is None). No batch starts after ``max_seconds``.
    ``dry_run`` counts and writes nothing. ``progress(done, total)`` is called
    after each batch (``total`` is 0 when the store cannot tell). Errors of
    the store propagate; the sessions sealed before stay sealed.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1.")
    if not crypto.enabled():
        raise ImproperlyConfigured(
            'SCS["ENCRYPTION"] is None: sessions are not sealed, so there is no '
            'key to seal them under. Set it first (the default is "aes-gcm").'
        )
    crypto.current_key_id()  # a misconfigured key list fails before any work
    tally = _Tally(dry_run, max_seconds)
    report: Progress = progress or (lambda done, total: None)
    if issubclass(engine, DBStore):
        copies = None
        if issubclass(engine, cached_db.SessionStore):
            copies = engine.cached_copies()
        return _rotate_rows(engine.get_model_class(), copies, batch_size, tally, report)
    if issubclass(engine, CacheStore):
        from .backends.redis import RedisSessions

        ops = cache_sessions()
        if isinstance(ops, RedisSessions):
            return _rotate_redis(ops, batch_size, tally, report)
        raise RotationUnsupported(
            "The cache engine on a cache other than django-redis cannot list its "
            "sessions, so they cannot be sealed again. Keep the old key configured "
            "until every session sealed under it has ended: ABSOLUTE_TIMEOUT after "
            "the new key came first."
        )
    raise RotationUnsupported(
        f"{engine.__module__}.{engine.__qualname__} is not a scs_django engine "
        "that stores sessions; there is nothing to seal again."
    )


# -- the database (db, cached_db) ----------------------------------------------------


def _rotate_rows(
    model: Any,
    copies: SessionOperations | None,
    batch_size: int,
    tally: _Tally,
    report: Progress,
) -> RotationResult:
    using = router.db_for_write(model)
    rows = model._default_manager.using(using)
    # Expired rows are no session whatever they hold; scs_cleanup deletes them.
    live = rows.filter(expiry__gt=timezone.now()).order_by("pk")
    total = live.count()
    last_pk = None
    while True:
        if tally.out_of_time():
            return tally.result(finished=False)
        page = live if last_pk is None else live.filter(pk__gt=last_pk)
        batch = list(page.values_list("pk", "key_hash", "version", "data")[:batch_size])
        for pk, key_hash, version, data in batch:

            def write(
                sealed: bytes,
                pk: Any = pk,
                key_hash: str = key_hash,
                version: int = version,
                blob: bytes = bytes(data),
            ) -> bool:
                if copies is not None:
                    # A marker one version ahead drops the cached copy and, for
                    # cached_db.PENDING_SECONDS, refuses copies of this version
                    # that a read which raced this write would put back.
                    copies.mark(key_hash, version + 1, cached_db.PENDING_SECONDS)
                # The version is left as it is: a request that read the old
                # blob merges into it, which opens under any configured key
                # and holds the same data, so its write loses nothing; bumping
                # it would only push such writers onto their locked path.
                # The data in the condition catches a write that kept the
                # version (a renewal re-seals for the new hash).
                same = rows.filter(pk=pk, key_hash=key_hash, version=version, data=blob)
                return bool(same.update(data=sealed))

            tally.add(bytes(data), key_hash, write)
        report(tally.seen, total)
        if len(batch) < batch_size:
            return tally.result(finished=True)
        last_pk = batch[-1][0]


# -- Redis (the cache engine on django-redis) ----------------------------------------

# KEYS: a session's key; ARGV: the value read, the value to write. Writes only
# over the value read, keeping the key's TTL. 1 written, 0 changed meanwhile.
_RESEAL = Script(
    """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local ttl = redis.call('PTTL', KEYS[1])
if ttl > 0 then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ttl)
else
  redis.call('SET', KEYS[1], ARGV[2])
end
return 1
"""
)


def glob_escape(text: str) -> str:
    """``text`` matched literally in a Redis ``MATCH`` pattern."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


def _batches(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def _rotate_redis(
    ops: Any, batch_size: int, tally: _Tally, report: Progress
) -> RotationResult:
    client, head = ops.client, f"{ops.prefix}s:"
    # SCAN, never KEYS: it walks the keyspace a slice at a time without
    # blocking the server; a key written meanwhile may be missed or seen
    # twice, and is under the current key already.
    keys = client.scan_iter(match=glob_escape(head) + "*", count=batch_size)
    for batch in _batches(keys, batch_size):
        if tally.out_of_time():
            return tally.result(finished=False)
        pipe = client.pipeline(transaction=False)
        for key in batch:
            pipe.get(key)
        now = to_micros(timezone.now())
        for key, value in zip(batch, pipe.execute(), strict=True):
            key = key.decode() if isinstance(key, bytes) else key
            found = live_session(value, now)
            if found is None:
                continue  # a forward, a lock, an expired session: no data to seal
            key_hash = key[len(head) :].replace("{", "").replace("}", "")
            header = value[: len(value) - len(found[0])]

            def write(
                sealed: bytes,
                key: str = key,
                value: bytes = value,
                header: bytes = header,
            ) -> bool:
                return bool(_RESEAL.run(client, [key], [value, header + sealed]))

            tally.add(found[0], key_hash, write)
        report(tally.seen, 0)
    return tally.result(finished=True)
