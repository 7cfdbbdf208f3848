"""ScriptBatch against a real Redis: concurrent calls share a pipeline, each gets its own reply or its own error,
a lost Redis fails the calls in flight and the next call works once it is back."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import DataError, NoPermissionError, RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from monitor.config import RedisConfig
from monitor.storage.batch import BatchedScript, LuaScript, ScriptBatch, run_script
from monitor.storage.connection import EmbeddedRedis, connect

# Appends ARGV[1] to a list and returns it with the list's new length; 'boom' is a script error.
ECHO = LuaScript("""
if ARGV[1] == 'boom' then return redis.error_reply('boom') end
return {ARGV[1], redis.call('RPUSH', KEYS[1], ARGV[1])}
""")


def count_pipelines(monkeypatch: pytest.MonkeyPatch, client: aioredis.Redis) -> list[int]:
    """The size of every pipeline ``client`` executes from now on (a spy; the commands still reach Redis)."""
    sizes: list[int] = []
    make: Callable[..., Any] = client.pipeline

    def pipeline(*args: Any, **kwargs: Any) -> Any:
        pipe = make(*args, **kwargs)
        execute = pipe.execute

        async def counted(*a: Any, **kw: Any) -> Any:
            sizes.append(len(pipe.command_stack))
            return await execute(*a, **kw)

        pipe.execute = counted
        return pipe

    monkeypatch.setattr(client, "pipeline", pipeline)
    return sizes


async def test_concurrent_calls_share_one_pipeline_and_get_their_own_replies(
    redis: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch = ScriptBatch(redis)
    await redis.script_load(ECHO.text)  # else the first pipeline is sent again after loading it (tested below)
    sizes = count_pipelines(monkeypatch, redis)
    replies = await asyncio.gather(*(batch.run(ECHO, ["list"], [f"v{i}"]) for i in range(20)))
    assert replies == [[f"v{i}".encode(), i + 1] for i in range(20)]  # in call order, each its own
    assert sizes == [20]
    assert await batch.run(ECHO, ["list"], ["later"]) == [b"later", 21]  # a later tick: a pipeline of its own
    assert sizes == [20, 1]


async def test_a_batch_is_bounded_and_split(redis: aioredis.Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    batch = ScriptBatch(redis, max_batch=3)
    await redis.script_load(ECHO.text)
    sizes = count_pipelines(monkeypatch, redis)
    replies = await asyncio.gather(*(batch.run(ECHO, [f"list{i}"], [str(i)]) for i in range(10)))
    assert replies == [[str(i).encode(), 1] for i in range(10)]
    assert sorted(sizes) == [1, 3, 3, 3]


async def test_one_callers_script_error_fails_only_that_caller(redis: aioredis.Redis) -> None:
    batch = ScriptBatch(redis)
    replies = await asyncio.gather(
        batch.run(ECHO, ["list"], ["a"]),
        batch.run(ECHO, ["list"], ["boom"]),
        batch.run(ECHO, ["list"], ["b"]),
        return_exceptions=True,
    )
    assert replies[0] == [b"a", 1] and replies[2] == [b"b", 2]
    assert isinstance(replies[1], ResponseError) and "boom" in str(replies[1])


async def test_a_cancelled_caller_does_not_disturb_the_others(redis: aioredis.Redis) -> None:
    batch = ScriptBatch(redis)
    calls = [asyncio.ensure_future(batch.run(ECHO, ["list"], [v])) for v in "abc"]
    await asyncio.sleep(0)  # queued, not yet sent
    calls[1].cancel()
    replies = await asyncio.gather(*calls, return_exceptions=True)
    assert isinstance(replies[1], asyncio.CancelledError)
    assert replies[0] == [b"a", 1] and replies[2] == [b"c", 2]
    assert await redis.lrange("list", 0, -1) == [b"a", b"c"]  # the cancelled call was never sent


async def test_scripts_unknown_to_redis_are_loaded_and_run(
    redis: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A restarted (or flushed) Redis has no scripts: NOSCRIPT replies load them and the calls run again."""
    batch = ScriptBatch(redis)
    await redis.script_flush()
    sizes = count_pipelines(monkeypatch, redis)
    replies = await asyncio.gather(
        *(batch.run(ECHO, ["list"], [v]) for v in "ab"), batch.run(ECHO, ["list"], ["boom"]), return_exceptions=True
    )
    assert replies[:2] == [[b"a", 1], [b"b", 2]]
    assert isinstance(replies[2], ResponseError) and "boom" in str(replies[2])
    assert sizes == [3, 3]  # sent, loaded, sent again
    await redis.script_flush()
    assert await run_script(redis, ECHO, ["list"], ["c"]) == [b"c", 3]


@pytest.mark.timeout(60)
async def test_a_lost_redis_fails_the_batch_and_the_next_call_works_once_it_is_back(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path / "redis")
    client = connect(server.start(), RedisConfig(socket_timeout_s=1, connect_timeout_s=1))
    batch = ScriptBatch(client)
    try:
        assert await batch.run(ECHO, ["list"], ["a"]) == [b"a", 1]
        pid = int((await client.info("server"))["process_id"])
        os.kill(pid, signal.SIGSTOP)  # paused: every call of the batch times out
        try:
            replies = await asyncio.gather(*(batch.run(ECHO, ["list"], [v]) for v in "xyz"), return_exceptions=True)
        finally:
            os.kill(pid, signal.SIGCONT)
        assert all(isinstance(r, RedisTimeoutError | RedisConnectionError) for r in replies), replies
        assert len({id(r) for r in replies}) == 3  # each caller its own exception object
        await asyncio.to_thread(server.stop)  # gone: every call of the batch fails with a connection error
        replies = await asyncio.gather(*(batch.run(ECHO, ["list"], [v]) for v in "pq"), return_exceptions=True)
        assert all(isinstance(r, RedisConnectionError) for r in replies), replies
        assert all(isinstance(r, RedisError) for r in replies)
        await asyncio.to_thread(server.start)  # back, on the same data but without its scripts
        replies = await asyncio.gather(*(batch.run(ECHO, ["list"], [v]) for v in "bc"))
        assert [r[0] for r in replies] == [b"b", b"c"]
    finally:
        await client.aclose()
        await asyncio.to_thread(server.stop)


# A batched script: appends ARGV[1] to KEYS[1] and returns it, the list's length and a field that is never there
# (Lua's false); 'boom' is a script error.
PUSH = BatchedScript(
    "local function pushed(key, value) return redis.call('RPUSH', key, value) end\n",
    """
if ARGV[1] == 'boom' then return redis.error_reply('boom') end
return {ARGV[1], pushed(KEYS[1], ARGV[1]), redis.call('HGET', KEYS[2], 'missing')}
""",
    width=2,
)


async def test_calls_to_a_batched_script_are_one_command_with_each_reply_its_own(
    redis: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch = ScriptBatch(redis)
    await redis.script_load(PUSH.many.text)
    sizes = count_pipelines(monkeypatch, redis)
    replies = await asyncio.gather(*(batch.run(PUSH, [f"list{i % 2}", "h"], [f"v{i}"]) for i in range(20)))
    assert replies == [[f"v{i}", i // 2 + 1, None] for i in range(20)]  # in call order: strings, false as None
    assert sizes == [1]  # one EVALSHA for the twenty calls
    assert await redis.lrange("list0", 0, -1) == [f"v{i}".encode() for i in range(0, 20, 2)]
    # The same script on its own round trip replies alike, as RESP.
    assert await run_script(redis, PUSH.one, ["list0", "h"], ["w"]) == [b"w", 11, None]


async def test_a_batched_calls_script_error_fails_only_that_call(redis: aioredis.Redis) -> None:
    batch = ScriptBatch(redis)
    await redis.script_flush()  # also: the wrapper is loaded on NOSCRIPT and the calls run once
    replies = await asyncio.gather(
        *(batch.run(PUSH, ["list", "h"], [v]) for v in ("a", "boom", "b")), return_exceptions=True
    )
    assert replies[0] == ["a", 1, None] and replies[2] == ["b", 2, None]
    assert isinstance(replies[1], ResponseError) and "boom" in str(replies[1])
    assert await redis.lrange("list", 0, -1) == [b"a", b"b"]


async def test_a_batch_refused_as_a_whole_is_sent_again_call_by_call(redis: aioredis.Redis, redis_url: str) -> None:
    """A refusal of the joined call (here an ACL that forbids one call's key; on a cluster a slot on the move) comes
    before the script runs: every call is then sent on its own, and gets its own reply or its own error."""
    await redis.execute_command("ACL", "SETUSER", "batch-test", "on", ">batch-pw", "~allowed:*", "+@all")
    limited = aioredis.Redis.from_url(redis_url, username="batch-test", password="batch-pw")
    try:
        batch = ScriptBatch(limited)
        replies = await asyncio.gather(
            batch.run(PUSH, ["allowed:list", "allowed:h"], ["a"]),
            batch.run(PUSH, ["forbidden:list", "allowed:h"], ["x"]),
            batch.run(PUSH, ["allowed:list", "allowed:h"], ["b"]),
            return_exceptions=True,
        )
    finally:
        await limited.aclose()
        await redis.execute_command("ACL", "DELUSER", "batch-test")
    assert replies[0] == [b"a", 1, None] and replies[2] == [b"b", 2, None]  # sent alone: RESP replies
    assert isinstance(replies[1], NoPermissionError)
    assert await redis.lrange("allowed:list", 0, -1) == [b"a", b"b"]  # each written once
    assert not await redis.exists("forbidden:list")


# Holds Redis for about 5 ms (Redis runs one script at a time), then returns ARGV[1].
SLOW = LuaScript("""
local start = redis.call('TIME')
while true do
  local now = redis.call('TIME')
  if (now[1] - start[1]) * 1000000 + (now[2] - start[2]) > 5000 then return ARGV[1] end
end
""")


async def test_a_burst_waits_its_turn_instead_of_timing_out_in_the_connection_pool(redis_url: str) -> None:
    """300 pipelines of 5 ms on a pool of two connections that gives up on a connection after 1 s: sent all at once,
    the later ones would fail waiting for a connection; a few at a time, every call gets its reply."""
    pool = aioredis.BlockingConnectionPool.from_url(redis_url, max_connections=2, timeout=1)
    client = aioredis.Redis(connection_pool=pool)
    try:
        batch = ScriptBatch(client, max_batch=1)
        replies = await asyncio.gather(*(batch.run(SLOW, ["k"], [str(i)]) for i in range(300)))
        assert replies == [str(i).encode() for i in range(300)]
    finally:
        await client.aclose()
        await pool.aclose()  # the client was given the pool, so it leaves the pool's connections open


async def test_a_call_whose_arguments_are_not_text_fails_alone(redis: aioredis.Redis) -> None:
    """A string holding surrogate escapes (bytes that were not UTF-8) cannot be sent: that call fails, and the calls
    joined with it are sent without it."""
    batch = ScriptBatch(redis)
    replies = await asyncio.gather(
        *(batch.run(PUSH, ["list", "h"], [v]) for v in ("a", "b\udcff", "c")), return_exceptions=True
    )
    assert replies[0] == ["a", 1, None] and replies[2] == ["c", 2, None]
    assert isinstance(replies[1], DataError)
    assert await redis.lrange("list", 0, -1) == [b"a", b"c"]
