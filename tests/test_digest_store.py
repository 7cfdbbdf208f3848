"""The digests' Redis (``monitor.storage.digests``) on the real Redis: reading a window of the alert log page by
page, the once-per-window claim (take, finish, release, only while it is the taker's), and ``StoreError`` when
Redis cannot be reached, which the digest sender turns into a retry."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from structlog.testing import capture_logs

from monitor.config import DigestConfig, RedisConfig
from monitor.core.errors import StoreError
from monitor.digests.build import LogEntry
from monitor.digests.send import DigestSender
from monitor.service.cron import fires
from monitor.storage.connection import connect
from monitor.storage.digests import Claim, DigestStore
from monitor.storage.keys import Keys
from tests.support.alerts import T0, FakeClock, event_alert, log_alert

KEYS = Keys("digest-store")
DAILY = DigestConfig(name="daily", cron="0 7 * * *", to=["desk@example.org"])


def ms(hours: float) -> int:
    return int((T0 + timedelta(hours=hours)).timestamp() * 1000)


async def test_read_log_pages_through_a_window_and_finds_the_entry_before(redis: aioredis.Redis) -> None:
    for n in range(7):
        await log_alert(redis, KEYS, event_alert(n), T0 + timedelta(hours=n))
        if n == 3:  # an entry that is not an alert, a millisecond later
            await redis.xadd(KEYS.alert_log, {"id": "x", "alert": "[not an object]"}, id=f"{ms(3) + 1}-0")
    store = DigestStore(redis, KEYS)

    got = await store.read_log(ms(1), ms(5) - 1, LogEntry.from_stream, enough=100, page=2)
    assert [e.alert["id"] for e in got.entries] == [event_alert(n)["id"] for n in (1, 2, 3, 4)]  # the bad one skipped
    assert got.before is not None and got.before.alert["id"] == event_alert(0)["id"] and not got.truncated

    enough = await store.read_log(ms(0), ms(9), LogEntry.from_stream, enough=3, page=2)
    assert len(enough.entries) == 4 and enough.truncated  # stopped after the page that reached three
    assert enough.before is None

    raw = await store.read_log(ms(0), ms(9), lambda entry_id, fields: entry_id, enough=100)
    assert len(raw.entries) == 8 and raw.entries[4] == f"{ms(3) + 1}-0".encode()


async def test_a_claim_is_taken_once_and_finished_or_released_only_by_its_taker(redis: aioredis.Redis) -> None:
    store = DigestStore(redis, KEYS)
    first = await store.claim("daily", "2024-01-04T07:00:00Z", ttl_s=60)
    assert first is not None and first.key == KEYS.digest_sent("daily", "2024-01-04T07:00:00Z")
    assert first.token.startswith("sending ") and await redis.get(first.key) == first.token.encode()
    assert await store.claim("daily", "2024-01-04T07:00:00Z", ttl_s=60) is None

    impostor = Claim(first.key, "sending someone-else")
    await store.release(impostor)
    assert not await store.finish(impostor, "sent now", timedelta(days=1))
    assert await redis.get(first.key) == first.token.encode()  # neither touched the claim

    assert await store.finish(first, "sent 2024-01-05T07:00:10Z", timedelta(days=2))
    assert await redis.get(first.key) == b"sent 2024-01-05T07:00:10Z"
    assert timedelta(days=1) < timedelta(milliseconds=await redis.pttl(first.key)) <= timedelta(days=2)

    second = await store.claim("weekly", "w", ttl_s=60)
    assert second is not None
    await store.release(second)
    assert await redis.exists(second.key) == 0
    assert await store.finish(second, "sent late", timedelta(hours=1))  # lapsed and not taken since: recorded


async def test_a_claim_that_lapsed_and_was_taken_is_not_overwritten(redis: aioredis.Redis) -> None:
    store = DigestStore(redis, KEYS)
    slow = await store.claim("daily", "w", ttl_s=0.05)
    await asyncio.sleep(0.1)
    fast = await store.claim("daily", "w", ttl_s=60)
    assert slow is not None and fast is not None
    assert not await store.finish(slow, "sent slow", timedelta(hours=1))
    await store.release(slow)
    assert await redis.get(fast.key) == fast.token.encode()


async def test_the_first_schedule_is_recorded_once_and_kept(redis: aioredis.Redis) -> None:
    store = DigestStore(redis, KEYS)
    assert await store.scheduled_since("daily", "2024-01-05T07:01:00Z") == "2024-01-05T07:01:00Z"
    assert await store.scheduled_since("daily", "2024-02-01T00:00:00Z") == "2024-01-05T07:01:00Z"  # the first stays
    assert await redis.pttl(KEYS.digest_since("daily")) == -1  # no expiry: a long outage must not make it fresh
    # Without a record, a claim of the window named in ``earlier`` counts as having been scheduled since it closed.
    earlier = ("2024-01-03T07:00:00Z", "2024-01-04T07:00:00Z")
    assert await store.scheduled_since("weekly", "2024-01-05T08:00:00Z", earlier=earlier) == "2024-01-05T08:00:00Z"
    assert await store.claim("monthly", earlier[0], ttl_s=60) is not None
    assert await store.scheduled_since("monthly", "2024-01-05T08:00:00Z", earlier=earlier) == earlier[1]


@pytest.fixture
async def unreachable(tmp_path: Path) -> AsyncIterator[aioredis.Redis]:
    """A real client whose server is not there: every command fails with a connection error."""
    client = connect(f"unix://{tmp_path / 'no-redis.sock'}", RedisConfig(socket_timeout_s=1, connect_timeout_s=1))
    try:
        yield client
    finally:
        await client.aclose()


async def test_redis_errors_are_store_errors(unreachable: aioredis.Redis) -> None:
    store = DigestStore(unreachable, KEYS)
    with pytest.raises(StoreError, match=r"^Redis failed reading the alert log: "):
        await store.read_log(0, 1, LogEntry.from_stream, enough=1)
    claim = Claim(KEYS.digest_sent("daily", "w"), "sending me")
    attempts: list[Callable[[], Awaitable[object]]] = [
        lambda: store.claim("daily", "w", 1.0),
        lambda: store.finish(claim, "sent", timedelta(hours=1)),
        lambda: store.release(claim),
        lambda: store.scheduled_since("daily", "2024-01-05T07:01:00Z"),
    ]
    for attempt in attempts:
        with pytest.raises(StoreError, match=r"^Redis failed: "):
            await attempt()


class UnusedMailer:
    max_send_s = 1.0

    async def send(self, message: Any, recipients: Any) -> Any:
        raise AssertionError("nothing may be sent without a claim")


async def test_the_sender_retries_when_redis_cannot_be_reached(unreachable: aioredis.Redis) -> None:
    clock = FakeClock(T0 + timedelta(days=1, minutes=1))
    sender = DigestSender(
        DigestStore(unreachable, KEYS), UnusedMailer(), sender="m@example.org", clock=clock, fires=fires
    )
    with capture_logs() as logs:
        outcome = await sender.send_scheduled(DAILY)
    assert outcome.status == "retry" and outcome.reason.startswith("Redis failed: ")
    assert [entry["event"] for entry in logs] == ["digest_claim_failed"]
    with pytest.raises(StoreError, match=r"^Redis failed: "):
        await sender.send_now(DAILY)
