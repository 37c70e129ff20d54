"""Sessions in Redis through redis-py's native client, never through pickle.

Each session is one Redis string under ``<prefix>s:{<tag>}<rest of the hash>``,
read with a single ``GET``; :mod:`scs_django.backends.redis_layout` documents
the value. The key's TTL is the time left until the session's expiry. Every
write of an existing session is a small Lua script
(:mod:`scs_django.backends.redis_scripts`) that first checks the key is still
there, unexpired and at the version the request read, so a logout, a revoke or
a TTL expiry in between is never undone; creating one is a ``SET NX``. An idle
touch overwrites the two times of the header with ``SETRANGE``, leaving the
data alone. The cluster hash tag is the first two hex digits of the token
hash; on Redis Cluster a renewed token is drawn with the same two digits, so
the old and the new key sit in one slot and the rename stays one atomic script
there too.

A renewal leaves a forward under the old key for a minute, so that a revoke
which listed the old key ends the renewed session too.

When a write loses to a concurrent one, the writer takes the session's lock
``<prefix>l:{<tag>}<rest of the hash>`` (``SET NX`` with a short TTL), reads
the latest state, merges and writes; the write script refuses any writer that
does not hold a lock another request holds, so the locked write cannot lose.

A user's sessions are listed in a sorted set ``<prefix>u:{<user id>}`` (members:
token hashes, scores: absolute expiry in ms), written in the same round trip as
the session and pruned of dead members whenever it is read or written.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from redis.exceptions import ResponseError

from .. import conf, tokens
from ..lifetime import from_micros
from ..lifetime import to_micros as micros
from .base import Loaded, wait_for_lock
from .redis_layout import (
    TOMBSTONE,
    client_metadata,
    fixed_header,
    live_session,
    pack,
    pending_marker,
    times,
    unpack,
    user_field,
)
from .redis_scripts import BUMP, KILL, MARK, PUT, UNLOCK, UPDATE, run_pipeline

TAG_LENGTH = 2
SAME_SLOT_DRAWS = 100_000
# A renewed session's old key names the new one this long, so that a revoke
# which listed the old key follows it (see revoke()).
FORWARD_MS = 60_000
# A session's write lock, taken only when an optimistic write lost to another
# writer: held for one read and one write, so this bounds only a crashed
# holder's lock.
LOCK_MS = 5_000
# How long a writer waits for the lock before calling the store unavailable.
LOCK_WAIT_SECONDS = 10.0
# What a listing reads of each session: the header, user id and client metadata
# of any usual size.
LISTED = 4096


def ttl_ms(expiry: datetime, now: datetime) -> int:
    """Milliseconds from ``now`` to ``expiry``, at least 1."""
    # Relative, from the application's clock: the server's clock may differ.
    return max(1, math.ceil((expiry - now).total_seconds() * 1000))


class RedisSessions:
    """Session operations on one Redis (single node, Sentinel or Cluster)."""

    def __init__(
        self, client: Any, prefix: str, longest_seconds: int | None = None
    ) -> None:
        from redis.cluster import RedisCluster

        self.client = client
        self.prefix = prefix
        # A cap on a key's TTL (copies in front of a database); None: the
        # session's own expiry.
        self.longest_ms = None if longest_seconds is None else longest_seconds * 1000
        # Only a cluster needs old and new key of a renewal in one slot.
        self.cluster = isinstance(client, RedisCluster)

    def _ttl(self, expiry: datetime, now: datetime) -> int:
        ttl = ttl_ms(expiry, now)
        return ttl if self.longest_ms is None else min(ttl, self.longest_ms)

    # -- keys --------------------------------------------------------------

    def session_key(self, key_hash: str) -> str:
        return f"{self.prefix}s:{{{key_hash[:TAG_LENGTH]}}}{key_hash[TAG_LENGTH:]}"

    def lock_key(self, key_hash: str) -> str:
        # The session's hash tag: the write script reads it on a cluster too.
        return f"{self.prefix}l:{{{key_hash[:TAG_LENGTH]}}}{key_hash[TAG_LENGTH:]}"

    def user_key(self, user_id: Any) -> str:
        # Braces in an id would change the cluster hash tag.
        safe = str(user_id).replace("{", "(").replace("}", ")")
        return f"{self.prefix}u:{{{safe}}}"

    @staticmethod
    def same_slot_token(key_hash: str) -> tuple[str, str]:
        """A new token whose hash shares ``key_hash``'s cluster tag."""
        # One draw in 256 matches; the bound only stops a broken random source.
        for _ in range(SAME_SLOT_DRAWS):
            token = tokens.new_token()
            new_hash = tokens.hash_token(token)
            if new_hash[:TAG_LENGTH] == key_hash[:TAG_LENGTH]:
                return token, new_hash
        from django.contrib.sessions.backends.base import CreateError

        raise CreateError("The random source gives no token for this session's slot.")

    # -- one session ---------------------------------------------------------

    def fetch(self, key_hash: str, now: datetime) -> Loaded | None:
        """The live session stored under ``key_hash``, or None."""
        try:
            value = self.client.get(self.session_key(key_hash))
        except ResponseError as exc:
            if "WRONGTYPE" in str(exc):
                return None  # something else sits under the key; never decode it
            raise
        found = live_session(value, micros(now))
        if found is None:
            return None
        payload, seen, version = found
        return Loaded(payload, from_micros(seen, conf.use_tz()), version)

    def _index(
        self, record: Any, key_hash: str, now: datetime, drop: str | None = None
    ) -> Callable[[Any], None] | None:
        if record.user_id is None:
            return None
        user_key = self.user_key(record.user_id)

        def extra(pipe: Any) -> None:
            # Added before the old member goes, so that a listing always finds
            # one of the two (a revoke follows the old one's forward).
            pipe.zadd(user_key, {key_hash: micros(record.absolute_expiry) // 1000})
            if drop is not None:
                pipe.zrem(user_key, drop)
            pipe.zremrangebyscore(user_key, "-inf", micros(now) // 1000)
            # NX gives a new index a TTL; GT lets a longer-lived session extend it.
            ttl = ttl_ms(record.absolute_expiry, now)
            pipe.pexpire(user_key, ttl, nx=True)
            pipe.pexpire(user_key, ttl, gt=True)

        return extra

    def insert(self, key_hash: str, record: Any, now: datetime) -> bool:
        value = pack(record, client_metadata(record))
        ttl = self._ttl(record.expiry, now)
        index = self._index(record, key_hash, now)

        def build(pipe: Any) -> None:
            pipe.set(self.session_key(key_hash), value, nx=True, px=ttl)
            if index is not None:
                index(pipe)

        return bool(run_pipeline(self.client, build, ())[0])

    def update(
        self,
        key_hash: str,
        record: Any,
        now: datetime,
        version: int | None,
        new_hash: str | None = None,
        lock: str = "",
    ) -> int:
        """1 written, 0 gone, at another version or locked by another writer,
        -1 ``new_hash`` taken. ``lock``: the token of the lock this writer holds."""
        keys = [self.session_key(key_hash), self.lock_key(key_hash)]
        if new_hash is not None:
            keys.append(self.session_key(new_hash))
        # Client metadata is written at creation and renewal only, as in the db.
        renewal = new_hash is not None
        outcome: int = UPDATE.run(
            self.client,
            keys,
            [
                micros(now),
                "" if version is None else version,
                self._ttl(record.expiry, now),
                fixed_header(record),
                user_field(record),
                client_metadata(record) if renewal else b"",
                "0" if renewal else "1",
                record.payload,
                lock,
                new_hash or "",
                FORWARD_MS,
            ],
            self._index(record, new_hash or key_hash, now, drop=new_hash and key_hash),
        )
        return outcome

    def update_locked(
        self,
        key_hash: str,
        now: datetime,
        new_hash: str | None,
        apply: Callable[[Loaded], Any],
    ) -> Any:
        """Under the session's lock: read the latest, write ``apply(latest)``.

        The record written, or None when the session is gone (or ``apply``
        gives None); -1 when ``new_hash`` is taken.
        """
        while True:
            token = self._lock(key_hash)
            try:
                latest = self.fetch(key_hash, now)
                if latest is None:
                    return None
                record = apply(latest)
                if record is None:
                    return None
                result = self.update(
                    key_hash, record, now, latest.version, new_hash, lock=token
                )
            finally:
                UNLOCK.run(self.client, [self.lock_key(key_hash)], [token])
            if result == 1:
                return record
            if result == -1:
                return -1
            # 0 under the lock: the session ended, or this writer held the lock
            # past LOCK_MS and lost it; the next round tells which.

    def _lock(self, key_hash: str) -> str:
        token, key = secrets.token_hex(8), self.lock_key(key_hash)
        wait_for_lock(
            lambda: bool(self.client.set(key, token, nx=True, px=LOCK_MS)),
            LOCK_WAIT_SECONDS,
        )
        return token

    def bump(self, key_hash: str, now: datetime, expiry: datetime) -> bool:
        result: int = BUMP.run(
            self.client,
            [self.session_key(key_hash)],
            [micros(now), self._ttl(expiry, now), times(micros(expiry), micros(now))],
        )
        return result == 1

    def remove(self, key_hash: str) -> None:
        # The user's index keeps a dead member until its next read or write.
        self.client.delete(self.session_key(key_hash))

    # -- a copy in front of the database (cached_db) --------------------------------

    def put(self, key_hash: str, record: Any, now: datetime) -> None:
        """Cache ``record`` unless the session was buried, or a newer copy or
        the marker of a newer version is there."""
        PUT.run(
            self.client,
            [self.session_key(key_hash)],
            [
                record.version,
                self._ttl(record.expiry, now),
                pack(record, client_metadata(record)),
            ],
        )

    def mark(self, key_hash: str, version: int, seconds: int) -> None:
        """Before ``version`` is written to the database: drop the copy and stop
        older copies from being cached for ``seconds`` or until :meth:`put`
        caches that version (see the module's docstring)."""
        MARK.run(
            self.client,
            [self.session_key(key_hash)],
            [version, seconds * 1000, pending_marker(version)],
        )

    def bury(self, key_hashes: Iterable[str], seconds: int) -> None:
        """Replace cached copies with tombstones that stop late refills for
        ``seconds``."""
        keys = [self.session_key(key_hash) for key_hash in key_hashes]
        if not keys:
            return

        def build(pipe: Any) -> None:
            for key in keys:  # one SET per key: keys of a cluster sit in many slots
                pipe.set(key, TOMBSTONE, px=seconds * 1000)

        run_pipeline(self.client, build, ())

    # -- a user's sessions -----------------------------------------------------

    def user_sessions(self, user_id: Any, now: datetime) -> list[dict[str, Any]]:
        """The live sessions of a user, as dicts of raw fields (one round trip
        for the index, one for the sessions); dead index members are dropped."""
        user_key = self.user_key(user_id)
        members = [
            m.decode() if isinstance(m, bytes) else m
            for m in self.client.zrange(user_key, 0, -1)
        ]
        if not members:
            return []
        keys = [self.session_key(key_hash) for key_hash in members]
        pipe = self.client.pipeline(transaction=False)
        for key in keys:  # the header and metadata, not the session's data
            pipe.getrange(key, 0, LISTED - 1)
        # A key holding something else (WRONGTYPE) is a dead member like any other.
        values = pipe.execute(raise_on_error=False)
        for i, value in enumerate(values):
            if isinstance(value, bytes) and len(value) == LISTED and not unpack(value):
                values[i] = self.client.get(keys[i])  # longer metadata than usual
        found, dead = [], []
        now_us = micros(now)
        for key_hash, value in zip(members, values, strict=True):
            row = unpack(value)
            if row is None or row["expiry"] <= now_us:
                dead.append(key_hash)
                continue
            if row["user"] != str(user_id):
                dead.append(key_hash)  # the session now belongs to someone else
                continue
            del row["payload"], row["user"], row["version"]
            found.append({"key_hash": key_hash, **row})
        if dead:
            self.client.zrem(user_key, *dead)
        return found

    def revoke(self, key_hashes: Iterable[str], user_id: Any = None) -> int:
        """End the sessions stored under ``key_hashes`` (those of ``user_id``
        only, if given); returns how many ended.

        A session renewed since it was listed left a forward under its old key:
        it is followed, so a renewal racing the revoke cannot save the session.
        """
        user = "" if user_id is None else str(user_id)
        ended = 0
        seen: set[str] = set()
        pending = list(dict.fromkeys(key_hashes))
        while pending:
            seen.update(pending)
            keys = [self.session_key(key_hash) for key_hash in pending]

            def build(pipe: Any, keys: list[str] = keys) -> None:
                for key in keys:  # one script per key: a cluster's keys are apart
                    KILL.queue(pipe, [key], [user])

            results = run_pipeline(self.client, build, (KILL,))
            pending = []
            for result in results:
                if result == 1:
                    ended += 1
                elif isinstance(result, bytes):
                    moved = result.decode()
                    if moved not in seen:
                        pending.append(moved)
        return ended

    def revoke_user(self, user_id: Any, keep_hash: str | None = None) -> int:
        """End every session in ``user_id``'s index but ``keep_hash``'s."""
        members = [
            m.decode() if isinstance(m, bytes) else m
            for m in self.client.zrange(self.user_key(user_id), 0, -1)
        ]
        return self.revoke((m for m in members if m != keep_hash), user_id)

    def prune_indexes(self, now: datetime) -> int:
        """Drop dead members from every user index (SCAN; for cleanup jobs)."""
        pruned = 0
        for user_key in self.client.scan_iter(match=f"{self.prefix}u:*", count=1000):
            members = self.client.zrange(user_key, 0, -1)
            if not members:
                continue
            pipe = self.client.pipeline(transaction=False)
            for member in members:
                key_hash = member.decode() if isinstance(member, bytes) else member
                pipe.exists(self.session_key(key_hash))
            dead = [
                m for m, alive in zip(members, pipe.execute(), strict=True) if not alive
            ]
            if dead:
                pruned += self.client.zrem(user_key, *dead)
        return pruned


class ClusterConnectionFactory:
    """django-redis connection factory for Redis Cluster.

    ``CACHES["default"]["OPTIONS"]["CONNECTION_FACTORY"] =
    "scs_django.backends.redis.ClusterConnectionFactory"`` with a ``redis://`` URL of any
    node as ``LOCATION``; the cluster's other nodes are discovered. django-redis'
    ``PASSWORD``, ``SOCKET_TIMEOUT`` and ``SOCKET_CONNECT_TIMEOUT`` options and
    ``REDIS_CLIENT_KWARGS`` are passed on.
    """

    def __init__(self, options: dict[str, Any]) -> None:
        self.kwargs = dict(options.get("REDIS_CLIENT_KWARGS", {}))
        for option, kwarg in (
            ("PASSWORD", "password"),
            ("SOCKET_TIMEOUT", "socket_timeout"),
            ("SOCKET_CONNECT_TIMEOUT", "socket_connect_timeout"),
        ):
            if options.get(option) is not None:
                self.kwargs.setdefault(kwarg, options[option])

    def connect(self, url: str) -> Any:
        from redis.cluster import RedisCluster

        return RedisCluster.from_url(url, **self.kwargs)

    def disconnect(self, connection: Any) -> None:
        connection.close()
