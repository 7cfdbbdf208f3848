"""Lua scripts by their SHA, and a batcher that sends the script calls of concurrent polls in one round trip.

Every feed poll makes two small script calls (``PollState.begin_poll``, ``PollState.finish_poll``). Made one by one,
each costs a whole redis-py round trip: a pool checkout, a packed write, a wake-up to read the reply, timeouts and retry
wrappers around them, which together cost far more of the daemon's CPU than the scripts cost Redis. The polls of a
cycle run concurrently, so many of those calls are made in the same event-loop tick; ``ScriptBatch`` queues them and
sends them together as one non-transactional pipeline, and each caller gets its own reply or its own error.

A ``BatchedScript`` goes further: the calls of one tick to the same script become a single ``EVALSHA`` of a wrapper
that runs the script once per call, with every call's arguments in one JSON argument and every reply in one JSON
reply. redis-py then packs one argument instead of a dozen per call and parses one string instead of a nested reply
per call, which is most of what a poll costs the daemon in Redis. Each call still runs in its own protected call
(``pcall``), so a script error fails only its caller, as in a pipeline. All the monitor's keys share one hash tag
(``monitor.storage.keys``), so the wrapper is valid on a Redis Cluster too; an error of the whole call (a slot moving,
``TRYAGAIN``, a full memory: refused before the script runs, so nothing was written) sends the calls again one by one.

Scripts run by ``EVALSHA``. redis-py's ``Script`` objects would do that too, but inside a pipeline they cost a
``SCRIPT EXISTS`` round trip before every execution; here a ``NOSCRIPT`` reply (a restarted or flushed Redis)
loads the script and runs the affected calls again, so the common case is exactly one round trip.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import DataError, NoScriptError, RedisError, ResponseError

__all__ = ["MAX_BATCH", "MAX_IN_FLIGHT", "BatchedScript", "LuaScript", "ScriptBatch", "run_script"]

#: Calls per pipeline: big enough that a burst of thousands of polls needs few round trips, small enough that one
#: pipeline's replies are read (and its callers resumed) in a few milliseconds; a bigger burst is split.
MAX_BATCH = 256
#: Pipelines of one batcher in flight at once. A burst of 100,000 polls is 400 pipelines: sent all at once they would
#: wait for the connection pool's 64 connections, and those that wait longer than its timeout would fail; past a
#: few in flight Redis, which runs them one after another anyway, gets them no sooner.
MAX_IN_FLIGHT = 4

Arg = str | int | float


@dataclass(frozen=True, slots=True)
class LuaScript:
    """A Lua script and the SHA1 Redis knows it by."""

    text: str
    sha: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha", hashlib.sha1(self.text.encode(), usedforsecurity=False).hexdigest())


# Runs ``one`` (the script's body as a function of its own KEYS and ARGV) for each call: ARGV[1] is the JSON list
# of the calls' argument lists, KEYS are the calls' keys one call after another. The reply is the JSON list of
# [1, reply] or [0, error message] per call: a raised error and a returned ``redis.error_reply`` alike.
_WRAPPER = """
local function one(KEYS, ARGV)
{body}
end
local calls = cjson.decode(ARGV[1])
local width = {width}
local out = {{}}
for i, args in ipairs(calls) do
  local keys = {{}}
  for j = 1, width do keys[j] = KEYS[(i - 1) * width + j] end
  local ok, reply = pcall(one, keys, args)
  if type(reply) == 'table' and reply.err then
    out[i] = {{0, reply.err}}
  elseif not ok then
    out[i] = {{0, tostring(reply)}}
  elseif type(reply) == 'table' and reply.ok then
    out[i] = {{1, reply.ok}}
  else
    out[i] = {{1, reply}}
  end
end
return cjson.encode(out)
"""


@dataclass(frozen=True, slots=True)
class BatchedScript:
    """A script of ``width`` keys per call (``prelude``, shared helpers, then ``body``, which uses KEYS and ARGV as
    usual) that a ``ScriptBatch`` runs for many calls in one ``EVALSHA`` (see the module's docstring). Its arguments
    should be strings: they reach the script through JSON. ``one`` is the script for a single call."""

    prelude: str
    body: str
    width: int
    one: LuaScript = field(init=False)
    many: LuaScript = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "one", LuaScript(self.prelude + self.body))
        many = self.prelude + _WRAPPER.format(body=self.body, width=self.width)
        object.__setattr__(self, "many", LuaScript(many))


async def run_script(redis: aioredis.Redis, script: LuaScript, keys: Sequence[str], args: Sequence[Arg]) -> Any:
    """One script call on its own round trip (loading the script first if Redis does not have it)."""
    try:
        return await redis.evalsha(script.sha, len(keys), *keys, *args)
    except NoScriptError:
        await redis.script_load(script.text)
        return await redis.evalsha(script.sha, len(keys), *keys, *args)


@dataclass(slots=True)
class _Call:
    script: LuaScript | BatchedScript
    keys: Sequence[str]
    args: Sequence[Arg]
    reply: asyncio.Future[Any]
    #: Sent on its own (a ``BatchedScript`` as ``one``) after its batch as a whole was refused.
    alone: bool = False


@dataclass(slots=True)
class _Entry:
    """One command of a pipeline: a plain call, or the calls of one ``BatchedScript`` joined in one call."""

    script: LuaScript
    calls: list[_Call]
    joined: bool

    def send(self, pipe: Any) -> None:
        if not self.joined:
            call = self.calls[0]
            pipe.evalsha(self.script.sha, len(call.keys), *call.keys, *call.args)
            return
        keys = [key for call in self.calls for key in call.keys]
        pipe.evalsha(self.script.sha, len(keys), *keys, self.arguments())

    def arguments(self) -> bytes:
        """The joined calls' arguments as one UTF-8 JSON list. A call whose arguments are not text (a header
        decoded with surrogate escapes, from a server that sent bytes that are not UTF-8) fails alone here: sent,
        it would fail the whole pipeline, every other feed's call with it."""
        try:
            return _json([list(call.args) for call in self.calls])
        except UnicodeEncodeError:
            pass
        kept = []
        for call in self.calls:
            try:
                _json(list(call.args))
                kept.append(call)
            except UnicodeEncodeError:
                _fail(call, DataError("an argument is not valid text (bytes that are not UTF-8)"))
        self.calls = kept
        return _json([list(call.args) for call in kept])


def _json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def _entries(calls: list[_Call]) -> list[_Entry]:
    entries: list[_Entry] = []
    joined: dict[BatchedScript, _Entry] = {}
    for call in calls:
        script = call.script
        if isinstance(script, LuaScript):
            entries.append(_Entry(script, [call], joined=False))
        elif call.alone:
            entries.append(_Entry(script.one, [call], joined=False))
        elif script in joined:
            joined[script].calls.append(call)
        else:
            joined[script] = _Entry(script.many, [call], joined=True)
            entries.append(joined[script])
    return entries


class ScriptBatch:
    """Runs script calls, coalescing those made in the same event-loop tick into pipelines of ``max_batch``, at most
    ``MAX_IN_FLIGHT`` of them sent at once (the others wait their turn here, not in the connection pool).

    A script error (a ``ResponseError``) fails only the call that caused it. A failure of the round trip itself
    (connection lost, timeout: a ``RedisError`` after redis-py's own retry) fails every call of that pipeline with
    a copy of that error; the next call opens a new connection as usual.
    """

    def __init__(self, redis: aioredis.Redis, *, max_batch: int = MAX_BATCH) -> None:
        self.redis = redis
        self.max_batch = max_batch
        self._in_flight = asyncio.Semaphore(MAX_IN_FLIGHT)
        self._queued: list[_Call] = []
        self._senders: set[asyncio.Task[None]] = set()

    async def run(self, script: LuaScript | BatchedScript, keys: Sequence[str], args: Sequence[Arg]) -> Any:
        """The reply of ``script`` run on ``keys`` and ``args``; raises what Redis or the connection raised. The
        reply of a ``BatchedScript`` comes through JSON: strings as ``str``, Lua's false as None."""
        loop = asyncio.get_running_loop()
        call = _Call(script, keys, args, loop.create_future())
        self._queued.append(call)
        if len(self._queued) == 1:
            # A task's first step runs on the next turn of the loop: every call made before then joins this batch.
            sender = loop.create_task(self._send_queued())
            self._senders.add(sender)
            sender.add_done_callback(self._senders.discard)
        return await call.reply

    async def _send_queued(self) -> None:
        calls, self._queued = self._queued, []
        chunks = [calls[i : i + self.max_batch] for i in range(0, len(calls), self.max_batch)]
        try:
            await asyncio.gather(*(self._send(chunk) for chunk in chunks))
        finally:
            for call in calls:  # only if this task was cancelled (the loop is closing)
                if not call.reply.done():
                    call.reply.cancel()

    async def _send(self, calls: list[_Call], *, loaded: bool = False) -> None:
        calls = [c for c in calls if not c.reply.done()]  # a caller that was cancelled needs no reply
        if not calls:
            return
        entries = _entries(calls)
        try:
            async with self._in_flight, self.redis.pipeline(transaction=False) as pipe:
                for entry in entries:
                    entry.send(pipe)
                replies = await pipe.execute(raise_on_error=False)
        except Exception as exc:  # the round trip failed (RedisError), or redis-py did: no caller may hang
            for call in calls:
                _fail(call, exc)
            return
        missing: list[_Entry] = []
        refused: list[_Call] = []
        for entry, reply in zip(entries, replies, strict=True):
            if isinstance(reply, NoScriptError) and not loaded:
                missing.append(entry)
            elif entry.joined and isinstance(reply, ResponseError) and not isinstance(reply, NoScriptError):
                refused.extend(entry.calls)  # refused as a whole, before running: each call on its own
            elif entry.joined:
                _settle_joined(entry.calls, reply)
            else:
                _settle(entry.calls[0], reply)
        if refused:
            for call in refused:
                call.alone = True
            await self._send(refused)
        if missing:
            await self._load_and_resend(missing)

    async def _load_and_resend(self, missing: list[_Entry]) -> None:
        calls = [call for entry in missing for call in entry.calls]
        try:
            for text in {entry.script.text for entry in missing}:
                await self.redis.script_load(text)
        except Exception as exc:
            for call in calls:
                _fail(call, exc)
            return
        await self._send(calls, loaded=True)


def _settle(call: _Call, reply: Any) -> None:
    if call.reply.done():
        return
    if isinstance(reply, RedisError):
        # This call's own error; on a cluster also a redirection given up on (a slot still migrating).
        call.reply.set_exception(reply)
    else:
        call.reply.set_result(reply)


def _settle_joined(calls: list[_Call], reply: Any) -> None:
    """Hand each call its part of a joined call's reply (or the joined call's error, a lost connection's)."""
    if isinstance(reply, Exception):
        for call in calls:
            _fail(call, reply)
        return
    parts = json.loads(reply)
    for call, (ok, value) in zip(calls, parts, strict=True):
        if call.reply.done():
            continue
        if not ok:
            call.reply.set_exception(ResponseError(value))
        elif isinstance(value, list):
            call.reply.set_result([None if item is False else item for item in value])
        else:
            call.reply.set_result(None if value is False else value)


def _fail(call: _Call, exc: Exception) -> None:
    """Fail one caller with its own copy of ``exc`` (caused by it): one exception object raised in hundreds of tasks
    would collect all their tracebacks."""
    if call.reply.done():
        return
    try:
        mine = copy.copy(exc)
    except Exception:  # a type that cannot be copied: the same message in a plain RedisError
        mine = RedisError(str(exc))
    mine.__cause__ = exc
    call.reply.set_exception(mine)
