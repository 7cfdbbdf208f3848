"""Slack, Discord and Teams sinks against a real loopback receiver that fails the way those services do, through
the real outbox on the real Redis: the retry semantics are the generic webhook's, without signatures."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
from structlog.testing import capture_logs

from monitor.core.errors import DeliveryError, PermanentDeliveryError
from monitor.delivery.outbox import Deliverer
from monitor.delivery.sinks.formats import render_payload
from monitor.delivery.sinks.webhook import WebhookSink
from monitor.storage.keys import Keys
from tests.support.alerts import FakeClock, event_alert
from tests.support.webhook_receiver import HANG, Reply, WebhookReceiver

KEYS = Keys("test")
CHAT = ["slack", "discord", "teams"]
DISCORD_429 = Reply(
    429,
    {"Content-Type": "application/json", "Retry-After": "1"},
    '{"message": "You are being rate limited.", "retry_after": 0.4, "global": false}',
)


@pytest.fixture
async def rx() -> AsyncIterator[WebhookReceiver]:
    async with WebhookReceiver(None) as receiver:  # chat services verify no signature
        yield receiver


def deliverer(redis: aioredis.Redis, target: WebhookSink, **options: Any) -> Deliverer:
    settings: dict[str, Any] = {
        "consumer": "c1",
        "clock": FakeClock(datetime(2024, 1, 4, tzinfo=UTC)),
        "max_attempts": 4,
        "max_retry_delay_s": 2.0,
        "base_delay_s": 0.02,
        "block_ms": 50,
        "shutdown_grace_s": 0.1,
        **options,
    }
    return Deliverer(redis, KEYS, target, **settings)


async def run(
    redis: aioredis.Redis, target: WebhookSink, *alerts: dict[str, Any], seconds: float = 5, **options: Any
) -> int:
    d = deliverer(redis, target, **options)
    await d.ensure_group()
    for alert in alerts:
        await redis.xadd(KEYS.outbox, {b"alert": json.dumps(alert), b"id": alert["id"]})
    return await d.drain(seconds)


@pytest.mark.parametrize("fmt", CHAT)
async def test_500_is_retried_then_delivered_once(
    fmt: str, redis: aioredis.Redis, session: aiohttp.ClientSession, rx: WebhookReceiver
) -> None:
    rx.script([500, 503, 200])
    assert await run(redis, WebhookSink(fmt, rx.url, session, fmt=fmt), event_alert(1)) == 1
    assert len(rx.requests) == 3 and len({r.body for r in rx.requests}) == 1  # the same message each time
    assert json.loads(rx.requests[0].body) == render_payload(fmt, event_alert(1))
    assert await redis.xlen(KEYS.dead) == 0


async def test_slack_429_waits_for_retry_after(
    redis: aioredis.Redis, session: aiohttp.ClientSession, rx: WebhookReceiver
) -> None:
    rx.script([Reply(429, {"Retry-After": "1"}, "rate_limited"), 200])
    assert await run(redis, WebhookSink("slack", rx.url, session, fmt="slack"), event_alert(1)) == 1
    first, second = rx.requests
    assert second.at - first.at >= 0.95


async def test_discord_429_waits_for_the_json_retry_after(
    redis: aioredis.Redis, session: aiohttp.ClientSession, rx: WebhookReceiver
) -> None:
    rx.script([DISCORD_429])
    with pytest.raises(DeliveryError) as caught:
        await WebhookSink("discord", rx.url, session, fmt="discord").send(event_alert(1))
    # The body's 0.4 s, more precise than the header's whole second.
    assert caught.value.retry_after == pytest.approx(0.4) and not isinstance(caught.value, PermanentDeliveryError)
    rx.script([DISCORD_429, 204])
    assert await run(redis, WebhookSink("discord", rx.url, session, fmt="discord"), event_alert(2)) == 1
    second, third = rx.requests[1:]
    assert 0.38 <= third.at - second.at < 0.95


@pytest.mark.parametrize("fmt", CHAT)
async def test_410_dead_letters_and_disables_the_sink(
    fmt: str, redis: aioredis.Redis, session: aiohttp.ClientSession, rx: WebhookReceiver
) -> None:
    rx.script([Reply(410, body="channel_is_archived")])
    with capture_logs() as logs:
        target = WebhookSink(fmt, rx.url, session, fmt=fmt)
        await run(redis, target, event_alert(1), event_alert(2), seconds=2, concurrency=1, max_held=1)
    assert len(rx.requests) == 1  # the second alert is not even tried
    dead: Any = await redis.xrange(KEYS.dead)
    assert sorted(d[b"id"] for _, d in dead) == [b"evt1.r1", b"evt2.r1"]
    assert any(e["event"] == "sink_disabled" for e in logs)
    assert all(b"T0KEN" not in d[b"reason"] for _, d in dead)


@pytest.mark.parametrize("fmt", CHAT)
async def test_a_hanging_receiver_times_out_and_is_retried(
    fmt: str, redis: aioredis.Redis, session: aiohttp.ClientSession, rx: WebhookReceiver
) -> None:
    rx.script([HANG, 200])
    target = WebhookSink(fmt, rx.url, session, fmt=fmt, timeout_s=0.3)
    with capture_logs() as logs:
        assert await run(redis, target, event_alert(1)) == 1
    assert len(rx.requests) == 2
    [retry] = [e for e in logs if e["event"] == "alert_retry_scheduled"]
    assert "Timeout" in retry["reason"]


@pytest.mark.parametrize("fmt", CHAT)
async def test_400_is_a_dead_letter_with_the_services_complaint(
    fmt: str, redis: aioredis.Redis, session: aiohttp.ClientSession, rx: WebhookReceiver
) -> None:
    rx.script([Reply(400, body="invalid_payload")])
    await run(redis, WebhookSink(fmt, rx.url, session, fmt=fmt), event_alert(1), seconds=2)
    entries: Any = await redis.xrange(KEYS.dead)
    [(_, dead)] = entries
    assert dead[b"reason"].decode().endswith("HTTP 400 from " + rx.url.split("/hooks")[0] + ": invalid_payload")
