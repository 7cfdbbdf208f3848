"""``/readyz`` tells the truth: 200 only when the Redis primary takes a write, the outbox stream can be read and the
scheduler ran lately; else 503 with a one-line reason, and the ``monitor_ready`` gauge says the same. Over real HTTP
on loopback against the suite's own Redis (writes paused with ``CLIENT PAUSE … WRITE``, always unpaused after)."""

from __future__ import annotations

import asyncio
import io
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
import redis.asyncio as aioredis

from monitor.config import Config
from monitor.core.clock import Clock, SystemClock
from monitor.core.errors import StoreError, StoreUnavailableError
from monitor.detection.rulefile import load_rules
from monitor.service.daemon import HEARTBEAT_STALE_S, Daemon
from monitor.service.metrics import Metrics
from monitor.service.root import App, build_app
from monitor.storage.keys import READY_PROBE_TTL_S, Keys
from monitor.storage.readiness import outbox_length, probe_write
from tests.support.alerts import FakeClock

ROOT = Path(__file__).resolve().parents[1]
RULES = load_rules([ROOT / "rules"])
KEYS = Keys()
CONFIG = Config.model_validate(
    {
        "escalation": {"thresholds": [1000, 2000, 3000, 4000]},
        "fetch": {"allow_private_networks": True},
        "feeds": [],
        "alerts": {"sinks": [{"type": "webhook", "name": "hook", "url": "http://127.0.0.1:9/hook", "secret": "s"}]},
        "metrics": {"port": 0},
        "replica_name": "r1",
    }
)


async def make_app(redis: aioredis.Redis, clock: Clock, metrics: Metrics) -> App:
    app = await build_app(CONFIG, RULES, clock=clock, redis=redis, stdout=io.StringIO(), observer=metrics)
    await app.start()
    return app


async def get(http: aiohttp.ClientSession, url: str) -> tuple[int, str]:
    async with http.get(url) as response:
        return response.status, await response.text()


async def wait_for_status(http: aiohttp.ClientSession, url: str, status: int, within_s: float) -> str:
    """Polls ``url`` until it answers ``status``; returns the body. Fails after ``within_s``."""
    deadline = time.monotonic() + within_s
    while True:
        got, body = await get(http, url)
        if got == status:
            return body
        assert time.monotonic() < deadline, f"still {got} after {within_s}s: {body}"
        await asyncio.sleep(0.05)


@pytest.fixture
async def unpause(redis: aioredis.Redis) -> AsyncIterator[None]:
    """Whatever a test does, the suite's Redis takes writes again afterwards."""
    yield
    await redis.execute_command("CLIENT", "UNPAUSE")


@pytest.mark.timeout(60)
async def test_readyz_turns_503_while_writes_are_refused_and_200_once_they_work(
    redis: aioredis.Redis, unpause: None
) -> None:
    metrics = Metrics()
    app = await make_app(redis, SystemClock(), metrics)
    daemon = Daemon(app, metrics=metrics)
    await daemon.open_endpoints()
    assert daemon.endpoints is not None
    base = f"http://127.0.0.1:{daemon.endpoints.port}"
    serving = asyncio.create_task(daemon.serve())
    try:
        async with aiohttp.ClientSession() as http:
            assert await wait_for_status(http, f"{base}/readyz", 200, 5) == '{"status": "ready"}'
            ttl = await redis.ttl(KEYS.ready_probe("r1"))
            assert 0 < ttl <= READY_PROBE_TTL_S  # the probe wrote, under the namespace, short-lived
            assert "monitor_ready 1.0" in (await get(http, f"{base}/metrics"))[1]
            # PING and reads still answer; every write waits (as on a primary mid-failover or a demoted one).
            await redis.execute_command("CLIENT", "PAUSE", 30_000, "WRITE")
            began = time.monotonic()
            body = json.loads(await wait_for_status(http, f"{base}/readyz", 503, 5))
            assert time.monotonic() - began < 5
            assert body["status"] == "not ready"
            assert body["reason"].startswith("Redis refused a write") and "\n" not in body["reason"]
            assert "monitor_ready 0.0" in (await get(http, f"{base}/metrics"))[1]
            await redis.execute_command("CLIENT", "UNPAUSE")
            assert await wait_for_status(http, f"{base}/readyz", 200, 5) == '{"status": "ready"}'
            assert "monitor_ready 1.0" in (await get(http, f"{base}/metrics"))[1]
    finally:
        daemon.should_exit.set()
        await asyncio.wait_for(serving, 15)
        await app.close()


async def test_a_stale_scheduler_heartbeat_is_not_ready(redis: aioredis.Redis) -> None:
    clock = FakeClock(datetime.now(UTC))
    metrics = Metrics()
    app = await make_app(redis, clock, metrics)
    daemon = Daemon(app, metrics=metrics)
    await daemon.open_endpoints()
    assert daemon.endpoints is not None
    url = f"http://127.0.0.1:{daemon.endpoints.port}/readyz"
    daemon.scheduler = daemon._schedule()
    daemon.scheduler.start(paused=True)  # built and "running", but firing no job: its heartbeat ages
    try:
        async with aiohttp.ClientSession() as http:
            assert await get(http, url) == (200, '{"status": "ready"}')
            clock.moment += timedelta(seconds=HEARTBEAT_STALE_S - 1)
            assert (await get(http, url))[0] == 200
            clock.moment += timedelta(seconds=60)
            status, body = await get(http, url)
            assert status == 503
            assert json.loads(body)["reason"].startswith("scheduler heartbeat is 74s old")
            assert metrics.registry.get_sample_value("monitor_ready") == 0.0
            await daemon._beat()  # the heartbeat job, as the scheduler runs it
            assert await get(http, url) == (200, '{"status": "ready"}')
            assert metrics.registry.get_sample_value("monitor_ready") == 1.0
    finally:
        daemon.scheduler.shutdown(wait=False)
        await daemon.close_endpoints()
        await app.close()


async def test_the_heartbeat_job_is_scheduled_and_beats(redis: aioredis.Redis) -> None:
    metrics = Metrics()
    app = await make_app(redis, SystemClock(), metrics)
    daemon = Daemon(app, metrics=metrics)
    scheduler = daemon._schedule()
    try:
        job = scheduler.get_job("heartbeat")
        assert job is not None and job.trigger.interval.total_seconds() <= HEARTBEAT_STALE_S / 3
        before = daemon.heartbeat
        assert before is not None
        await asyncio.sleep(0.01)
        await job.func()
        assert daemon.heartbeat is not None and daemon.heartbeat > before
    finally:
        await app.close()


async def test_probe_write_and_outbox_length(redis: aioredis.Redis) -> None:
    await probe_write(redis, KEYS, "r2", "2024-01-04T07:00:00+00:00")
    assert await redis.get(KEYS.ready_probe("r2")) == b"2024-01-04T07:00:00+00:00"
    assert 0 < await redis.ttl(KEYS.ready_probe("r2")) <= READY_PROBE_TTL_S
    assert await outbox_length(redis, KEYS) == 0
    await redis.xadd(KEYS.outbox, {"id": "a1"})
    assert await outbox_length(redis, KEYS) == 1
    await redis.delete(KEYS.outbox)
    await redis.set(KEYS.outbox, "not a stream")
    with pytest.raises(StoreError, match="WRONGTYPE"):
        await outbox_length(redis, KEYS)


async def test_probes_of_an_unreachable_redis_raise_store_unavailable(unreachable: aioredis.Redis) -> None:
    with pytest.raises(StoreUnavailableError):
        await probe_write(unreachable, KEYS, "r1", "x")
    with pytest.raises(StoreUnavailableError):
        await outbox_length(unreachable, KEYS)
