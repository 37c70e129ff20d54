"""A user's sessions on Redis: listing and revoking them through the per-user
index that :class:`~scs_django.backends.redis.RedisSessions` writes with every
session of a signed-in user (a sorted set ``<prefix>u:{<user id>}``; members:
token hashes, scores: absolute expiry in ms).

The index may keep members of sessions that ended: they are dropped whenever
it is read, when a revoke ends them, and by :meth:`RedisUsers.prune_indexes`.

Everything here works in batches of :data:`BATCH` sessions, so a user with
10,000 sessions costs some round trips more than one with ten, never memory
for 10,000 values at once.
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from itertools import islice
from typing import Any

from ..lifetime import to_micros as micros
from .redis import RedisSessions
from .redis_layout import unpack
from .redis_scripts import KILL, run_pipeline

# What a listing reads of each session: the header, user id and client metadata
# of any usual size.
LISTED = 4096
# Sessions read, ended or checked per round trip. 500 values of LISTED bytes
# are 2 MB at most; a revoke of 10,000 sessions is about 20 round trips.
BATCH = 500
# A revoke works through a copy of the user's index (see revoke_user); the copy
# outlives a revoke that dies midway by this long at most.
SNAPSHOT_MS = 600_000


def _text(member: Any) -> str:
    return member.decode() if isinstance(member, bytes) else str(member)


def _queue_end(
    keys: list[str],
    user: str,
    index: str | None,
    members: list[str],
    then: Callable[[Any], None] | None,
    pipe: Any,
) -> None:
    for key in keys:  # one script per key: a cluster's keys are apart
        KILL.queue(pipe, [key], [user])
    if index is not None and members:
        pipe.zrem(index, *members)
    if then is not None:
        then(pipe)


def batched(items: Iterable[Any], size: int = BATCH) -> Iterator[list[Any]]:
    """``items`` in lists of at most ``size``."""
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


class RedisUsers:
    """The sessions of users, on the Redis of ``sessions``."""

    def __init__(self, sessions: RedisSessions) -> None:
        self.sessions = sessions
        self.client = sessions.client

    def _members(self, user_key: Any) -> list[str]:
        return [_text(m) for m in self.client.zrange(user_key, 0, -1)]

    def user_sessions(self, user_id: Any, now: datetime) -> list[dict[str, Any]]:
        """The live sessions of a user, as dicts of raw fields (one round trip
        for the index, one per :data:`BATCH` sessions); dead index members are
        dropped."""
        user_key = self.sessions.user_key(user_id)
        found, dead = [], []
        now_us = micros(now)
        for members in batched(self._members(user_key)):
            for key_hash, row in zip(members, self._headers(members), strict=True):
                if row is None or row["expiry"] <= now_us:
                    dead.append(key_hash)
                elif row["user"] != str(user_id):
                    dead.append(key_hash)  # the session now belongs to someone else
                else:
                    del row["payload"], row["user"], row["version"]
                    found.append({"key_hash": key_hash, **row})
        for members in batched(dead):
            self.client.zrem(user_key, *members)
        return found

    def _headers(self, members: list[str]) -> list[dict[str, Any] | None]:
        # The header and metadata of each session, not its data.
        keys = [self.sessions.session_key(key_hash) for key_hash in members]
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            pipe.getrange(key, 0, LISTED - 1)
        # A key holding something else (WRONGTYPE) is a dead member like any other.
        values = pipe.execute(raise_on_error=False)
        for i, value in enumerate(values):
            if isinstance(value, bytes) and len(value) == LISTED and not unpack(value):
                values[i] = self.client.get(keys[i])  # longer metadata than usual
        return [unpack(value) for value in values]

    def revoke(self, key_hashes: Iterable[str], user_id: Any = None) -> int:
        """End the sessions stored under ``key_hashes`` (those of ``user_id``
        only, if given); returns how many ended.

        A session renewed since it was listed left a forward under its old key:
        it is followed, so a renewal racing the revoke cannot save the session.
        """
        user = "" if user_id is None else str(user_id)
        return sum(self._end(batch, user)[0] for batch in batched(key_hashes))

    def _end(
        self,
        key_hashes: list[str],
        user: str,
        index: str | None = None,
        extra: Callable[[Any], None] | None = None,
    ) -> tuple[int, list[Any]]:
        """End ``key_hashes`` (one KILL script each, in one round trip with
        ``extra(pipeline)``'s commands), following renewals' forwards; the count
        ended and the replies to ``extra``'s commands. With ``index``, the ended
        members leave that user index in the same round trips."""
        ended = 0
        tail: list[Any] = []
        seen: set[str] = set()
        pending = list(dict.fromkeys(key_hashes))
        then = extra
        while pending or then is not None:
            seen.update(pending)
            members = pending
            keys = [self.sessions.session_key(key_hash) for key_hash in members]

            build = functools.partial(_queue_end, keys, user, index, members, then)
            results = run_pipeline(self.client, build, (KILL,))
            if then is not None:  # only the first round trip has extra commands
                tail = results[len(keys) + (index is not None and bool(members)) :]
            pending, then = [], None
            for result in results[: len(keys)]:
                if result == 1:
                    ended += 1
                elif isinstance(result, bytes):
                    moved = result.decode()
                    if moved not in seen:
                        pending.append(moved)
        return ended, tail

    def _snapshot_key(self, user_key: str) -> str:
        # Beside the index, under its hash tag (one cluster slot), and not under
        # "u:", which prune_indexes scans.
        tagged = user_key[len(self.sessions.prefix) + len("u:") :]
        return f"{self.sessions.prefix}r:{tagged}{secrets.token_hex(8)}"

    def revoke_user(self, user_id: Any, keep_hash: str | None = None) -> int:
        """End every session in ``user_id``'s index but ``keep_hash``'s.

        The index is copied first (``ZRANGESTORE``) and the copy read in pages
        of :data:`BATCH`: unlike ``ZSCAN`` of the index itself, which may miss a
        member that a renewal removes meanwhile, the copy holds every session
        the user had when the revoke started, and a renewed one is followed by
        its forward. Each page's sessions end in one round trip, which also
        reads the next page.
        """
        user = str(user_id)
        user_key = self.sessions.user_key(user_id)
        snapshot = self._snapshot_key(user_key)
        pipe = self.client.pipeline(transaction=False)
        pipe.zrangestore(snapshot, user_key, 0, -1)
        pipe.pexpire(snapshot, SNAPSHOT_MS)
        pipe.zrange(snapshot, 0, BATCH - 1)
        page = pipe.execute()[-1]
        ended = start = 0
        while page:
            start += len(page)
            last = len(page) < BATCH

            def then(pipe: Any, start: int = start, last: bool = last) -> None:
                if last:
                    pipe.delete(snapshot)
                else:
                    pipe.zrange(snapshot, start, start + BATCH - 1)

            members = [m for m in map(_text, page) if m != keep_hash]
            count, tail = self._end(members, user, user_key, then)
            ended += count
            page = [] if last else tail[-1]
        return ended

    def prune_indexes(self, now: datetime) -> int:
        """Drop dead members from every user index (SCAN and ZSCAN, a round trip
        per :data:`BATCH` members; for cleanup jobs)."""
        pruned = 0
        pattern = f"{self.sessions.prefix}u:*"
        for user_key in self.client.scan_iter(match=pattern, count=1000):
            # A member a write adds meanwhile may be missed: the next run has it.
            scanned = self.client.zscan_iter(user_key, count=BATCH)
            for page in batched(_text(member) for member, _score in scanned):
                pipe = self.client.pipeline(transaction=False)
                for key_hash in page:
                    pipe.exists(self.sessions.session_key(key_hash))
                alive = pipe.execute()
                dead = [m for m, live in zip(page, alive, strict=True) if not live]
                if dead:
                    pruned += self.client.zrem(user_key, *dead)
        return pruned
