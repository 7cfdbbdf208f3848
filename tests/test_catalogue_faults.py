"""Regression tests for faults of ``../shared/RELIABILITY.md`` §3.3 that had none: Redis out of memory
(``maxmemory`` with ``noeviction``) and CPU starvation (the daemon SIGSTOPped, then SIGCONTed). A real ``monitor
run`` daemon, a throwaway redis-server, a loopback feed and a signed webhook receiver. The clock step is in
``test_catalogue_clock.py``; Redis without persistence in ``test_generation_wipe.py``."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis

from tests.support.articles import ESCALATION, Item, rss
from tests.support.daemons import log_events, start_daemon, stop_daemon, wait_for_log
from tests.support.feedserver import FeedServer
from tests.support.redis_process import NO_PERSISTENCE, RedisProcess
from tests.support.webhook_receiver import WebhookReceiver

ROOT = Path(__file__).resolve().parents[1]
SECRET = "whsec_" + "ZmF1bHRzLXRlc3Qtc2VjcmV0LTAxMjM0NTY3ODk="


@dataclass
class Rig:
    feeds: FeedServer
    hook: WebhookReceiver
    server: RedisProcess
    proc: asyncio.subprocess.Process
    log: Path

    def publish(self, items: list[Item]) -> None:
        self.feeds.set_feed("/wire.xml", rss(items))


def story(n: int) -> Item:
    source = ESCALATION[n]
    return Item(source.guid, source.title, source.description, datetime.now(UTC))


@asynccontextmanager
async def rig(tmp_path: Path, *redis_settings: str) -> AsyncIterator[Rig]:
    server = RedisProcess(tmp_path / "redis", *NO_PERSISTENCE, *redis_settings)
    url = server.start()
    log = tmp_path / "daemon.log"
    try:
        async with FeedServer() as feeds, WebhookReceiver(SECRET) as hook:
            feeds.set_feed("/wire.xml", rss([story(0)]))
            config = {
                "rules": [str(ROOT / "rules")],
                "redis": {"data_dir": str(tmp_path / "state"), "socket_timeout_s": 2, "connect_timeout_s": 2},
                "log": {"format": "json"},
                "metrics": {"enabled": False},
                "escalation": {"thresholds": [1000, 2000, 3000, 4000]},
                "fetch": {"allow_private_networks": True, "timeout_s": 5},
                "feeds": [{"name": "wire", "url": feeds.url("/wire.xml"), "interval_s": 1, "adaptive": False}],
                "alerts": {
                    "sinks": [{"type": "webhook", "name": "hook", "url": hook.url, "secret": SECRET}],
                    "max_attempts": 100,
                    "max_retry_delay_s": 1,
                },
            }
            path = tmp_path / "monitor.yaml"
            path.write_text(json.dumps(config))
            proc = await start_daemon(path, log, REDIS_URL=url, MONITOR_REPLICA="faults")
            try:
                await hook.wait_for(1, timeout_s=60)
                yield Rig(feeds, hook, server, proc, log)
            finally:
                assert await stop_daemon(proc) == 0
    finally:
        server.stop()


async def until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout_s}s: {what}"
        await asyncio.sleep(0.1)


def fill(client: redis.Redis) -> list[str]:
    """Four MB of ballast, then ``maxmemory`` set one MB below what Redis uses: every write is refused until the
    ballast goes (a limit reached by writing alone is left by a few bytes, and the daemon's expiring keys free
    those at once)."""
    keys = [f"ballast:{n}" for n in range(16)]
    for key in keys:
        client.set(key, b"x" * (256 * 1024))
    used = int(client.info("memory")["used_memory"])
    client.config_set("maxmemory", used - (1 << 20))
    with pytest.raises(redis.exceptions.OutOfMemoryError):
        client.set("one-more", b"x")
    return keys


def ids(hook: WebhookReceiver) -> list[str]:
    return [a["id"] for a in hook.alerts]


@pytest.mark.timeout(180)
async def test_redis_out_of_memory_is_reported_and_delivered_once_memory_is_freed(tmp_path: Path) -> None:
    """§3.3 Redis OOM: with ``maxmemory`` reached under ``noeviction`` every write fails; the daemon keeps running,
    logs what went wrong, claims nothing it cannot enqueue, and delivers the story that arrived meanwhile once
    memory is freed: once, with no loss."""
    async with rig(tmp_path, "--maxmemory-policy", "noeviction") as r:
        client = r.server.client()
        ballast = fill(client)
        r.publish([story(0), story(1)])
        await until(
            lambda: any("maxmemory" in json.dumps(e) for e in log_events(r.log) if e.get("level") == "error"),
            60,
            "an error naming maxmemory",
        )
        await asyncio.sleep(3)  # a few failing polls more
        assert r.proc.returncode is None
        assert len(r.hook.alerts) == 1  # nothing claimed without its alert
        client.delete(*ballast)
        await r.hook.wait_for(2, timeout_s=60)
        await asyncio.sleep(2)
        alerts = ids(r.hook)
    assert len(alerts) == 2 == len(set(alerts))
    assert r.hook.invalid_signatures == []


@pytest.mark.timeout(180)
async def test_a_daemon_starved_of_cpu_catches_up_without_loss(tmp_path: Path) -> None:
    """§3.3 CPU starvation: the daemon is SIGSTOPped for longer than its polls' grace period while two stories
    appear, then SIGCONTed: it polls again at once and alerts both, once; later stories still alert (no poll was
    dropped as missed)."""
    async with rig(tmp_path) as r:
        await asyncio.sleep(1.5)  # the first alert acknowledged: a stop between a send and its ack re-sends it
        os.kill(r.proc.pid, signal.SIGSTOP)
        try:
            r.publish([story(0), story(1), story(2)])
            await asyncio.sleep(35)  # longer than any misfire grace (30 s): the polls fall due and are missed
        finally:
            os.kill(r.proc.pid, signal.SIGCONT)
        resumed = time.monotonic()
        await r.hook.wait_for(3, timeout_s=60)
        caught_up = time.monotonic() - resumed
        r.publish([story(0), story(1), story(2), story(3)])
        await r.hook.wait_for(4, timeout_s=60)
        await asyncio.sleep(2)
        alerts = ids(r.hook)
        assert r.proc.returncode is None
    assert len(alerts) == 4 == len(set(alerts))
    assert caught_up < 30, caught_up
    await wait_for_log(r.log, "monitor_stopped", timeout_s=5)
