"""Apprise through the outbox: a loopback ``json://`` endpoint gets every alert, retried by the outbox (Apprise's own
retries off) while it fails or hangs, nothing lost; redirects refused; non-public hosts refused by the guard."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
from structlog.testing import capture_logs

from monitor.config import Config
from monitor.core.errors import ConfigError
from monitor.delivery.sinks.apprise_sink import AppriseSetupError, AppriseSink, check_host
from monitor.delivery.sinks.factory import build_sinks
from tests.support.alerts import event_alert
from tests.support.webhook_receiver import HANG, SECRET_PATH, Reply, WebhookReceiver
from tests.test_chat_discord import KEYS, deliver


@pytest.fixture
async def rx() -> AsyncIterator[WebhookReceiver]:
    async with WebhookReceiver(None) as receiver:
        yield receiver


def json_url(rx: WebhookReceiver) -> str:
    return "json://" + rx.url.split("://", 1)[1].split(SECRET_PATH, 1)[0] + SECRET_PATH


def sink(rx: WebhookReceiver, **options: Any) -> AppriseSink:
    return AppriseSink("apprise", [json_url(rx)], allow_private_networks=True, **options)


async def test_every_alert_arrives_once_through_a_flaky_endpoint(redis: aioredis.Redis, rx: WebhookReceiver) -> None:
    rx.script([500, 503, 200, 500, 200])
    alerts = [event_alert(n) for n in range(1, 4)]
    assert await deliver(redis, sink(rx), *alerts, concurrency=1, max_held=1) == 3
    assert len(rx.requests) == 6  # three alerts and three failures, each one request: Apprise did not retry on its own
    got = sorted(r.alert["title"] for r in rx.requests if r.reply and r.reply.status == 200)
    assert got == sorted(f"Severity 4/5 (high) · US strikes militia depot near Baghdad ({n})" for n in range(1, 4))
    assert "Strike near Baghdad (1)" in rx.requests[2].alert["message"]
    assert await redis.xlen(KEYS.dead) == 0


async def test_an_endpoint_that_stays_down_ends_in_a_dead_letter(redis: aioredis.Redis, rx: WebhookReceiver) -> None:
    rx.default = Reply(503)
    with capture_logs() as logs:
        assert await deliver(redis, sink(rx), event_alert(1), max_attempts=3) == 0
    assert len(rx.requests) == 3
    dead: Any = await redis.xrange(KEYS.dead)
    assert len(dead) == 1 and b"apprise target(s) 1 of 1 failed" in dead[0][1][b"reason"]
    assert "s3cr3t" not in repr(logs)


async def test_a_hanging_endpoint_times_out_and_is_retried(redis: aioredis.Redis, rx: WebhookReceiver) -> None:
    rx.script([HANG, 200])
    with capture_logs() as logs:
        assert await deliver(redis, sink(rx, timeout_s=0.5), event_alert(1)) == 1
    [retry] = [e for e in logs if e["event"] == "alert_retry_scheduled"]
    assert "0.5s" in retry["reason"] or "failed" in retry["reason"]


async def test_only_the_targets_that_failed_are_tried_again(redis: aioredis.Redis, rx: WebhookReceiver) -> None:
    async with WebhookReceiver(None) as other:
        other.script([500])
        both = AppriseSink("apprise", [json_url(rx), json_url(other)], allow_private_networks=True)
        assert await deliver(redis, both, event_alert(1)) == 1
    assert len(rx.requests) == 1 and len(other.requests) == 2


async def test_redirects_are_refused(redis: aioredis.Redis, rx: WebhookReceiver) -> None:
    async with WebhookReceiver(None) as elsewhere:
        rx.default = Reply(302, {"Location": elsewhere.url})
        assert await deliver(redis, sink(rx), event_alert(1), max_attempts=2, seconds=4) == 0
        assert elsewhere.requests == []


def test_the_guard_refuses_non_public_hosts_at_start(session: aiohttp.ClientSession) -> None:
    with pytest.raises(AppriseSetupError, match=r"127\.0\.0\.1"):
        AppriseSink("apprise", ["json://127.0.0.1:9/hook"])
    assert check_host("localhost", False) is not None and check_host("localhost", True) is None
    assert check_host("10.1.2.3", False) == "10.1.2.3 resolves to non-public 10.1.2.3"
    config = Config.model_validate(
        {"alerts": {"sinks": [{"type": "apprise", "urls": ["json://10.0.0.8/x", "nonsense://"]}]}}
    )
    with pytest.raises(ConfigError) as caught:
        build_sinks(config.alerts.sinks, session, io.StringIO())
    [problem] = caught.value.problems
    assert "alerts.sinks[0].urls[0]: 10.0.0.8 resolves to non-public" in str(problem)
    with pytest.raises(ConfigError, match=r"urls\[1\]: not an Apprise URL"):
        build_sinks(config.alerts.sinks, session, io.StringIO(), allow_private_networks=True)


async def test_the_guard_checks_again_before_each_send(redis: aioredis.Redis) -> None:
    answers = {"hooks.example.org": ["93.184.216.34"]}  # public when the sink is built...
    target = AppriseSink("apprise", ["json://hooks.example.org/x"], resolver=lambda host: answers[host])
    answers["hooks.example.org"] = ["93.184.216.34", "192.168.1.20"]  # ...then one private address among them
    assert await deliver(redis, target, event_alert(1), seconds=3) == 0
    dead: Any = await redis.xrange(KEYS.dead)
    [(_, letter)] = dead
    assert letter[b"reason"] == b"apprise target 1: hooks.example.org resolves to non-public 192.168.1.20"
    assert letter[b"attempts"] == b"1"  # a refusal, not an outage: no retries
