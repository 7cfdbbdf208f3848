"""The outbox against a real Redis and a real loopback webhook receiver."""

import asyncio
import contextlib
import io
import json
import random
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from structlog.testing import capture_logs

from monitor.core.clock import SystemClock
from monitor.core.errors import DeliveryError
from monitor.core.models import Article, Evidence, Match
from monitor.delivery.outbox import Deliverer, retry_delay
from monitor.delivery.sinks.console import ConsoleSink
from monitor.delivery.sinks.webhook import WebhookSink
from monitor.events.alerts import event_alert
from monitor.events.cluster import new_event
from monitor.events.similarity import minhash
from monitor.storage.deadletters import list_dead, retry_dead
from monitor.storage.keys import Keys
from monitor.storage.outbox import ensure_group
from tests.support.webhook_receiver import HANG, Reply, WebhookReceiver

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
KEYS = Keys("test")
T0 = datetime(2024, 1, 4, 10, 0, tzinfo=UTC)


def make_alert(n: int, severity: int = 4) -> dict[str, Any]:
    """A real ``kind: event`` payload, built as the pipeline builds it."""
    article = Article(
        id=f"a{n}",
        feed="wire-a",
        url=f"https://example.org/news/{n}",
        guid=None,
        title=f"US strikes militia depot near Baghdad ({n})",
        summary="Officials said…",
        content="",
        published=T0,
        fetched=T0,
    )
    evidence = Evidence("us-strike-iraq", "strike", "title", "US strikes", 0, 10)
    match = Match(
        rules=("us-strike-iraq",),
        event_type="us_strike_in_iraq",
        severity=severity,
        score=7.5,
        entities=("baghdad",),
        evidence=(evidence,),
        alert=True,
    )
    event = new_event(f"evt{n}", article, match, salient=frozenset({"baghdad"}), signature=minhash(set()), now=T0)
    return event_alert(event, escalation_level=3)


@pytest.fixture
async def rx() -> AsyncIterator[WebhookReceiver]:
    async with WebhookReceiver(SECRET) as receiver:
        yield receiver


async def enqueue(redis: aioredis.Redis, alert: dict[str, Any]) -> str:
    """What the lead's Lua script does once an article's identity is claimed."""
    entry_id: Any = await redis.xadd(KEYS.outbox, {b"alert": json.dumps(alert), b"id": alert["id"]})
    return str(entry_id.decode())


def deliverer(redis: aioredis.Redis, sink: Any, **options: Any) -> Deliverer:
    settings: dict[str, Any] = {
        "consumer": "c1",
        "clock": SystemClock(),
        "max_attempts": 5,
        "max_retry_delay_s": 0.2,
        "base_delay_s": 0.02,
        "block_ms": 100,
        "shutdown_grace_s": 0.1,
        **options,
    }
    return Deliverer(redis, KEYS, sink, **settings)


def hook(rx: WebhookReceiver, session: aiohttp.ClientSession, name: str = "hook", **options: Any) -> WebhookSink:
    return WebhookSink(name, rx.url, session, secret=rx.secret, **options)


async def pending(redis: aioredis.Redis, group: str) -> int:
    return int((await redis.xpending(KEYS.outbox, group))["pending"])


async def attempts(redis: aioredis.Redis, group: str) -> dict[Any, Any]:
    return dict(await redis.hgetall(KEYS.attempts(group)))


class FlakySink:
    """A sink that fails with ``DeliveryError`` ``failures`` times, then succeeds."""

    def __init__(self, name: str, failures: int = 0, min_severity: int | None = None) -> None:
        self.name = name
        self.failures = failures
        self.min_severity = min_severity
        self.sent: list[str] = []
        self.calls = 0

    async def send(self, alert: dict[str, Any]) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise DeliveryError("flaky")
        self.sent.append(alert["id"])

    async def close(self) -> None:
        pass


# -- the happy path and retries ----------------------------------------------------------------------------


async def test_delivered_then_acknowledged(
    redis: aioredis.Redis, session: aiohttp.ClientSession, rx: WebhookReceiver
) -> None:
    d = deliverer(redis, hook(rx, session))
    await d.ensure_group()
    await enqueue(redis, make_alert(1))
    await enqueue(redis, make_alert(2))
    with capture_logs() as logs:
        assert await d.drain(5) == 2
    assert sorted(a["id"] for a in rx.alerts) == ["evt1.r1", "evt2.r1"]
    assert rx.invalid_signatures == []
    assert await pending(redis, "hook") == 0
    assert await attempts(redis, "hook") == {}
    delivered = [e for e in logs if e["event"] == "alert_delivered"]
    assert {e["alert"] for e in delivered} == {"evt1.r1", "evt2.r1"}
    assert all(e["sink"] == "hook" for e in delivered)
    assert "T0KEN" not in str(logs) and "s3cr3t" not in str(logs)  # the URL's path and query stay secret
    assert await d.drain(1) == 0  # nothing is delivered twice


async def test_503_then_200_is_delivered_once_with_the_same_webhook_id(
    redis: aioredis.Redis, session: aiohttp.ClientSession, rx: WebhookReceiver
) -> None:
    rx.script([503, 503, 200])
    d = deliverer(redis, hook(rx, session))
    await d.ensure_group()
    await enqueue(redis, make_alert(1))
    with capture_logs() as logs:
        assert await d.drain(5) == 1
    assert [r.webhook_id for r in rx.requests] == ["evt1.r1"] * 3
    assert len(rx.alerts) == 1
    assert [e["attempt"] for e in logs if e["event"] == "alert_retry_scheduled"] == [1, 2]
    assert await redis.xlen(KEYS.dead) == 0
    assert await pending(redis, "hook") == 0


async def test_retry_after_is_honoured(
    redis: aioredis.Redis, session: aiohttp.ClientSession, rx: WebhookReceiver
) -> None:
    rx.script([Reply(429, {"Retry-After": "1"}), 200])
    d = deliverer(redis, hook(rx, session), max_retry_delay_s=5)
    await d.ensure_group()
    await enqueue(redis, make_alert(1))
    assert await d.drain(5) == 1
    first, second = rx.requests
    assert second.at - first.at >= 0.95


async def test_retry_after_is_capped(
    redis: aioredis.Redis, session: aiohttp.ClientSession, rx: WebhookReceiver
) -> None:
    rx.script([Reply(503, {"Retry-After": "3600"}), 200])
    d = deliverer(redis, hook(rx, session), max_retry_delay_s=0.3)
    await d.ensure_group()
    await enqueue(redis, make_alert(1))
    assert await d.drain(3) == 1


def test_backoff_is_exponential_with_full_jitter_and_a_cap() -> None:
    class Top(random.Random):
        def uniform(self, a: float, b: float) -> float:
            return b

    top = Top()
    assert [retry_delay(n, base_s=1, cap_s=10, retry_after=None, rng=top) for n in (1, 2, 3, 4, 5)] == [1, 2, 4, 8, 10]
    assert retry_delay(1, base_s=1, cap_s=10, retry_after=7, rng=top) == 7
    assert retry_delay(1, base_s=1, cap_s=10, retry_after=99, rng=top) == 10
    assert retry_delay(1000, base_s=1, cap_s=10, retry_after=None, rng=top) == 10
    rng = random.Random(1)
    delays = [retry_delay(3, base_s=1, cap_s=10, retry_after=None, rng=rng) for _ in range(200)]
    assert 0 <= min(delays) < 0.5 and 3.5 < max(delays) <= 4


# -- dead letters ------------------------------------------------------------------------------------------


async def test_400_is_dead_lettered_with_the_reason(
    redis: aioredis.Redis, session: aiohttp.ClientSession, rx: WebhookReceiver
) -> None:
    rx.script([Reply(400, body="unknown field 'kind'")])
    d = deliverer(redis, hook(rx, session))
    await d.ensure_group()
    await enqueue(redis, make_alert(1))
    with capture_logs() as logs:
        assert await d.drain(5) == 0
    [dead] = await list_dead(redis, KEYS)
    assert dead.sink == "hook" and dead.alert_id == "evt1.r1" and dead.attempts == 1
    assert "HTTP 400" in dead.reason and "unknown field 'kind'" in dead.reason
    assert dead.alert == make_alert(1)
    assert dead.time.endswith("Z")
    assert await pending(redis, "hook") == 0
    assert await attempts(redis, "hook") == {}
    assert [e["alert"] for e in logs if e["event"] == "alert_dead_lettered"] == ["evt1.r1"]
    assert "T0KEN" not in str(logs) and "T0KEN" not in dead.reason


async def test_410_dead_letters_and_disables_the_sink(
    redis: aioredis.Redis, session: aiohttp.ClientSession, rx: WebhookReceiver
) -> None:
    rx.script([410])
    d = deliverer(redis, hook(rx, session), concurrency=1)
    await d.ensure_group()
    for n in (1, 2, 3):
        await enqueue(redis, make_alert(n))
    assert await d.drain(5) == 0
    assert len(rx.requests) == 1  # the 410 stopped all further sends
    dead = await list_dead(redis, KEYS)
    assert len(dead) == 3
    assert all("410" in item.reason for item in dead)
    assert sum("sink disabled" in item.reason for item in dead) == 2
    assert await pending(redis, "hook") == 0


async def test_gives_up_after_max_attempts(redis: aioredis.Redis) -> None:
    sink = FlakySink("flaky", failures=99)
    d = deliverer(redis, sink, max_attempts=3)
    await d.ensure_group()
    await enqueue(redis, make_alert(1))
    assert await d.drain(5) == 0
    assert sink.calls == 3
    [dead] = await list_dead(redis, KEYS)
    assert dead.attempts == 3 and dead.reason == "gave up after 3 attempts: flaky"


async def test_malformed_and_filtered_entries(redis: aioredis.Redis) -> None:
    sink = FlakySink("picky", min_severity=4)
    d = deliverer(redis, sink)
    await d.ensure_group()
    await redis.xadd(KEYS.outbox, {b"alert": b"not json", b"id": b"x.r1"})
    await enqueue(redis, make_alert(2, severity=3))
    await enqueue(redis, make_alert(3, severity=5))
    assert await d.drain(5) == 1
    assert sink.sent == ["evt3.r1"]
    [dead] = await list_dead(redis, KEYS)
    assert dead.alert_id == "x.r1" and "malformed" in dead.reason
    assert await pending(redis, "picky") == 0


# -- crashes, restarts and other consumers -----------------------------------------------------------------


async def crash_mid_send(redis: aioredis.Redis, session: aiohttp.ClientSession, rx: WebhookReceiver) -> None:
    """Run a deliverer until the receiver has the POST, then kill it before it can acknowledge."""
    rx.script([HANG])
    d = deliverer(redis, hook(rx, session))
    await d.ensure_group()
    await enqueue(redis, make_alert(1))
    task = asyncio.create_task(d.run(asyncio.Event()))
    await rx.wait_for_requests(1)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert await pending(redis, "hook") == 1
    assert await attempts(redis, "hook") != {}


async def test_restart_redelivers_own_pending_entry_with_the_same_id(
    redis: aioredis.Redis, session: aiohttp.ClientSession, rx: WebhookReceiver
) -> None:
    await crash_mid_send(redis, session, rx)
    restarted = deliverer(redis, hook(rx, session))  # same consumer name: a restart
    assert await restarted.drain(5) == 1
    assert [r.webhook_id for r in rx.requests] == ["evt1.r1", "evt1.r1"]
    assert await pending(redis, "hook") == 0
    assert await attempts(redis, "hook") == {}


async def test_another_consumer_claims_an_abandoned_entry_once_idle(
    redis: aioredis.Redis, session: aiohttp.ClientSession, rx: WebhookReceiver
) -> None:
    await crash_mid_send(redis, session, rx)
    other = deliverer(redis, hook(rx, session), consumer="c2", claim_idle_s=0.5)
    assert await other.drain(0.2) == 0  # not idle long enough: its owner may still be alive
    await asyncio.sleep(0.5)
    assert await other.drain(5) == 1
    assert [r.webhook_id for r in rx.requests] == ["evt1.r1", "evt1.r1"]
    assert await pending(redis, "hook") == 0


async def test_attempts_survive_a_restart(
    redis: aioredis.Redis, session: aiohttp.ClientSession, rx: WebhookReceiver
) -> None:
    # Retry-After pushes each retry beyond the drain, so only the restart tries again.
    rx.script([Reply(503, {"Retry-After": "30"})] * 2)
    first = deliverer(redis, hook(rx, session), max_attempts=2, max_retry_delay_s=60)
    await first.ensure_group()
    entry_id = await enqueue(redis, make_alert(1))
    assert await first.drain(0.5) == 0
    assert await attempts(redis, "hook") == {entry_id.encode(): b"1"}
    second = deliverer(redis, hook(rx, session), max_attempts=2, max_retry_delay_s=60)
    assert await second.drain(0.5) == 0
    [dead] = await list_dead(redis, KEYS)
    assert dead.attempts == 2 and dead.reason.startswith("gave up after 2 attempts: HTTP 503")
    assert len(rx.requests) == 2 and await attempts(redis, "hook") == {}


# -- several sinks, memory, Redis failures -----------------------------------------------------------------


async def test_a_hanging_sink_does_not_delay_another(redis: aioredis.Redis, session: aiohttp.ClientSession) -> None:
    async with WebhookReceiver(SECRET, default=HANG) as slow_rx, WebhookReceiver(SECRET) as fast_rx:
        slow = deliverer(redis, hook(slow_rx, session, "slow", timeout_s=10))
        fast = deliverer(redis, hook(fast_rx, session, "fast"))
        await slow.ensure_group()
        await fast.ensure_group()
        stop = asyncio.Event()
        tasks = [asyncio.create_task(d.run(stop)) for d in (slow, fast)]
        started = time.monotonic()
        for n in range(6):
            await enqueue(redis, make_alert(n))
        await fast_rx.wait_for(6, timeout_s=3)
        assert time.monotonic() - started < 1.5
        await slow_rx.wait_for_requests(4)
        await asyncio.sleep(0.2)
        assert slow_rx.alerts == [] and len(slow_rx.requests) == 4  # its concurrency, all hanging
        stop.set()
        await asyncio.gather(*tasks)
    assert await pending(redis, "fast") == 0
    assert await pending(redis, "slow") == 6  # kept for later, nothing lost


async def test_memory_is_bounded_while_a_sink_is_down(redis: aioredis.Redis) -> None:
    sink = FlakySink("down", failures=10_000)
    d = deliverer(redis, sink, max_held=5, concurrency=2, max_attempts=1000, max_retry_delay_s=0.05)
    await d.ensure_group()
    for n in range(30):
        await enqueue(redis, make_alert(n))
    stop = asyncio.Event()
    task = asyncio.create_task(d.run(stop))
    await asyncio.sleep(0.5)
    stop.set()
    await task
    assert sink.calls > 10  # it kept retrying...
    assert await pending(redis, "down") == 5  # ...but never read more than it may hold
    assert len({key for key in await attempts(redis, "down")}) == 5


class FailingReads:
    """A Redis client whose next ``failures`` stream reads fail as if Redis were restarting."""

    def __init__(self, redis: aioredis.Redis, failures: int) -> None:
        self._redis = redis
        self.failures = failures

    def __getattr__(self, name: str) -> Any:
        return getattr(self._redis, name)

    async def xreadgroup(self, *args: Any, **kwargs: Any) -> Any:
        if self.failures > 0:
            self.failures -= 1
            raise RedisConnectionError("Connection refused")
        return await self._redis.xreadgroup(*args, **kwargs)


async def test_redis_errors_do_not_stop_the_loop(redis: aioredis.Redis) -> None:
    sink = FlakySink("sink")
    flaky_redis: Any = FailingReads(redis, failures=2)
    d = deliverer(flaky_redis, sink)
    await d.ensure_group()
    await enqueue(redis, make_alert(1))
    stop = asyncio.Event()
    with capture_logs() as logs:
        task = asyncio.create_task(d.run(stop))
        for _ in range(300):
            if sink.sent:
                break
            await asyncio.sleep(0.01)
        stop.set()
        await task
    assert sink.sent == ["evt1.r1"]
    assert [e["event"] for e in logs].count("outbox_redis_error") == 2


# -- consumer groups and the dead-letter queue -------------------------------------------------------------


async def test_group_start_brand_new_stream_and_late_sink(redis: aioredis.Redis) -> None:
    early = FlakySink("early")
    await enqueue(redis, make_alert(1))  # enqueued before any group exists: still to be delivered
    assert await ensure_group(redis, KEYS, "early") == "0"
    assert await ensure_group(redis, KEYS, "early") is None
    assert await deliverer(redis, early).drain(2) == 1
    late = FlakySink("late")
    assert await ensure_group(redis, KEYS, "late") == "$"  # added later: no history
    await enqueue(redis, make_alert(2))
    assert await deliverer(redis, late).drain(2) == 1
    assert late.sent == ["evt2.r1"]
    assert await ensure_group(redis, Keys("fresh"), "a") == "0"


async def test_dead_letter_retry_goes_only_to_the_failed_sink(
    redis: aioredis.Redis, session: aiohttp.ClientSession, rx: WebhookReceiver
) -> None:
    out = io.StringIO()
    console = deliverer(redis, ConsoleSink("console", out))
    webhook = deliverer(redis, hook(rx, session))
    for d in (console, webhook):
        await d.ensure_group()
    rx.script([Reply(400, body="rejected")])
    await enqueue(redis, make_alert(1))
    await enqueue(redis, make_alert(2))
    assert await console.drain(2) == 2
    assert await webhook.drain(2) == 1
    [dead] = await list_dead(redis, KEYS)
    failed_id = rx.requests[0].webhook_id
    assert dead.alert_id == failed_id

    assert [d.alert_id for d in await retry_dead(redis, KEYS, [dead.dead_id, "0-1"])] == [failed_id]
    assert await list_dead(redis, KEYS) == []
    printed = out.getvalue()
    assert await console.drain(2) == 0  # the retry is not meant for the console
    assert out.getvalue() == printed
    assert await webhook.drain(2) == 1
    assert rx.requests[-1].webhook_id == failed_id
    assert sorted(a["id"] for a in rx.alerts) == ["evt1.r1", "evt2.r1"]
    assert await pending(redis, "console") == 0 and await pending(redis, "hook") == 0


async def test_retry_all_dead(redis: aioredis.Redis) -> None:
    sink = FlakySink("s", failures=2)
    d = deliverer(redis, sink, max_attempts=1)
    await d.ensure_group()
    await enqueue(redis, make_alert(1))
    await enqueue(redis, make_alert(2))
    assert await d.drain(2) == 0
    assert len(await list_dead(redis, KEYS)) == 2
    assert len(await retry_dead(redis, KEYS, "all")) == 2
    assert await d.drain(2) == 2
    assert sorted(sink.sent) == ["evt1.r1", "evt2.r1"]
