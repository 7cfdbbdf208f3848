"""Consumer groups when Redis comes back empty: every sink's group is recreated at the start of the new stream, so
no sink skips an alert queued before it noticed the loss; a sink added to a running outbox starts at its end.
Against the suite's real Redis, wiped with FLUSHDB between the enqueue and the groups' creation; through the whole
pipeline (loopback feed, file and webhook sinks) and through a dozen deliverers running as the daemon runs them."""

from __future__ import annotations

import asyncio
import io
import json
import time
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from monitor.config import Config
from monitor.core.clock import SystemClock
from monitor.delivery.outbox import Deliverer
from monitor.detection.rulefile import load_rules
from monitor.service.root import build_app
from monitor.storage.keys import Keys
from monitor.storage.outbox import OutboxGroup, ensure_group, ensure_groups
from tests.support.articles import ESCALATION, rss
from tests.support.feedserver import FeedServer
from tests.support.webhook_receiver import WebhookReceiver

ROOT = Path(__file__).resolve().parents[1]
KEYS = Keys("groups")
SECRET = "whsec_" + "Z3JvdXBzLXRlc3Qtc2VjcmV0LTAxMjM0NTY3ODk="
DOZEN = [f"sink{n:02d}" for n in range(12)]


async def enqueue(redis: aioredis.Redis, keys: Keys, alert_id: str) -> str:
    """What the pipeline's commit script adds to the outbox."""
    entry: Any = await redis.xadd(keys.outbox, {"alert": json.dumps({"id": alert_id}), "id": alert_id})
    return str(entry.decode())


async def unread(redis: aioredis.Redis, group: str) -> list[str]:
    return [e.alert_id for e in await OutboxGroup(redis, KEYS, group, "c1").read(">", 100)]


class Recorder:
    """A sink that keeps what it was sent (the outbox's behaviour is under test here, not a sink's)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.sent: list[str] = []

    async def send(self, alert: dict[str, Any]) -> None:
        self.sent.append(alert["id"])

    async def close(self) -> None:
        pass


# -- the groups' start, in storage -------------------------------------------------------------------------


async def test_groups_recreated_after_a_wipe_all_start_at_the_first_entry(redis: aioredis.Redis) -> None:
    assert await ensure_groups(redis, KEYS, DOZEN) == dict.fromkeys(DOZEN, "0")  # a fresh install
    await enqueue(redis, KEYS, "before-the-wipe")
    await redis.flushdb()  # Redis comes back empty ...
    await enqueue(redis, KEYS, "a1")  # ... and the pipeline enqueues before any sink noticed
    # The first sink to notice creates every missing group at once, at the stream's first entry.
    assert await ensure_groups(redis, KEYS, [DOZEN[5], *DOZEN]) == dict.fromkeys(DOZEN, "0")
    assert await ensure_groups(redis, KEYS, DOZEN) == {}  # the others find theirs
    await enqueue(redis, KEYS, "a2")
    for group in DOZEN:
        assert await unread(redis, group) == ["a1", "a2"], group


async def test_a_sink_added_to_a_running_outbox_starts_at_its_end(redis: aioredis.Redis) -> None:
    await ensure_groups(redis, KEYS, ["fast", "down"])
    for n in range(3):
        await enqueue(redis, KEYS, f"old{n}")
    assert await unread(redis, "fast") == ["old0", "old1", "old2"]  # "down" has read nothing: the stream keeps all
    assert await ensure_groups(redis, KEYS, ["fast", "down", "added"]) == {"added": "$"}
    assert await ensure_group(redis, KEYS, "added-alone") == "$"
    await enqueue(redis, KEYS, "new")
    assert await unread(redis, "added") == ["new"]  # no history
    assert await unread(redis, "down") == ["old0", "old1", "old2", "new"]  # an existing group keeps its place


# -- through the pipeline: Redis restarted empty between start-up and the first enqueue ----------------------


@pytest.mark.timeout(60)
async def test_every_sink_gets_the_alerts_enqueued_before_it_recreated_its_group(
    redis: aioredis.Redis, tmp_path: Path
) -> None:
    files = [tmp_path / f"alerts{n}.jsonl" for n in range(5)]
    async with FeedServer() as feeds, WebhookReceiver(SECRET) as rx:
        feeds.set_feed("/wire.xml", rss(ESCALATION[:3]))
        sinks: list[dict[str, Any]] = [
            {"type": "file", "name": f"file{n}", "path": str(path)} for n, path in enumerate(files)
        ]
        sinks.append({"type": "webhook", "name": "hook", "url": rx.url, "secret": SECRET})
        config = Config.model_validate(
            {
                "escalation": {"thresholds": [1000, 2000, 3000, 4000]},
                "fetch": {"allow_private_networks": True, "timeout_s": 5},
                "feeds": [{"name": "wire", "url": feeds.url("/wire.xml")}],
                "alerts": {"sinks": sinks, "max_attempts": 2, "max_retry_delay_s": 0.1},
            }
        )
        app = await build_app(
            config, load_rules([ROOT / "rules"]), clock=SystemClock(), redis=redis, stdout=io.StringIO(), consumer="t"
        )
        try:
            await app.start()  # every group, as at start-up
            await redis.flushdb()  # Redis restarted without its data
            [result] = await app.cycle()  # the alerts go into a stream that no group reads yet
            assert result is not None and result.alerted >= 1
            await app.deliver_pending(10)  # each sink finds its group missing and recreates it
        finally:
            await app.close()
        received = sorted(a["id"] for a in rx.alerts)
    assert len(received) == result.alerted
    for path in files:
        assert sorted(json.loads(line)["id"] for line in path.read_text().splitlines()) == received, path.name
    assert await redis.xlen(Keys().dead) == 0


# -- a dozen deliverers running as the daemon runs them ------------------------------------------------------


@pytest.mark.timeout(60)
async def test_a_dozen_running_sinks_lose_nothing_when_redis_comes_back_empty(redis: aioredis.Redis) -> None:
    sinks = [Recorder(name) for name in DOZEN]
    deliverers = [
        Deliverer(
            redis,
            KEYS,
            sink,
            consumer="r1",
            clock=SystemClock(),
            max_attempts=3,
            max_retry_delay_s=0.1,
            block_ms=50,
            groups=lambda: DOZEN,
        )
        for sink in sinks
    ]
    stop = asyncio.Event()
    for deliverer in deliverers:  # as at start-up, before anything is enqueued
        await deliverer.ensure_group()
    tasks = [asyncio.create_task(d.run(stop)) for d in deliverers]

    async def everyone_has(expected: list[str]) -> None:
        deadline = time.monotonic() + 20
        while any(sorted(s.sent) != expected for s in sinks):
            assert time.monotonic() < deadline, {s.name: s.sent for s in sinks}
            await asyncio.sleep(0.02)

    try:
        await enqueue(redis, KEYS, "a0")
        await everyone_has(["a0"])
        await redis.flushdb()
        for n in range(1, 6):  # enqueued while the deliverers find their groups gone, one after another
            await enqueue(redis, KEYS, f"a{n}")
            await asyncio.sleep(0.01)
        await everyone_has([f"a{n}" for n in range(6)])
    finally:
        stop.set()
        await asyncio.gather(*tasks)
    assert await redis.xlen(KEYS.dead) == 0
