"""Lua scripts by their SHA, and a batcher that sends the script calls of concurrent polls in one pipeline.

Every feed poll makes two small script calls (``PollState.begin_poll``, ``PollState.finish_poll``). Made one by one,
each costs a whole redis-py round trip: a pool checkout, a packed write, a wake-up to read the reply, timeouts and retry
wrappers around them, which together cost far more of the daemon's CPU than the scripts cost Redis. The polls of a
cycle run concurrently, so many of those calls are made in the same event-loop tick; ``ScriptBatch`` queues them and
sends them together as one non-transactional pipeline, and each caller gets its own reply or its own error.

Scripts run by ``EVALSHA``. redis-py's ``Script`` objects would do that too, but inside a pipeline they cost a
``SCRIPT EXISTS`` round trip before every execution; here a ``NOSCRIPT`` reply (a restarted or flushed Redis)
loads the script and runs the affected calls again, so the common case is exactly one round trip.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import NoScriptError, RedisError

__all__ = ["MAX_BATCH", "LuaScript", "ScriptBatch", "run_script"]

#: Calls per pipeline: big enough that a burst of thousands of polls needs few round trips, small enough that one
#: pipeline's replies are read (and its callers resumed) in a few milliseconds; a bigger burst is split.
MAX_BATCH = 256

Arg = str | int | float


@dataclass(frozen=True, slots=True)
class LuaScript:
    """A Lua script and the SHA1 Redis knows it by."""

    text: str
    sha: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha", hashlib.sha1(self.text.encode(), usedforsecurity=False).hexdigest())


async def run_script(redis: aioredis.Redis, script: LuaScript, keys: Sequence[str], args: Sequence[Arg]) -> Any:
    """One script call on its own round trip (loading the script first if Redis does not have it)."""
    try:
        return await redis.evalsha(script.sha, len(keys), *keys, *args)
    except NoScriptError:
        await redis.script_load(script.text)
        return await redis.evalsha(script.sha, len(keys), *keys, *args)


@dataclass(slots=True)
class _Call:
    script: LuaScript
    keys: Sequence[str]
    args: Sequence[Arg]
    reply: asyncio.Future[Any]


class ScriptBatch:
    """Runs script calls, coalescing those made in the same event-loop tick into pipelines of ``max_batch``.

    A script error (a ``ResponseError``) fails only the call that caused it. A failure of the round trip itself
    (connection lost, timeout: a ``RedisError`` after redis-py's own retry) fails every call of that pipeline with
    a copy of that error; the next call opens a new connection as usual.
    """

    def __init__(self, redis: aioredis.Redis, *, max_batch: int = MAX_BATCH) -> None:
        self.redis = redis
        self.max_batch = max_batch
        self._queued: list[_Call] = []
        self._senders: set[asyncio.Task[None]] = set()

    async def run(self, script: LuaScript, keys: Sequence[str], args: Sequence[Arg]) -> Any:
        """The reply of ``script`` run on ``keys`` and ``args``; raises what Redis or the connection raised."""
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
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for call in calls:
                    pipe.evalsha(call.script.sha, len(call.keys), *call.keys, *call.args)
                replies = await pipe.execute(raise_on_error=False)
        except Exception as exc:  # the round trip failed (RedisError), or redis-py did: no caller may hang
            for call in calls:
                _fail(call, exc)
            return
        missing: list[_Call] = []
        for call, reply in zip(calls, replies, strict=True):
            if isinstance(reply, NoScriptError) and not loaded:
                missing.append(call)
            elif isinstance(reply, RedisError):
                # This call's own error; on a cluster also a redirection given up on (a slot still migrating).
                if not call.reply.done():
                    call.reply.set_exception(reply)
            elif not call.reply.done():
                call.reply.set_result(reply)
        if missing:
            try:
                for text in {c.script.text for c in missing}:
                    await self.redis.script_load(text)
            except Exception as exc:
                for call in missing:
                    _fail(call, exc)
                return
            await self._send(missing, loaded=True)


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
