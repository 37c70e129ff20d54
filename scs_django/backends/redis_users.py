"""A user's sessions on Redis: listing and revoking them through the per-user
index that :class:`~scs_django.backends.redis.RedisSessions` writes with every
session of a signed-in user (a sorted set ``<prefix>u:{<user id>}``; members:
token hashes, scores: absolute expiry in ms).

The index may keep members of sessions that ended: they are dropped whenever
it is read, and by :meth:`RedisUsers.prune_indexes`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from ..lifetime import to_micros as micros
from .redis import RedisSessions
from .redis_layout import unpack
from .redis_scripts import KILL, run_pipeline

# What a listing reads of each session: the header, user id and client metadata
# of any usual size.
LISTED = 4096


class RedisUsers:
    """The sessions of users, on the Redis of ``sessions``."""

    def __init__(self, sessions: RedisSessions) -> None:
        self.sessions = sessions
        self.client = sessions.client

    def _members(self, user_key: Any) -> list[str]:
        return [
            m.decode() if isinstance(m, bytes) else m
            for m in self.client.zrange(user_key, 0, -1)
        ]

    def user_sessions(self, user_id: Any, now: datetime) -> list[dict[str, Any]]:
        """The live sessions of a user, as dicts of raw fields (one round trip
        for the index, one for the sessions); dead index members are dropped."""
        user_key = self.sessions.user_key(user_id)
        members = self._members(user_key)
        if not members:
            return []
        keys = [self.sessions.session_key(key_hash) for key_hash in members]
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
            keys = [self.sessions.session_key(key_hash) for key_hash in pending]

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
        members = self._members(self.sessions.user_key(user_id))
        return self.revoke((m for m in members if m != keep_hash), user_id)

    def prune_indexes(self, now: datetime) -> int:
        """Drop dead members from every user index (SCAN; for cleanup jobs)."""
        pruned = 0
        pattern = f"{self.sessions.prefix}u:*"
        for user_key in self.client.scan_iter(match=pattern, count=1000):
            members = self.client.zrange(user_key, 0, -1)
            if not members:
                continue
            pipe = self.client.pipeline(transaction=False)
            for member in members:
                key_hash = member.decode() if isinstance(member, bytes) else member
                pipe.exists(self.sessions.session_key(key_hash))
            dead = [
                m for m, alive in zip(members, pipe.execute(), strict=True) if not alive
            ]
            if dead:
                pruned += self.client.zrem(user_key, *dead)
        return pruned
