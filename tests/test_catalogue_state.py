"""Regression tests for dedup items of ``../shared/RELIABILITY.md`` §2 that had none: C3 (a feed whose GUIDs
change on every fetch) and C8 (an item that reappears after its claim expired). Against the suite's real Redis and
a loopback feed. "Redis restart without persistence" (§3.3) is ``test_generation_wipe.py``."""

from __future__ import annotations

import io
import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path

import redis.asyncio as aioredis
from aiohttp import web

from monitor.config import Config
from monitor.core.clock import SystemClock
from monitor.detection.rulefile import load_rules
from monitor.service.root import App, build_app
from monitor.storage.keys import SEEN_TTL_S, Keys
from tests.support.articles import ESCALATION, UNRELATED, Item, rss
from tests.support.feedserver import FeedServer

ROOT = Path(__file__).resolve().parents[1]


class SteppedClock(SystemClock):
    """The system clock moved by ``offset`` (wall time only; monotonic time is the system's)."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def now(self) -> datetime:
        return super().now() + self.offset


async def app_for(redis: aioredis.Redis, url: str, clock: SystemClock, **alerts: object) -> App:
    config = Config.model_validate(
        {
            "escalation": {"thresholds": [1000, 2000, 3000, 4000]},
            "fetch": {"allow_private_networks": True, "timeout_s": 5},
            "feeds": [{"name": "wire", "url": url}],
            "alerts": {"sinks": [{"type": "console", "name": "out"}], **alerts},
        }
    )
    return await build_app(
        config, load_rules([ROOT / "rules"]), clock=clock, redis=redis, stdout=io.StringIO(), consumer="t",
        parse_in_workers=False,
    )  # fmt: skip


async def enqueued(redis: aioredis.Redis) -> int:
    return int(await redis.xlen(Keys().outbox))


async def test_guids_that_change_on_every_fetch_alert_each_story_once(redis: aioredis.Redis) -> None:
    """C3: the same stories under a new GUID and link on every fetch (a CMS that regenerates them) alert once
    each: the content fingerprint points every copy at the event its first copy opened."""
    fetches = itertools.count()
    published = datetime.now(UTC) - timedelta(minutes=5)

    async def churning(request: web.BaseRequest) -> web.StreamResponse:
        n = next(fetches)
        items = [Item(f"{i.guid}-v{n}", i.title, i.description, published) for i in ESCALATION[:3]]
        return web.Response(body=rss(items), content_type="application/rss+xml")

    async with FeedServer() as feeds:
        feeds.route("/churn.xml", churning)
        app = await app_for(redis, feeds.url("/churn.xml"), SystemClock())
        try:
            await app.start()
            results = [await app.cycle() for _ in range(5)]
        finally:
            await app.close()
    alerted = [r.alerted + r.revised for [r] in results if r is not None]
    assert len(alerted) == 5 and next(fetches) == 5
    assert alerted == [3, 0, 0, 0, 0]
    assert await enqueued(redis) == 3


async def test_an_item_that_reappears_after_its_claim_expired_does_not_alert_again(redis: aioredis.Redis) -> None:
    """C8: an article identity is remembered ``SEEN_TTL_S`` (30 days), longer than the alert age limit (72 h by
    default), so when a claim has expired its article is too old to alert: a feed that lists it again, a month
    later, repeats nothing."""
    clock = SteppedClock()
    story = [Item("c8-1", ESCALATION[0].title, ESCALATION[0].description, datetime.now(UTC) - timedelta(hours=1))]
    async with FeedServer() as feeds:
        feeds.set_feed("/wire.xml", rss(story))
        app = await app_for(redis, feeds.url("/wire.xml"), clock)
        try:
            await app.start()
            [first] = await app.cycle()
            claims = [k async for k in redis.scan_iter(match=Keys().seen("*"))]
            assert len(claims) == 1
            assert SEEN_TTL_S - 60 <= await redis.ttl(claims[0]) <= SEEN_TTL_S
            assert timedelta(hours=app.config.alerts.max_age_hours) < timedelta(seconds=SEEN_TTL_S)
            clock.offset = timedelta(seconds=SEEN_TTL_S + 3600)  # a month later ...
            await redis.delete(*claims)  # ... the claim has expired
            feeds.set_feed("/wire.xml", rss([*story, *UNRELATED[:1]]))  # and the feed lists the item again
            [again] = await app.cycle()
        finally:
            await app.close()
    assert first is not None and first.alerted == 1
    assert again is not None and again.alerted == 0 and again.too_old == 2  # the story and the unrelated item
    assert await enqueued(redis) == 1
