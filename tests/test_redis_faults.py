"""A paused or restarted Redis never hangs the pipeline: calls fail fast, and work resumes once it is back."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import pytest

from monitor.config import Config, RedisConfig
from monitor.core.clock import SystemClock
from monitor.detection.rulefile import load_rules
from monitor.service.root import build_app
from monitor.storage.connection import EmbeddedRedis, connect
from tests.support.articles import ESCALATION, rss
from tests.support.feedserver import FeedServer
from tests.support.webhook_receiver import WebhookReceiver

ROOT = Path(__file__).resolve().parents[1]
SECRET = "redis-fault-test-secret"


@pytest.mark.timeout(60)
async def test_paused_then_restarted_redis(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path / "redis")
    url = server.start()
    quick = RedisConfig(socket_timeout_s=1, connect_timeout_s=1)
    redis = connect(url, quick)
    pid = int((await redis.info("server"))["process_id"])
    try:
        async with FeedServer() as feeds, WebhookReceiver(SECRET) as rx:
            feeds.set_feed("/wire.xml", rss(ESCALATION[:1]))
            config = Config.model_validate(
                {
                    "redis": {"socket_timeout_s": 1, "connect_timeout_s": 1},
                    "fetch": {"allow_private_networks": True, "timeout_s": 5},
                    "feeds": [{"name": "wire", "url": feeds.url("/wire.xml")}],
                    "alerts": {"sinks": [{"type": "webhook", "url": rx.url, "secret": SECRET}]},
                    "escalation": {"thresholds": [1000, 2000, 3000, 4000]},
                }
            )
            app = await build_app(config, load_rules([ROOT / "rules"]), clock=SystemClock(), redis=redis, consumer="t")
            await app.start()
            os.kill(pid, signal.SIGSTOP)
            try:
                began = time.monotonic()
                assert await app.cycle() == [None]  # failed, logged, did not hang
                elapsed = time.monotonic() - began
                assert elapsed < 8, elapsed
            finally:
                os.kill(pid, signal.SIGCONT)
            # Now a real restart: the server goes away and comes back on the same data.
            await asyncio.to_thread(server.stop)
            assert await app.cycle() == [None]
            await asyncio.to_thread(server.start)
            results = await app.cycle()
            assert results[0] is not None and results[0].alerted == 1
            await app.deliver_pending(5)
            assert len(await rx.wait_for(1)) == 1
            await app.close()
    finally:
        await asyncio.to_thread(server.stop)
