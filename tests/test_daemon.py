"""``monitor run`` as a real process: signed alerts within seconds, SIGKILL and restart without repeats or
losses, and a clean exit on SIGTERM. Feeds and the webhook receiver live in this test process on loopback."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from tests.support.articles import ESCALATION, UNRELATED, rss
from tests.support.feedserver import FeedServer
from tests.support.webhook_receiver import WebhookReceiver

ROOT = Path(__file__).resolve().parents[1]
SECRET = "whsec_" + "ZGFlbW9uLXRlc3Qtc2VjcmV0LTAxMjM0NTY3"


def write_config(tmp_path: Path, feed_url: str, hook_url: str) -> Path:
    path = tmp_path / "monitor.yaml"
    path.write_text(f"""\
rules: [{ROOT / "rules"}]
fetch: {{allow_private_networks: true, timeout_s: 5}}
feeds:
  - {{name: wire, url: "{feed_url}", interval_s: 1}}
alerts:
  sinks:
    - {{type: webhook, url: "{hook_url}", secret: "${{HOOK_SECRET}}"}}
log: {{format: json}}
escalation: {{thresholds: [1000, 2000, 3000, 4000]}}
""")
    return path


async def start(config: Path, redis_url: str, tmp_path: Path) -> asyncio.subprocess.Process:
    env = {**os.environ, "REDIS_URL": redis_url, "HOOK_SECRET": SECRET}
    with (tmp_path / "daemon.log").open("ab") as log:  # the child keeps its own copy of the descriptor
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "monitor", "run", "-c", str(config), env=env, stdout=log, stderr=log
        )


@pytest.mark.timeout(90)
async def test_kill_and_restart_neither_repeats_nor_loses_alerts(
    redis: aioredis.Redis, redis_url: str, tmp_path: Path
) -> None:
    async with FeedServer() as feeds, WebhookReceiver(SECRET) as rx:
        feeds.set_feed("/wire.xml", rss([*ESCALATION[:2], *UNRELATED]))
        config = write_config(tmp_path, feeds.url("/wire.xml"), rx.url)
        daemon = await start(config, redis_url, tmp_path)
        try:
            await rx.wait_for(2, timeout_s=30)
            daemon.send_signal(signal.SIGKILL)
            await daemon.wait()
            # While it is down, the feed moves on; the alert for one new item is also pending in no one's hands.
            feeds.set_feed("/wire.xml", rss([*ESCALATION[:4], *UNRELATED]))
            daemon = await start(config, redis_url, tmp_path)
            alerts = await rx.wait_for(4, timeout_s=30)
            appeared = time.monotonic()
            feeds.set_feed("/wire.xml", rss([*ESCALATION, *UNRELATED]))
            await rx.wait_for(5, timeout_s=30)
            latency = time.monotonic() - appeared
            await asyncio.sleep(2.5)  # two more polls: nothing new may arrive
        finally:
            if daemon.returncode is None:
                daemon.send_signal(signal.SIGTERM)
                await asyncio.wait_for(daemon.wait(), 10)
        alerts = rx.alerts
    by_article: dict[str, set[str]] = {}
    for alert in alerts:
        by_article.setdefault(alert["articles"][0]["url"], set()).add(alert["id"])
    assert len(by_article) == 5, sorted(by_article)
    assert all(len(ids) == 1 for ids in by_article.values())  # a redelivery may repeat, but only with its id
    assert rx.invalid_signatures == []
    assert daemon.returncode == 0
    assert latency < 8, f"item to alert took {latency:.1f}s"
    print(f"\nlatency from a new item appearing to its signed alert: {latency:.2f}s")


@pytest.mark.timeout(60)
async def test_sigterm_stops_within_ten_seconds_with_exit_0(
    redis: aioredis.Redis, redis_url: str, tmp_path: Path
) -> None:
    async with FeedServer() as feeds, WebhookReceiver(SECRET) as rx:
        feeds.set_feed("/wire.xml", rss(ESCALATION[:1]))
        rx.script([503] * 100)  # a failing sink must not hold up the shutdown
        daemon = await start(write_config(tmp_path, feeds.url("/wire.xml"), rx.url), redis_url, tmp_path)
        await rx.wait_for_requests(1, timeout_s=30)
        stopped = time.monotonic()
        daemon.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(daemon.wait(), 12)
    assert code == 0 and time.monotonic() - stopped < 10
    log = (tmp_path / "daemon.log").read_text()
    assert '"event": "monitor_stopped"' in log and SECRET not in log
    pending = await redis.xpending("{monitor}:outbox", "webhook")
    assert pending["pending"] == 1  # kept for the next start, not lost
