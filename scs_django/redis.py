"""Sessions in Redis through redis-py's native client, never through pickle.

Each session is one Redis hash under ``<prefix>s:{<tag>}<rest of the hash>``:

====  =====================================================
 d    the encoded envelope (raw bytes, never unpickled)
 s    last seen, microseconds since the epoch
 e    expiry (min of idle, fixed and absolute deadlines)
 c    created, a   absolute expiry
 v    version, bumped by every data write
 u    user id, or empty
====  =====================================================

and the key's TTL is the time left until ``e``. Every write is a small Lua
script that first checks the key is still there, unexpired and at the version
the request read, so a logout, a revoke or a TTL expiry in between is never
undone. The cluster hash tag is the first two hex digits of the token hash; on
Redis Cluster a renewed token is drawn with the same two digits, so the old and
the new key sit in one slot and the rename stays one atomic script there too.

A user's sessions are listed in a sorted set ``<prefix>u:{<user id>}`` (members:
token hashes, scores: absolute expiry in ms), written in the same round trip as
the session and pruned of dead members whenever it is read or written.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from redis.exceptions import NoScriptError, ResponseError

from . import tokens
from .backends.base import Loaded, _from_micros, _to_micros

TAG_LENGTH = 2
SAME_SLOT_DRAWS = 100_000

_INSERT = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
"""

# KEYS: session key [, new key]; ARGV: now, version, ttl, field/value pairs.
# 1 written, 0 gone/expired/other version, -1 new key taken.
_UPDATE = """
local cur = redis.call('HMGET', KEYS[1], 'v', 'e')
if not cur[1] or not cur[2] or tonumber(cur[2]) <= tonumber(ARGV[1]) then
  return 0
end
if ARGV[2] ~= '' and cur[1] ~= ARGV[2] then return 0 end
local target = KEYS[1]
if #KEYS == 2 then
  if redis.call('EXISTS', KEYS[2]) == 1 then return -1 end
  redis.call('RENAME', KEYS[1], KEYS[2])
  target = KEYS[2]
end
redis.call('HSET', target, unpack(ARGV, 4))
redis.call('PEXPIRE', target, ARGV[3])
return 1
"""

# A copy kept in front of the database (cached_db). KEYS: key; ARGV: version,
# ttl, field/value pairs. Never over a tombstone (x) or a newer copy.
_PUT = """
local cur = redis.call('HMGET', KEYS[1], 'x', 'v')
if cur[1] then return 0 end
if cur[2] and tonumber(cur[2]) > tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""

# The copy under a renewed token: only where nothing is stored yet, so a token
# clash can never put this session's data under another session's key.
_PUT_NEW = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
"""

# Replace whatever is cached with a tombstone that stops late refills.
_BURY = """
for i, key in ipairs(KEYS) do
  redis.call('DEL', key)
  redis.call('HSET', key, 'x', '1')
  redis.call('PEXPIRE', key, ARGV[1])
end
return #KEYS
"""

# KEYS: session key; ARGV: now, ttl, last seen, expiry.
_BUMP = """
local e = redis.call('HGET', KEYS[1], 'e')
if not e or tonumber(e) <= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 's', ARGV[3], 'e', ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""


class Script:
    """A Lua script run by EVALSHA, loaded on first NOSCRIPT.

    redis-py's own Script object adds a SCRIPT EXISTS round trip to every
    pipeline that contains it; this one only pays when the server lacks it.
    """

    def __init__(self, source: str) -> None:
        from hashlib import sha1

        self.source = source
        self.sha = sha1(source.encode()).hexdigest()  # noqa: S324 - Redis' script id

    def queue(self, pipe: Any, keys: list[str], args: list[Any]) -> None:
        """Add a run of this script to ``pipe``."""
        # Not pipe.evalsha(): redis-py's ClusterPipeline blocks that method,
        # though it routes an EVALSHA by its keys like any other command.
        pipe.execute_command("EVALSHA", self.sha, len(keys), *keys, *args)

    def run(self, client: Any, keys: list[str], args: list[Any], extra=None) -> Any:
        """Run the script, then ``extra(pipeline)`` commands, in one round trip."""

        def build(pipe: Any) -> None:
            self.queue(pipe, keys, args)
            if extra is not None:
                extra(pipe)

        return run_pipeline(client, build, (self,))[0]


def run_pipeline(client: Any, build: Any, scripts: Iterable[Script]) -> list[Any]:
    """Send the commands ``build(pipeline)`` queues in one round trip, loading
    the scripts once if the server lost them (a restart, SCRIPT FLUSH)."""
    for attempt in (1, 2):
        pipe = client.pipeline(transaction=False)
        build(pipe)
        try:
            return pipe.execute()
        except ResponseError as exc:
            missing = isinstance(exc, NoScriptError) or "NOSCRIPT" in str(exc)
            if not missing or attempt == 2:
                raise
            for script in scripts:
                client.script_load(script.source)
    raise AssertionError("unreachable")


INSERT, UPDATE, BUMP = Script(_INSERT), Script(_UPDATE), Script(_BUMP)
PUT, PUT_NEW, BURY = Script(_PUT), Script(_PUT_NEW), Script(_BURY)


def micros(value: datetime) -> int:
    return _to_micros(value)


def ttl_ms(expiry: datetime, now: datetime) -> int:
    # Relative, from the application's clock: the server's clock may differ.
    return max(1, math.ceil((expiry - now).total_seconds() * 1000))


class RedisSessions:
    """Session operations on one Redis (single node, Sentinel or Cluster)."""

    def __init__(self, client: Any, prefix: str) -> None:
        from redis.cluster import RedisCluster

        self.client = client
        self.prefix = prefix
        # Only a cluster needs old and new key of a renewal in one slot.
        self.cluster = isinstance(client, RedisCluster)

    # -- keys --------------------------------------------------------------

    def session_key(self, key_hash: str) -> str:
        return f"{self.prefix}s:{{{key_hash[:TAG_LENGTH]}}}{key_hash[TAG_LENGTH:]}"

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
            payload, seen, version, expiry, buried = self.client.hmget(
                self.session_key(key_hash), ("d", "s", "v", "e", "x")
            )
        except ResponseError as exc:
            if "WRONGTYPE" in str(exc):
                return None  # something else sits under the key; never decode it
            raise
        if (
            buried
            or payload is None
            or seen is None
            or version is None
            or expiry is None
        ):
            return None
        if int(expiry) <= micros(now):
            return None
        return Loaded(payload, _from_micros(int(seen)), int(version))

    @staticmethod
    def _fields(record: Any, client: bool = True) -> list[Any]:
        fields = [
            "d",
            record.payload,
            "s",
            micros(record.last_seen),
            "e",
            micros(record.expiry),
            "c",
            micros(record.created_at),
            "a",
            micros(record.absolute_expiry),
            "v",
            record.version,
            "u",
            "" if record.user_id is None else str(record.user_id),
        ]
        # Client metadata is written at creation and renewal only, as in the db.
        for name, attr in (("ip", "ip"), ("ua", "user_agent")):
            value = getattr(record, attr, None)
            if client and value:
                fields += [name, value]
        return fields

    def _index(
        self, record: Any, key_hash: str, now: datetime, drop: str | None = None
    ):
        if record.user_id is None:
            return None
        user_key = self.user_key(record.user_id)

        def extra(pipe: Any) -> None:
            if drop is not None:
                pipe.zrem(user_key, drop)
            pipe.zadd(user_key, {key_hash: micros(record.absolute_expiry) // 1000})
            pipe.zremrangebyscore(user_key, "-inf", micros(now) // 1000)
            # NX gives a new index a TTL; GT lets a longer-lived session extend it.
            ttl = ttl_ms(record.absolute_expiry, now)
            pipe.pexpire(user_key, ttl, nx=True)
            pipe.pexpire(user_key, ttl, gt=True)

        return extra

    def insert(self, key_hash: str, record: Any, now: datetime) -> bool:
        result = INSERT.run(
            self.client,
            [self.session_key(key_hash)],
            [ttl_ms(record.expiry, now), *self._fields(record)],
            self._index(record, key_hash, now),
        )
        return result == 1

    def update(
        self,
        key_hash: str,
        record: Any,
        now: datetime,
        version: int | None,
        new_hash: str | None = None,
    ) -> int:
        """1 written, 0 gone or at another version, -1 ``new_hash`` taken."""
        keys = [self.session_key(key_hash)]
        if new_hash is not None:
            keys.append(self.session_key(new_hash))
        return UPDATE.run(
            self.client,
            keys,
            [
                micros(now),
                "" if version is None else version,
                ttl_ms(record.expiry, now),
                *self._fields(record, client=new_hash is not None),
            ],
            self._index(record, new_hash or key_hash, now, drop=new_hash and key_hash),
        )

    def bump(self, key_hash: str, now: datetime, expiry: datetime) -> bool:
        result = BUMP.run(
            self.client,
            [self.session_key(key_hash)],
            [micros(now), ttl_ms(expiry, now), micros(now), micros(expiry)],
        )
        return result == 1

    def remove(self, key_hash: str) -> None:
        # The user's index keeps a dead member until its next read or write.
        self.client.delete(self.session_key(key_hash))

    # -- a copy in front of the database (cached_db) --------------------------------

    def put(self, key_hash: str, record: Any, now: datetime) -> None:
        """Cache ``record`` unless the session was buried or a newer copy is there."""
        PUT.run(
            self.client,
            [self.session_key(key_hash)],
            [record.version, ttl_ms(record.expiry, now), *self._fields(record)],
        )

    def replace(
        self, old_hash: str, new_hash: str, record: Any, now: datetime, seconds: int
    ) -> bool:
        """Bury ``old_hash`` and cache ``record`` under ``new_hash`` if nothing is
        there, in one round trip (a renewal: the new copy is unreachable until
        its cookie is sent). True when the new copy was written."""

        def build(pipe: Any) -> None:
            BURY.queue(pipe, [self.session_key(old_hash)], [seconds * 1000])
            PUT_NEW.queue(
                pipe,
                [self.session_key(new_hash)],
                [ttl_ms(record.expiry, now), *self._fields(record)],
            )

        return run_pipeline(self.client, build, (BURY, PUT_NEW))[1] == 1

    def forget(self, key_hash: str) -> None:
        self.client.delete(self.session_key(key_hash))

    def bury(self, key_hashes: Iterable[str], seconds: int) -> None:
        """Drop cached copies and keep them from being refilled for ``seconds``."""
        for key_hash in key_hashes:  # one script per key: cluster slots differ
            BURY.run(self.client, [self.session_key(key_hash)], [seconds * 1000])

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
        pipe = self.client.pipeline(transaction=False)
        for key_hash in members:
            pipe.hmget(
                self.session_key(key_hash), ("s", "e", "c", "a", "u", "ip", "ua")
            )
        found, dead = [], []
        now_us = micros(now)
        for key_hash, row in zip(members, pipe.execute(), strict=True):
            seen, expiry, created, absolute, user, ip, ua = row
            if expiry is None or int(expiry) <= now_us or user is None:
                dead.append(key_hash)
                continue
            if user.decode() != str(user_id):
                dead.append(key_hash)  # the session now belongs to someone else
                continue
            found.append(
                {
                    "key_hash": key_hash,
                    "last_seen": int(seen),
                    "expiry": int(expiry),
                    "created_at": int(created),
                    "absolute_expiry": int(absolute),
                    "ip": ip.decode() if ip else None,
                    "user_agent": ua.decode() if ua else "",
                }
            )
        if dead:
            self.client.zrem(user_key, *dead)
        return found

    def revoke(self, key_hashes: Iterable[str]) -> int:
        keys = [self.session_key(h) for h in key_hashes]
        if not keys:
            return 0
        pipe = self.client.pipeline(transaction=False)
        for key in keys:  # one DEL per key: keys of a cluster sit in many slots
            pipe.delete(key)
        return sum(pipe.execute())

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
    "scs_django.redis.ClusterConnectionFactory"`` with a ``redis://`` URL of any
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
