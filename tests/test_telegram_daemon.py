"""``monitor run`` reading a Telegram fixture channel on loopback: a new claim post is picked up by the first poll
after it appears and alerts through a signed webhook (issue 15: "alerts within one poll interval")."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from tests.support.daemons import log_events, start_daemon, stop_daemon, wait_for_log
from tests.support.feedserver import FeedServer
from tests.support.tgchannel import ENGLISH_CLAIM, Channel, Post, sample_posts
from tests.support.webhook_receiver import WebhookReceiver

ROOT = Path(__file__).resolve().parents[1]
SECRET = "whsec_" + "dGVsZWdyYW0tZGFlbW9uLXRlc3Qtc2VjcmV0"
NAME = "sabereen_test"
INTERVAL_S = 2


def write_config(tmp_path: Path, base: str, hook: str) -> Path:
    path = tmp_path / "monitor.yaml"
    path.write_text(f"""\
rules: [{ROOT / "rules"}]
fetch: {{allow_private_networks: true, timeout_s: 5}}
feeds:
  - {{name: claims, type: telegram, channel: {NAME}, telegram_base_url: "{base}", interval_s: {INTERVAL_S},
      adaptive: false}}
alerts:
  sinks:
    - {{type: webhook, url: "{hook}", secret: "${{HOOK_SECRET}}"}}
log: {{format: json}}
metrics: {{enabled: false}}
escalation: {{thresholds: [1000, 2000, 3000, 4000]}}
""")
    return path


@pytest.mark.timeout(120)
async def test_a_new_claim_post_alerts_from_the_first_poll_after_it_appears(
    redis: aioredis.Redis, redis_url: str, tmp_path: Path
) -> None:
    earlier = datetime.now(UTC) - timedelta(hours=2)
    # The channel's history: posts in Arabic and Persian, a service post, photos; no English claim yet.
    channel = Channel(NAME, sample_posts(at=earlier)[:-1])
    log = tmp_path / "daemon.log"
    async with FeedServer() as server, WebhookReceiver(SECRET) as rx:
        channel.serve(server)
        daemon = await start_daemon(
            write_config(tmp_path, server.url(""), rx.url), log, REDIS_URL=redis_url, HOOK_SECRET=SECRET
        )
        try:
            await wait_for_log(log, "feed_fetched", count=2, timeout_s=60, feed="claims")
            before = len(rx.alerts)
            asked = len(channel.queries)
            channel.add(Post(120, ENGLISH_CLAIM))
            appeared = time.monotonic()
            alerts = await rx.wait_for(before + 1, timeout_s=60)
            latency = time.monotonic() - appeared
            # The alert can arrive before the poll that sent it has logged itself.
            await wait_for_log(log, "feed_fetched", timeout_s=30, feed="claims", items=1)
        finally:
            code = await stop_daemon(daemon)
    new = [a for a in alerts[before:] if a["articles"][0]["url"] == f"https://t.me/{NAME}/120"]
    assert new and new[0]["event_type"] == "attack_on_us_forces_in_iraq"
    assert rx.invalid_signatures == []
    # The first request after the post appeared asked for the posts after the newest one seen, and its poll read
    # the claim: no poll after the post appeared went by without it.
    assert channel.queries[asked] == "after=105"
    polls = [e for e in log_events(log) if e.get("event") == "feed_fetched" and e.get("feed") == "claims"]
    first_with_items = next((i for i, e in enumerate(polls) if i >= 1 and e["items"] >= 1), None)
    assert first_with_items is not None, (polls, channel.queries)
    assert first_with_items == asked
    assert code == 0
    assert latency < INTERVAL_S + 20, f"post to alert took {latency:.1f}s"
    print(f"\nlatency from a new Telegram post to its signed alert: {latency:.2f}s (poll interval {INTERVAL_S}s)")
