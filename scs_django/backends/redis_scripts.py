"""The Lua scripts of the Redis sessions, and how they are sent.

The scripts are written as :class:`string.Template` text: every offset, width
and kind letter of a session value comes from
:data:`scs_django.backends.redis_layout.LUA`, filled in at import time, so the
scripts and the Python code read the same layout.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from hashlib import sha1
from string import Template
from typing import Any

from redis.exceptions import NoScriptError, ResponseError

from .redis_layout import LUA

# KEYS: session key, its lock [, new key]. ARGV: now, version ('' for any),
# ttl, the fixed header, user id, client metadata, '1' to keep the stored
# client metadata instead, payload, the lock token this request holds ('' for
# none), the new key's hash, the forward's ttl. 1 written, 0 gone/expired/other
# version/locked by another request, -1 new key taken (UpdateOutcome's values).
_UPDATE = """
local head = redis.call('GETRANGE', KEYS[1], 0, $head - 1)
if #head < $head or string.sub(head, $kind) ~= '$SESSION' then return 0 end
if tonumber(string.sub(head, $expiry)) <= tonumber(ARGV[1]) then return 0 end
if ARGV[2] ~= '' and tonumber(string.sub(head, $version)) ~= tonumber(ARGV[2]) then
  return 0
end
local holder = redis.call('GET', KEYS[2])
if holder and holder ~= ARGV[9] then return 0 end
local client = ARGV[6]
if ARGV[7] == '1' then
  local u = tonumber(string.sub(head, $user_length))
  local m = tonumber(string.sub(head, $client_length))
  client = ''
  if m > 0 then client = redis.call('GETRANGE', KEYS[1], $head + u, $head - 1 + u + m) end
end
local target = KEYS[1]
if #KEYS == 3 then
  if redis.call('EXISTS', KEYS[3]) == 1 then return -1 end
  redis.call('SET', KEYS[1], '$FORWARD' .. ARGV[10], 'PX', ARGV[11])
  target = KEYS[3]
end
redis.call('SET', target, ARGV[4] .. string.format('$lengths_format', #ARGV[5], #client)
  .. ARGV[5] .. client .. ARGV[8], 'PX', ARGV[3])
return 1
"""

# A copy kept in front of the database (cached_db). KEYS: key; ARGV: version,
# ttl, value. Never over a tombstone, a newer copy or the marker of a newer
# version being written.
_PUT = """
local head = redis.call('GETRANGE', KEYS[1], 0, $version_end - 1)
local kind = string.sub(head, $kind)
if kind == '$TOMBSTONE' then return 0 end
if (kind == '$SESSION' or kind == '$PENDING') and #head == $version_end
    and tonumber(string.sub(head, $version)) > tonumber(ARGV[1]) then
  return 0
end
redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[2])
return 1
"""

# Before a copy's version is written to the database: the marker stops copies
# of older versions (a read that raced the write) from being cached, and is
# replaced by the new copy once the database has it. KEYS: key; ARGV: version,
# ttl, marker. Never over a tombstone or the marker of a newer version.
_MARK = """
local head = redis.call('GETRANGE', KEYS[1], 0, $version_end - 1)
local kind = string.sub(head, $kind)
if kind == '$TOMBSTONE' then return 0 end
if kind == '$PENDING' and #head == $version_end
    and tonumber(string.sub(head, $version)) >= tonumber(ARGV[1]) then
  return 1
end
redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[2])
return 1
"""

# Ends a session, following it to where a renewal moved it. KEYS: key; ARGV:
# the user id it must belong to ('' for any). 1 ended, the new key's hash for
# a renewed session, 0 nothing (gone, someone else's).
_KILL = """
local value = redis.call('GET', KEYS[1])
if not value then return 0 end
local kind = string.sub(value, $kind)
if kind == '$FORWARD' then return string.sub(value, $kind_end + 1) end
if kind ~= '$SESSION' or #value < $head then return 0 end
if ARGV[1] ~= '' then
  local u = tonumber(string.sub(value, $user_length))
  if string.sub(value, $head + 1, $head + u) ~= ARGV[1] then return 0 end
end
redis.call('DEL', KEYS[1])
return 1
"""

# KEYS: a session's lock; ARGV: the token that holds it.
_UNLOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# KEYS: session key; ARGV: now, ttl, the new expiry and last seen (both fields).
_BUMP = """
local head = redis.call('GETRANGE', KEYS[1], 0, $expiry_end - 1)
if #head < $expiry_end or string.sub(head, $kind) ~= '$SESSION' then return 0 end
if tonumber(string.sub(head, $expiry)) <= tonumber(ARGV[1]) then return 0 end
redis.call('SETRANGE', KEYS[1], $expiry_at, ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""


def missing_script(exc: ResponseError) -> bool:
    """True when ``exc`` says the server lost its scripts (a restart, SCRIPT FLUSH)."""
    return isinstance(exc, NoScriptError) or "NOSCRIPT" in str(exc)


def run_pipeline(
    client: Any, build: Callable[[Any], None], scripts: Iterable[Script]
) -> list[Any]:
    """Send the commands ``build(pipeline)`` queues in one round trip, loading
    the scripts once if the server lost them (a restart, SCRIPT FLUSH)."""
    for attempt in (1, 2):
        pipe = client.pipeline(transaction=False)
        build(pipe)
        try:
            results: list[Any] = pipe.execute()
            return results
        except ResponseError as exc:
            if not missing_script(exc) or attempt == 2:
                raise
            for script in scripts:
                client.script_load(script.source)
    raise AssertionError("unreachable")


class Script:
    """A Lua script run by EVALSHA, loaded on first NOSCRIPT.

    redis-py's own Script object adds a SCRIPT EXISTS round trip to every
    pipeline that contains it; this one only pays when the server lacks it.
    """

    def __init__(self, template: str) -> None:
        self.source = Template(template).substitute(LUA)
        self.sha = sha1(self.source.encode()).hexdigest()  # noqa: S324 - Redis' script id

    def queue(self, pipe: Any, keys: list[str], args: list[Any]) -> None:
        """Add a run of this script to ``pipe``."""
        # Not pipe.evalsha(): redis-py's ClusterPipeline blocks that method,
        # though it routes an EVALSHA by its keys like any other command.
        pipe.execute_command("EVALSHA", self.sha, len(keys), *keys, *args)

    def run(
        self,
        client: Any,
        keys: list[str],
        args: list[Any],
        extra: Callable[[Any], None] | None = None,
        *,
        send: Callable[..., Any] | None = None,
    ) -> Any:
        """Run the script, then ``extra(pipeline)`` commands, in one round trip.

        Alone, the script goes by ``send`` (default: ``client.execute_command``).
        """
        if extra is None:
            # Alone, it needs no pipeline (which costs more to build than the
            # command itself).
            execute = client.execute_command if send is None else send
            command = ("EVALSHA", self.sha, len(keys), *keys, *args)
            try:
                return execute(*command)
            except ResponseError as exc:
                if not missing_script(exc):
                    raise
            client.script_load(self.source)
            return execute(*command)

        def build(pipe: Any) -> None:
            self.queue(pipe, keys, args)
            extra(pipe)

        return run_pipeline(client, build, (self,))[0]


UPDATE, BUMP, PUT = Script(_UPDATE), Script(_BUMP), Script(_PUT)
MARK, KILL, UNLOCK = Script(_MARK), Script(_KILL), Script(_UNLOCK)
# Every script, for loading them ahead of use.
SCRIPTS = (UPDATE, BUMP, PUT, MARK, KILL, UNLOCK)
