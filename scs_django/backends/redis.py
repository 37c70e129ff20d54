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

A user's sessions are listed in a sorted set ``<prefix>u:{<user id>}``, written
in the same round trip as the session and pruned of dead members whenever it is
read or written (see :mod:`scs_django.backends.redis_users`).
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from django.contrib.sessions.backends.base import CreateError
from redis import exceptions as redis_errors
from redis.exceptions import ResponseError

from .. import tokens
from ..lifetime import to_micros as micros
from .base import Loaded, Record, wait_for_lock
from .operations import UpdateOutcome
from .redis_layout import (
    TOMBSTONE,
    client_metadata,
    fixed_header,
    live_session,
    pack,
    pending_marker,
    times,
    user_field,
)
from .redis_scripts import BUMP, MARK, PUT, UNLOCK, UPDATE, run_pipeline

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


# What sends a direct command again through the client (RedisSessions.read, .command).
CONNECTION_TROUBLE = (redis_errors.ConnectionError, redis_errors.TimeoutError, OSError)


def direct(pool: Any, *command: Any) -> Any:
    """Send ``command`` on a connection of ``pool`` and return its raw reply:
    the connection is dropped when it fails, and given back to the pool in
    any case."""
    connection = pool.get_connection()
    try:
        connection.send_command(*command)
        return connection.read_response()
    except CONNECTION_TROUBLE:
        connection.disconnect()
        raise
    finally:
        pool.release(connection)


def ttl_ms(expiry: datetime, now: datetime) -> int:
    """Milliseconds from ``now`` to ``expiry``, at least 1."""
    # Relative, from the application's clock: the server's clock may differ.
    return max(1, math.ceil((expiry - now).total_seconds() * 1000))


class RedisSessions:
    """Session operations on one Redis (single node, Sentinel or Cluster):
    :class:`~scs_django.backends.operations.SessionOperations` and a user's
    sessions."""

    def __init__(
        self, client: Any, prefix: str, longest_seconds: int | None = None
    ) -> None:
        from redis.cluster import RedisCluster

        self.client = client
        self.prefix = prefix
        # A cap on a key's TTL (copies in front of a database); None: the
        # session's own expiry.
        self.longest_ms = None if longest_seconds is None else longest_seconds * 1000
        self.cluster = isinstance(client, RedisCluster)
        # The read's GET goes straight to a pooled connection (see read());
        # not on a cluster, nor on a client bound to one connection.
        self.direct = not self.cluster and getattr(client, "connection", None) is None

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
        raise CreateError("The random source gives no token for this session's slot.")

    def renewal_token(self, key_hash: str) -> tuple[str, str] | None:
        # Only a cluster needs old and new key of a renewal in one slot.
        return self.same_slot_token(key_hash) if self.cluster else None

    # -- one session ---------------------------------------------------------

    def read(self, key: str) -> Any:
        """``GET key``: the one command of every read of a session.

        Sent on a connection of the client's own pool, as redis-py's
        pipelines do, rather than through ``Redis.get()``, whose retry
        wrapper, events and metrics cost about a fifth of a whole read. On
        any trouble with the connection the same ``GET`` goes through the
        client after all, with the retries it is configured with; a Redis
        error (``WRONGTYPE``) is raised as the client would raise it.
        """
        if self.direct:
            try:
                return direct(self.client.connection_pool, "GET", key)
            except CONNECTION_TROUBLE:
                pass
        return self.client.get(key)

    def command(self, *command: Any) -> Any:
        """Send one command (a script's ``EVALSHA``) as :meth:`read` sends its
        ``GET``, falling back to ``client.execute_command``: for commands
        whose reply the client does not convert."""
        if self.direct:
            try:
                return direct(self.client.connection_pool, *command)
            except CONNECTION_TROUBLE:
                pass
        return self.client.execute_command(*command)

    def fetch(self, key_hash: str, now: datetime) -> Loaded | None:
        try:
            value = self.read(self.session_key(key_hash))
        except ResponseError as exc:
            if "WRONGTYPE" in str(exc):
                return None  # something else sits under the key; never decode it
            raise
        found = live_session(value, micros(now))
        if found is None:
            return None
        payload, seen, version = found
        return Loaded(payload, seen, version)

    def _index(
        self, record: Record, key_hash: str, now: datetime, drop: str | None = None
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

    def insert(self, key_hash: str, record: Record, now: datetime) -> bool:
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
        record: Record,
        now: datetime,
        version: int | None,
        new_hash: str | None = None,
    ) -> UpdateOutcome:
        return self.write(key_hash, record, now, version, new_hash, lock="")

    def write(
        self,
        key_hash: str,
        record: Record,
        now: datetime,
        version: int | None,
        new_hash: str | None,
        lock: str,
    ) -> UpdateOutcome:
        """:meth:`update`, by the writer holding the session's lock ``lock``
        (the token :meth:`lock` gave; "" for none)."""
        keys = [self.session_key(key_hash), self.lock_key(key_hash)]
        if new_hash is not None:
            keys.append(self.session_key(new_hash))
        # Client metadata is written at creation and renewal only, as in the db.
        renewal = new_hash is not None
        reply: int = UPDATE.run(
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
            # A write that keeps the session's user and absolute deadline finds
            # the index as the write that linked them left it: the script alone.
            None
            if record.linked and new_hash is None
            else self._index(
                record, new_hash or key_hash, now, drop=new_hash and key_hash
            ),
            send=self.command,
        )
        return UpdateOutcome(reply)

    def update_locked(
        self,
        key_hash: str,
        now: datetime,
        new_hash: str | None,
        apply: Callable[[Loaded], Record | None],
    ) -> Record | None:
        while True:
            token = self.lock(key_hash)
            try:
                latest = self.fetch(key_hash, now)
                if latest is None:
                    return None
                record = apply(latest)
                if record is None:
                    return None
                outcome = self.write(
                    key_hash, record, now, latest.version, new_hash, lock=token
                )
            finally:
                self.unlock(key_hash, token)
            if outcome is UpdateOutcome.WRITTEN:
                return record
            if outcome is UpdateOutcome.TAKEN:
                raise CreateError
            # Stale under the lock: the session ended, or this writer held the
            # lock past LOCK_MS and lost it; the next round tells which.

    def lock(self, key_hash: str) -> str:
        """Take the session's write lock (waiting for it); the token that holds it."""
        token, key = secrets.token_hex(8), self.lock_key(key_hash)
        wait_for_lock(
            lambda: bool(self.client.set(key, token, nx=True, px=LOCK_MS)),
            LOCK_WAIT_SECONDS,
        )
        return token

    def unlock(self, key_hash: str, token: str) -> None:
        """Free the session's write lock if ``token`` still holds it."""
        UNLOCK.run(self.client, [self.lock_key(key_hash)], [token], send=self.command)

    def bump(self, key_hash: str, now: datetime, expiry: datetime) -> bool:
        result: int = BUMP.run(
            self.client,
            [self.session_key(key_hash)],
            [micros(now), self._ttl(expiry, now), times(micros(expiry), micros(now))],
            send=self.command,
        )
        return result == 1

    def remove(self, key_hash: str) -> None:
        # The user's index keeps a dead member until its next read or write.
        self.client.delete(self.session_key(key_hash))

    # -- a copy in front of the database (cached_db) --------------------------------

    def put(self, key_hash: str, record: Record, now: datetime) -> None:
        PUT.run(
            self.client,
            [self.session_key(key_hash)],
            [
                record.version,
                self._ttl(record.expiry, now),
                pack(record, client_metadata(record)),
            ],
            send=self.command,
        )

    def mark(self, key_hash: str, version: int, seconds: int) -> None:
        MARK.run(
            self.client,
            [self.session_key(key_hash)],
            [version, seconds * 1000, pending_marker(version)],
            send=self.command,
        )

    def bury(self, key_hashes: Iterable[str], seconds: int) -> None:
        keys = [self.session_key(key_hash) for key_hash in key_hashes]
        if not keys:
            return

        def build(pipe: Any) -> None:
            for key in keys:  # one SET per key: keys of a cluster sit in many slots
                pipe.set(key, TOMBSTONE, px=seconds * 1000)

        run_pipeline(self.client, build, ())


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
