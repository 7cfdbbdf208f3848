"""The storage boundary: redis' exceptions never leave ``monitor.storage``; they arrive as ``StoreError``, and as
``StoreUnavailableError`` when Redis could not be reached or did not answer in time (real clients, no mocks)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from monitor.config import RedisConfig
from monitor.core.errors import StoreError, StoreUnavailableError
from monitor.storage.backlog import read_backlog
from monitor.storage.connection import close, connect, ping, store_error, store_errors
from monitor.storage.deadletters import list_dead, retry_dead
from monitor.storage.keys import Keys
from monitor.storage.leases import FeedLeases

KEYS = Keys("test")


def test_store_error_tells_unreachable_from_refused() -> None:
    for exc in (RedisConnectionError("refused"), RedisTimeoutError("slow"), ConnectionResetError("reset")):
        assert type(store_error(exc, "reading")) is StoreUnavailableError
    answered = store_error(ResponseError("WRONGTYPE Operation against a key"), "reading the outbox")
    assert type(answered) is StoreError
    assert str(answered) == "Redis failed reading the outbox: ResponseError: WRONGTYPE Operation against a key"
    assert str(store_error(RedisConnectionError("refused"))) == "Redis failed: ConnectionError: refused"


def test_store_errors_raises_from_the_original() -> None:
    original = RedisConnectionError("refused")
    with pytest.raises(StoreUnavailableError) as caught, store_errors("doing it"):
        raise original
    assert caught.value.__cause__ is original
    with pytest.raises(StoreUnavailableError), store_errors():
        raise BrokenPipeError("socket")
    with pytest.raises(BrokenPipeError), store_errors(os_errors=False):  # e.g. the CLI writing its output
        raise BrokenPipeError("stdout")
    with pytest.raises(ValueError), store_errors():  # not a Redis failure: untouched
        raise ValueError("a bug")


async def test_every_storage_call_on_an_unreachable_redis_is_store_unavailable(unreachable: aioredis.Redis) -> None:
    leases = FeedLeases(unreachable, KEYS, "r1/1/ab")
    calls: list[Callable[[], Awaitable[object]]] = [
        lambda: ping(unreachable),
        lambda: leases.acquire("wire", 1000),
        lambda: leases.release("wire"),
        lambda: read_backlog(unreachable, KEYS),
        lambda: list_dead(unreachable, KEYS),
        lambda: retry_dead(unreachable, KEYS, "all"),
    ]
    for call in calls:
        with pytest.raises(StoreUnavailableError) as caught:
            await call()
        assert isinstance(caught.value.__cause__, RedisConnectionError), caught.value
    await close(unreachable)  # closing a client of a Redis that is gone is no error


async def test_an_error_redis_answers_is_a_plain_store_error(redis: aioredis.Redis) -> None:
    await redis.set(KEYS.dead, "not a stream")
    with pytest.raises(StoreError, match="WRONGTYPE") as caught:
        await list_dead(redis, KEYS)
    assert not isinstance(caught.value, StoreUnavailableError)
    with pytest.raises(StoreError, match="Invalid stream ID"):
        await retry_dead(redis, Keys("other"), ["not-an-id"])


async def test_ping_and_close(redis_url: str) -> None:
    client = connect(redis_url, RedisConfig())
    await ping(client)
    await close(client)
