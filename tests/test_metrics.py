"""Metrics and health endpoints: counts from a real poll-and-deliver cycle (loopback feeds, real Redis, a webhook
receiver), the outbox backlog from consumer groups, and /metrics, /healthz and /readyz over real HTTP."""

from __future__ import annotations

import ast
import asyncio
import io
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
from prometheus_client import REGISTRY

from monitor.config import Config, RedisConfig
from monitor.core.clock import SystemClock
from monitor.detection.rulefile import load_rules
from monitor.service.daemon import Daemon
from monitor.service.metrics import Metrics
from monitor.service.root import App, build_app
from monitor.storage.backlog import read_backlog
from monitor.storage.connection import connect
from monitor.storage.keys import Keys
from tests.support.articles import ESCALATION, UNRELATED, rss
from tests.support.feedserver import FeedServer
from tests.support.webhook_receiver import WebhookReceiver

ROOT = Path(__file__).resolve().parents[1]
SECRET = "whsec_" + "bWV0cmljcy10ZXN0LXNlY3JldC0wMTIzNDU2Nzg5"
RULES = load_rules([ROOT / "rules"])
KEYS = Keys()


def config_for(feeds: dict[str, str], hook_url: str) -> Config:
    return Config.model_validate(
        {
            "escalation": {"thresholds": [1000, 2000, 3000, 4000]},
            "fetch": {"allow_private_networks": True, "timeout_s": 5},
            "feeds": [{"name": name, "url": url, "interval_s": 60} for name, url in feeds.items()],
            "alerts": {
                "sinks": [{"type": "webhook", "name": "hook", "url": hook_url, "secret": SECRET}],
                "max_attempts": 2,
                "max_retry_delay_s": 0.1,
            },
            "metrics": {"port": 0},
        }
    )


async def make_app(config: Config, redis: aioredis.Redis, metrics: Metrics) -> App:
    app = await build_app(config, RULES, clock=SystemClock(), redis=redis, stdout=io.StringIO(), observer=metrics)
    await app.start()
    return app


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


async def test_a_cycle_counts_fetches_items_matches_events_and_deliveries(redis: aioredis.Redis) -> None:
    metrics = Metrics(replica="test-replica")
    async with FeedServer() as feeds, WebhookReceiver(SECRET) as rx:
        feeds.set_feed("/wire.xml", rss([*ESCALATION[:3], *UNRELATED]))
        config = config_for({"wire": feeds.url("/wire.xml"), "gone": feeds.url("/missing.xml")}, rx.url)
        app = await make_app(config, redis, metrics)
        try:
            # The first alert fails once (retried), the third is refused for good (dead-lettered).
            rx.script([503, 200, 400])
            await app.cycle()
            await app.deliver_pending(5)
            await app.cycle()  # the same feed again: a 304
        finally:
            await app.close()
    assert sample(metrics, "monitor_feed_fetches_total", feed="wire", outcome="ok") == 1
    assert sample(metrics, "monitor_feed_fetches_total", feed="wire", outcome="not_modified") == 1
    assert sample(metrics, "monitor_feed_fetches_total", feed="gone", outcome="error") == 2
    assert sample(metrics, "monitor_feed_fetch_seconds_count", feed="wire") == 2
    assert sample(metrics, "monitor_items_parsed_total", feed="wire") == 6
    assert sample(metrics, "monitor_events_opened_total", event_type="attack_on_us_forces_in_iraq") == 1
    opened = sum(
        s.value for m in metrics.registry.collect() for s in m.samples if s.name == "monitor_events_opened_total"
    )
    assert opened == 3
    matched = [s for m in metrics.registry.collect() for s in m.samples if s.name == "monitor_rule_matches_total"]
    assert sum(s.value for s in matched) >= 3 and all(s.labels["rule"] for s in matched)
    assert sample(metrics, "monitor_alerts_delivered_total", sink="hook") == 2
    assert sample(metrics, "monitor_alerts_failed_total", sink="hook") == 1
    assert sample(metrics, "monitor_alerts_dead_lettered_total", sink="hook") == 1
    latency_count = sample(metrics, "monitor_detection_latency_seconds_count", sink="hook")
    latency_sum = sample(metrics, "monitor_detection_latency_seconds_sum", sink="hook")
    assert latency_count == 2 and 0 <= latency_sum < 10
    assert sample(metrics, "monitor_replica_info", replica="test-replica") == 1
    # Its own registry: nothing leaks into the library's global one.
    assert REGISTRY.get_sample_value("monitor_alerts_delivered_total", {"sink": "hook"}) is None


def test_no_created_series_beside_counters_and_histograms() -> None:
    """prometheus-client adds a ``*_created`` series to every counter and histogram unless told not to."""
    metrics = Metrics(replica="r1")
    metrics.feed_polled("wire", "ok", 0.2)
    metrics.alert_delivered("hook", 1.5)
    metrics.config_reloaded(True)
    text = metrics.render().decode()
    assert 'monitor_feed_fetches_total{feed="wire",outcome="ok"} 1.0' in text
    assert 'monitor_detection_latency_seconds_count{sink="hook"} 1.0' in text
    assert [line for line in text.splitlines() if "_created" in line] == []


async def test_backlog_counts_pending_and_unread_per_group_with_the_oldest_age(redis: aioredis.Redis) -> None:
    for group in ("fast", "slow"):
        await redis.xgroup_create(KEYS.outbox, group, "0", mkstream=True)
    first = await redis.xadd(KEYS.outbox, {"id": "a1", "alert": "{}"})
    for n in range(2, 5):
        await redis.xadd(KEYS.outbox, {"id": f"a{n}", "alert": "{}"})
    await redis.xreadgroup("fast", "r1", {KEYS.outbox: ">"}, count=4)  # all four read ...
    for entry_id, _ in (await redis.xrange(KEYS.outbox))[:3]:
        await redis.xack(KEYS.outbox, "fast", entry_id)  # ... three acknowledged
    await redis.xreadgroup("slow", "r1", {KEYS.outbox: ">"}, count=1)  # one read, three unread

    backlog = {b.sink: b for b in await read_backlog(redis, KEYS)}
    assert (backlog["fast"].pending, backlog["fast"].unread, backlog["fast"].total) == (1, 0, 1)
    assert (backlog["slow"].pending, backlog["slow"].unread, backlog["slow"].total) == (1, 3, 4)
    first_ms = int(first.decode().split("-")[0])
    assert backlog["slow"].oldest_ms == first_ms
    assert backlog["fast"].oldest_ms is not None and backlog["fast"].oldest_ms >= first_ms
    assert backlog["slow"].oldest_age_s(first_ms + 2500) == 2.5


async def test_backlog_uses_redis_7_lag_when_reported(redis: aioredis.Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    await redis.xgroup_create(KEYS.outbox, "hook", "0", mkstream=True)
    for n in range(3):
        await redis.xadd(KEYS.outbox, {"id": f"a{n}", "alert": "{}"})
    real = redis.xinfo_groups

    async def with_lag(name: str) -> list[dict[str, Any]]:
        return [{**group, "lag": 42} for group in await real(name)]  # as Redis 7 adds it

    monkeypatch.setattr(redis, "xinfo_groups", with_lag)
    (backlog,) = await read_backlog(redis, KEYS)
    assert (backlog.pending, backlog.unread) == (0, 42)  # the server's figure, not a count of entries
    assert backlog.oldest_ms is not None


async def test_no_outbox_means_no_backlog(redis: aioredis.Redis) -> None:
    assert await read_backlog(redis, KEYS) == []


async def get(session: aiohttp.ClientSession, url: str) -> tuple[int, str]:
    async with session.get(url) as response:
        return response.status, await response.text()


async def test_endpoints_serve_metrics_liveness_and_readiness(redis: aioredis.Redis) -> None:
    metrics = Metrics(replica="r1")
    config = config_for({}, "http://127.0.0.1:9/hook")
    app = await make_app(config, redis, metrics)
    # The group of a sink since removed from the config: nothing reads it, so its backlog stays put.
    await redis.xgroup_create(KEYS.outbox, "removed-sink", "$")
    await redis.xadd(KEYS.outbox, {"id": "a1", "alert": "{}"})
    daemon = Daemon(app, metrics=metrics)
    await daemon.open_endpoints()
    assert daemon.endpoints is not None and daemon.endpoints.port > 0  # port 0 picked a free one
    base = f"http://127.0.0.1:{daemon.endpoints.port}"
    try:
        async with aiohttp.ClientSession() as http:
            assert await get(http, f"{base}/healthz") == (200, '{"status": "alive"}')
            status, body = await get(http, f"{base}/readyz")
            assert status == 503 and '"reason": "scheduler not running' in body
            serving = asyncio.create_task(daemon.serve())
            deadline = time.monotonic() + 5
            while (await get(http, f"{base}/readyz"))[0] != 200:
                assert time.monotonic() < deadline, "never became ready"
                await asyncio.sleep(0.02)
            status, text = await get(http, f"{base}/metrics")
            assert status == 200
            assert 'monitor_outbox_backlog{sink="removed-sink"} 1.0' in text
            assert 'monitor_outbox_pending{sink="removed-sink"} 0.0' in text
            assert 'monitor_outbox_oldest_age_seconds{sink="removed-sink"}' in text
            assert 'monitor_outbox_backlog{sink="hook"}' in text
            assert 'monitor_replica_info{replica="r1"} 1.0' in text
            assert "_created" not in text
            daemon.should_exit.set()
            await asyncio.wait_for(serving, 10)
    finally:
        await daemon.close_endpoints()
        await app.close()


async def test_readiness_names_an_unreachable_redis(redis: aioredis.Redis) -> None:
    metrics = Metrics()
    app = await make_app(config_for({}, "http://127.0.0.1:9/hook"), redis, metrics)
    dead = connect("unix:///nonexistent/monitor-test.sock", RedisConfig(connect_timeout_s=0.5, socket_timeout_s=0.5))
    daemon = Daemon(app, metrics=metrics)
    daemon.scheduler = daemon._schedule()
    daemon.scheduler.start(paused=True)
    try:
        assert await daemon.readiness() is None
        live, app.redis = app.redis, dead
        reason = await daemon.readiness()
        app.redis = live
        assert reason is not None and reason.startswith("Redis did not answer PING")
    finally:
        daemon.scheduler.shutdown(wait=False)
        await dead.aclose()
        await app.close()


async def test_a_port_in_use_is_logged_not_fatal(redis: aioredis.Redis) -> None:
    metrics = Metrics()
    app = await make_app(config_for({}, "http://127.0.0.1:9/hook"), redis, metrics)
    first = Daemon(app, metrics=metrics)
    await first.open_endpoints()
    assert first.endpoints is not None
    taken = app.config.model_copy(
        update={"metrics": app.config.metrics.model_copy(update={"port": first.endpoints.port})}
    )
    app.config = taken
    second = Daemon(app, metrics=metrics)
    try:
        await second.open_endpoints()
        assert second.endpoints is None
    finally:
        await first.close_endpoints()
        await app.close()


def test_only_the_metrics_edge_imports_prometheus() -> None:
    """The pipeline reports through ``monitor.core.observe``; prometheus-client stays in two modules of the shell."""
    importers = set()
    for path in (ROOT / "monitor").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if any(n.split(".")[0] == "prometheus_client" for n in names):
                importers.add(path.name)
    assert importers == {"metrics.py", "health.py"}
