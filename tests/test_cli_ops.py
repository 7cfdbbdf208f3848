"""Operator commands as processes: ``monitor once`` (cron mode), ``monitor status``, ``monitor dlq``."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import redis.asyncio as aioredis

from tests.support.articles import ESCALATION, UNRELATED, rss
from tests.support.feedserver import FeedServer
from tests.support.webhook_receiver import WebhookReceiver

ROOT = Path(__file__).resolve().parents[1]


async def monitor(*args: str, redis_url: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "monitor",
        *args,
        env={**os.environ, "REDIS_URL": redis_url},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode or 0, out.decode(), err.decode()


async def test_once_then_status_and_dead_letters(redis: aioredis.Redis, redis_url: str, tmp_path: Path) -> None:
    alerts_file = tmp_path / "alerts.jsonl"
    async with FeedServer() as feeds, WebhookReceiver("ops-test-secret") as rx:
        rx.script([400])  # the webhook refuses the first alert for good: it must be dead-lettered
        feeds.set_feed("/wire.xml", rss([*ESCALATION[:2], *UNRELATED]))
        config = tmp_path / "monitor.yaml"
        config.write_text(f"""\
rules: [{ROOT / "rules"}]
fetch: {{allow_private_networks: true}}
feeds:
  - {{name: wire, url: "{feeds.url("/wire.xml")}"}}
  - {{name: broken, url: "{feeds.url("/html")}"}}
alerts:
  sinks:
    - {{type: file, path: "{alerts_file}"}}
    - {{type: webhook, url: "{rx.url}", secret: ops-test-secret}}
log: {{format: json}}
escalation: {{thresholds: [1000, 2000, 3000, 4000]}}
""")
        code, _, err = await monitor("once", "-c", str(config), "--deliver-timeout", "10", redis_url=redis_url)
        assert code == 0, err
        assert '"event": "cycle_finished"' in err and '"failed": 1' in err
        written = [json.loads(line) for line in alerts_file.read_text().splitlines()]
        assert len(written) == 2 and all(a["kind"] == "event" for a in written)
        assert len(rx.requests) == 2

        code, out, err = await monitor("status", "-c", str(config), redis_url=redis_url)
        assert code == 0, err
        assert "wire" in out and "broken" in out and "dead letters: 1" in out

        code, out, _ = await monitor("dlq", "list", "-c", str(config), redis_url=redis_url)
        assert code == 0 and "sink=webhook" in out and "HTTP 400" in out
        code, out, _ = await monitor("dlq", "retry", "-c", str(config), redis_url=redis_url)
        assert code == 0 and "re-queued 1 alert" in out
        code, _, err = await monitor("once", "-c", str(config), "--deliver-timeout", "10", redis_url=redis_url)
        assert code == 0, err
    assert len(rx.requests) == 3 and rx.requests[-1].reply is not None and rx.requests[-1].reply.status == 200
    assert len(alerts_file.read_text().splitlines()) == 2  # the file sink did not get the retried alert again


async def test_status_fails_cleanly_without_redis(tmp_path: Path) -> None:
    config = tmp_path / "monitor.yaml"
    config.write_text(f"rules: [{ROOT / 'rules'}]\nredis: {{connect_timeout_s: 1, socket_timeout_s: 1}}\n")
    code, _, err = await monitor("status", "-c", str(config), redis_url="redis://127.0.0.1:9/0")
    assert code == 1 and "Traceback" not in err and "Redis" in err
