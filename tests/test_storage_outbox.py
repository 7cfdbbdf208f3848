"""``monitor.storage.outbox``: one sink's consumer group on the outbox stream, against the real Redis; and every
Redis failure raised as a ``StoreError``."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError

from monitor.core.errors import StoreError, StoreUnavailableError
from monitor.storage.connection import ping
from monitor.storage.deadletters import list_dead
from monitor.storage.keys import Keys
from monitor.storage.outbox import (
    OutboxCounts,
    OutboxGroup,
    OutboxGroupMissingError,
    ensure_group,
    outbox_counts,
    trim_delivered,
)

KEYS = Keys("test")


async def enqueue(redis: aioredis.Redis, alert_id: str, **extra: str) -> str:
    entry_id: Any = await redis.xadd(KEYS.outbox, {"alert": json.dumps({"id": alert_id}), "id": alert_id, **extra})
    return str(entry_id.decode())


async def pending_ids(redis: aioredis.Redis, group: str, consumer: str | None = None) -> list[str]:
    rows: Any = await redis.xpending_range(KEYS.outbox, group, "-", "+", 100, consumername=consumer)
    return [row["message_id"].decode() for row in rows]


# -- groups and reading ------------------------------------------------------------------------------------


async def test_ensure_group_starts_new_streams_at_their_beginning_and_late_groups_at_the_end(
    redis: aioredis.Redis,
) -> None:
    first = await enqueue(redis, "a1")
    assert await ensure_group(redis, KEYS, "early") == "0"
    assert await OutboxGroup(redis, KEYS, "early", "c1").ensure() == {}  # exists already
    assert [e.entry_id for e in await OutboxGroup(redis, KEYS, "early", "c1").read(">", 10)] == [first]
    assert await ensure_group(redis, KEYS, "late") == "$"
    assert await OutboxGroup(redis, KEYS, "late", "c1").read(">", 10) == []


async def test_read_new_then_own_pending_entries(redis: aioredis.Redis) -> None:
    group = OutboxGroup(redis, KEYS, "hook", "c1")
    await group.ensure()
    one, two = await enqueue(redis, "a1"), await enqueue(redis, "a2", only_sink="other")
    new = await group.read(">", 10, block_ms=10)
    assert [(e.entry_id, e.alert_id, json.loads(e.alert), e.only_sink, e.missing) for e in new] == [
        (one, "a1", {"id": "a1"}, None, False),
        (two, "a2", {"id": "a2"}, "other", False),
    ]
    assert await group.read(">", 10, block_ms=10) == []  # nothing new
    assert [e.entry_id for e in await group.read("0", 10)] == [one, two]  # still pending: ours to deliver
    assert [e.entry_id for e in await group.read(one, 10)] == [two]  # paging through the pending list
    assert [e.entry_id for e in await group.read("0", 1)] == [one]


async def test_an_entry_deleted_while_pending_reads_as_missing(redis: aioredis.Redis) -> None:
    group = OutboxGroup(redis, KEYS, "hook", "c1")
    await group.ensure()
    entry_id = await enqueue(redis, "a1")
    await group.read(">", 10)
    await redis.xdel(KEYS.outbox, entry_id)
    [entry] = await group.read("0", 10)
    assert entry.entry_id == entry_id and entry.missing and entry.alert_id == "?" and entry.alert == b""


async def test_enqueue_time_comes_from_the_entry_id(redis: aioredis.Redis) -> None:
    group = OutboxGroup(redis, KEYS, "hook", "c1")
    await group.ensure()
    before = time.time()
    await enqueue(redis, "a1")
    [entry] = await group.read(">", 1)
    assert entry.enqueued_s is not None and before - 1 <= entry.enqueued_s <= time.time() + 1


# -- taking over and keeping entries -----------------------------------------------------------------------


async def test_claim_idle_takes_over_a_vanished_consumers_entries(redis: aioredis.Redis) -> None:
    gone, here = OutboxGroup(redis, KEYS, "hook", "gone"), OutboxGroup(redis, KEYS, "hook", "here")
    await gone.ensure()
    ids = [await enqueue(redis, f"a{i}") for i in range(3)]
    await gone.read(">", 10)
    assert (await here.claim_idle(60_000, "0-0", 10)).entries == []  # not idle long enough yet
    claimed = await here.claim_idle(0, "0-0", 2)
    assert [e.entry_id for e in claimed.entries] == ids[:2] and not claimed.vanished
    rest = await here.claim_idle(0, claimed.cursor, 2)
    assert [e.entry_id for e in rest.entries] == ids[2:] and rest.cursor == "0-0"  # the sweep went round
    assert await pending_ids(redis, "hook", "here") == ids and await pending_ids(redis, "hook", "gone") == []


async def test_claim_idle_of_entries_deleted_meanwhile(redis: aioredis.Redis) -> None:
    gone, here = OutboxGroup(redis, KEYS, "hook", "gone"), OutboxGroup(redis, KEYS, "hook", "here")
    await gone.ensure()
    kept, deleted = await enqueue(redis, "a1"), await enqueue(redis, "a2")
    await gone.read(">", 10)
    await redis.xdel(KEYS.outbox, deleted)
    claimed = await here.claim_idle(0, "0-0", 10)
    assert [e.entry_id for e in claimed.entries] == [kept]
    if claimed.vanished:  # Redis 6.2: claimed without being named; a re-read of our pending list finds it
        assert [(e.entry_id, e.missing) for e in await here.read("0", 10)] == [(kept, False), (deleted, True)]
    else:  # Redis 7 drops deleted entries from the pending list as it claims
        assert await pending_ids(redis, "hook") == [kept]


async def test_keep_reclaims_what_is_still_pending_here(redis: aioredis.Redis) -> None:
    mine, other = OutboxGroup(redis, KEYS, "hook", "mine"), OutboxGroup(redis, KEYS, "hook", "other")
    await mine.ensure()
    one, two = await enqueue(redis, "a1"), await enqueue(redis, "a2")
    await mine.read(">", 10)
    await other.ack(two)  # another replica finished it
    await asyncio.sleep(0.3)
    assert await mine.keep([one, two]) == {one}
    assert await mine.keep([]) == set()
    assert (await other.claim_idle(200, "0-0", 10)).entries == []  # kept: it does not look idle
    await asyncio.sleep(0.3)
    assert [e.entry_id for e in (await other.claim_idle(200, "0-0", 10)).entries] == [one]


# -- attempts and settling ---------------------------------------------------------------------------------


async def test_attempts_count_per_sink_and_ack_clears_them(redis: aioredis.Redis) -> None:
    hook, mail = OutboxGroup(redis, KEYS, "hook", "c1"), OutboxGroup(redis, KEYS, "mail", "c1")
    for group in (hook, mail):
        await group.ensure()
    entry_id = await enqueue(redis, "a1")
    await hook.read(">", 10)
    assert [await hook.count_attempt(entry_id) for _ in range(3)] == [1, 2, 3]
    assert await mail.count_attempt(entry_id) == 1
    await hook.ack(entry_id)
    assert await pending_ids(redis, "hook") == []
    assert await redis.hgetall(KEYS.attempts("hook")) == {}
    assert await redis.hgetall(KEYS.attempts("mail")) == {entry_id.encode(): b"1"}


async def test_dead_letter_records_and_acknowledges_together(redis: aioredis.Redis) -> None:
    group = OutboxGroup(redis, KEYS, "hook", "c1")
    await group.ensure()
    entry_id = await enqueue(redis, "a1")
    [entry] = await group.read(">", 10)
    await group.count_attempt(entry_id)
    await group.dead_letter(entry, reason="HTTP 400", attempts=1, time="2024-01-04T10:00:00Z")
    [dead] = await list_dead(redis, KEYS)
    assert (dead.sink, dead.alert_id, dead.reason, dead.attempts, dead.time, dead.alert) == (
        "hook",
        "a1",
        "HTTP 400",
        1,
        "2024-01-04T10:00:00Z",
        {"id": "a1"},
    )
    raw: Any = await redis.xrange(KEYS.dead)
    assert raw[0][1][b"entry"] == entry_id.encode()
    assert await pending_ids(redis, "hook") == [] and await redis.hgetall(KEYS.attempts("hook")) == {}


# -- trimming and counts -----------------------------------------------------------------------------------


async def test_trim_keeps_everything_a_group_still_needs(redis: aioredis.Redis) -> None:
    keys = Keys()
    for group in ("fast", "slow"):
        await redis.xgroup_create(keys.outbox, group, id="0", mkstream=True)
    ids = [await redis.xadd(keys.outbox, {"id": f"a{i}", "alert": "{}"}) for i in range(5)]
    fast = await redis.xreadgroup("fast", "c", {keys.outbox: ">"})
    await redis.xack(keys.outbox, "fast", *[entry_id for entry_id, _ in fast[0][1]])
    await redis.xreadgroup("slow", "c", {keys.outbox: ">"}, count=2)  # read two, acknowledged none
    assert await trim_delivered(redis, keys) == 0  # the slow group still holds the first entry
    await redis.xack(keys.outbox, "slow", ids[0], ids[1])
    assert await trim_delivered(redis, keys) == 1  # entries before the slow group's last-delivered go (ids[0])
    remaining = [entry_id for entry_id, _ in await redis.xrange(keys.outbox)]
    assert remaining == ids[1:]
    assert await trim_delivered(redis, Keys("empty")) == 0  # no stream yet


async def test_outbox_counts(redis: aioredis.Redis) -> None:
    assert await outbox_counts(redis, KEYS) == OutboxCounts(0, [], 0)
    group = OutboxGroup(redis, KEYS, "hook", "c1")
    await group.ensure()
    await enqueue(redis, "a1")
    [entry] = await group.read(">", 10)
    await enqueue(redis, "a2")
    counts = await outbox_counts(redis, KEYS)
    assert (counts.entries, counts.pending, counts.dead) == (2, [("hook", 1)], 0)
    await group.dead_letter(entry, reason="gone", attempts=1, time="t")
    assert (await outbox_counts(redis, KEYS)).dead == 1


# -- every failure is a StoreError -------------------------------------------------------------------------


async def test_a_missing_group_is_reported_as_such(redis: aioredis.Redis) -> None:
    group = OutboxGroup(redis, KEYS, "hook", "c1")
    with pytest.raises(OutboxGroupMissingError):
        await group.read(">", 10)
    await group.ensure()
    await redis.delete(KEYS.outbox)  # Redis lost its data, or someone deleted the stream
    with pytest.raises(OutboxGroupMissingError):
        await group.read("0", 10)
    assert await group.ensure() == {"hook": "0"}
    assert await group.read("0", 10) == []


async def test_an_error_redis_answers_is_a_store_error(redis: aioredis.Redis) -> None:
    await redis.set(KEYS.outbox, "not a stream")
    with pytest.raises(StoreError, match="WRONGTYPE") as caught:
        await trim_delivered(redis, KEYS)
    assert not isinstance(caught.value, StoreUnavailableError)
    with pytest.raises(StoreError, match="WRONGTYPE"):
        await outbox_counts(redis, KEYS)


async def test_an_unreachable_redis_is_store_unavailable(unreachable: aioredis.Redis) -> None:
    group = OutboxGroup(unreachable, KEYS, "hook", "c1")
    calls: list[Callable[[], Awaitable[object]]] = [
        group.ensure,
        lambda: group.read(">", 10),
        lambda: group.claim_idle(0, "0-0", 10),
        lambda: group.keep(["1-0"]),
        lambda: group.count_attempt("1-0"),
        lambda: group.ack("1-0"),
        lambda: trim_delivered(unreachable, KEYS),
        lambda: outbox_counts(unreachable, KEYS),
        lambda: ping(unreachable),
    ]
    for call in calls:
        with pytest.raises(StoreUnavailableError) as caught:
            await call()
        assert isinstance(caught.value.__cause__, RedisConnectionError), caught.value


async def test_ping(redis: aioredis.Redis) -> None:
    await ping(redis)
