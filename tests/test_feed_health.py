"""Feed health: failures recorded, an operator notice after N in a row and on recovery; hostile parsing contained."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from monitor.config import Config
from monitor.core.clock import SystemClock
from monitor.core.errors import ParseError
from monitor.detection.rulefile import load_rules
from monitor.parsing.feed import MAX_ENTRIES
from monitor.parsing.pool import ParserPool
from monitor.service.root import build_app
from monitor.storage.keys import Keys
from tests.support.articles import ESCALATION, rss
from tests.support.feedserver import FeedServer

ROOT = Path(__file__).resolve().parents[1]


async def test_a_failing_feed_is_reported_once_and_its_recovery_too(redis: aioredis.Redis) -> None:
    async with FeedServer() as feeds:
        config = Config.model_validate(
            {
                "fetch": {"allow_private_networks": True, "timeout_s": 5, "alert_after_failures": 3},
                "feeds": [{"name": "flaky", "url": feeds.url("/flaky.xml"), "interval_s": 60}],
                "alerts": {"sinks": [{"type": "console"}]},
                "escalation": {"thresholds": [1000, 2000, 3000, 4000]},
            }
        )
        app = await build_app(
            config, load_rules([ROOT / "rules"]), clock=SystemClock(), redis=redis, stdout=io.StringIO(), consumer="t"
        )
        try:
            await app.start()
            for _ in range(5):  # 404 five times: one notice, at the third
                await app.cycle()
            assert app.next_delays["flaky"] > 60 * 4 * 0.9  # backed off
            feeds.set_feed("/flaky.xml", rss(ESCALATION[:1]))
            await app.cycle()
            assert app.next_delays["flaky"] <= 60 * 1.1
            health = await app.store.feed_health("flaky")
        finally:
            await app.close()
    notices = [json.loads(f[b"alert"]) for _, f in await redis.xrange(Keys().outbox)]
    notices = [n for n in notices if n["kind"] == "feed"]
    assert [n["state"] for n in notices] == ["down", "recovered"]
    assert "3 times" in notices[0]["title"] and "404" in notices[0]["summary"]
    assert health["consecutive_errors"] == "0" and health["interval_s"]


async def test_parser_workers_contain_hostile_feeds(tmp_path: Path) -> None:
    pool = ParserPool(workers=1, memory_mb=256, timeout_s=5)
    now = datetime.now(UTC)
    try:
        good = await pool.parse(rss(ESCALATION[:2]), headers={}, feed="f", url="http://x/", fetched=now)
        assert [a.title for a in good] == [ESCALATION[0].title, ESCALATION[1].title]
        with pytest.raises(ParseError, match="not a feed"):
            await pool.parse(b"<html><body>hello</body></html>", headers={}, feed="f", url="http://x/", fetched=now)
        # 200,000 items: the lxml fast path reads them within the limit and keeps the newest MAX_ENTRIES ...
        many = rss([ESCALATION[0]] * 1).replace(
            b"</channel>", b"<item><title>x</title></item>" * 200_000 + b"</channel>"
        )
        assert len(await pool.parse(many, headers={}, feed="f", url="http://x/", fetched=now)) == MAX_ENTRIES
        # ... but markup in the titles sends them to feedparser, and that is more than a 256 MB worker can hold as
        # parsed entries; the worker says so, or dies and is replaced; either way the daemon gets a ParseError.
        huge = many.replace(b"<title>x</title>", b"<title>x <b>y</b></title>")
        with pytest.raises(ParseError):
            await pool.parse(huge, headers={}, feed="f", url="http://x/", fetched=now)
        again = await pool.parse(rss(ESCALATION[:1]), headers={}, feed="f", url="http://x/", fetched=now)
        assert len(again) == 1
    finally:
        pool.close()


async def test_a_parse_that_takes_too_long_is_abandoned() -> None:
    pool = ParserPool(workers=1, memory_mb=1024, timeout_s=0.05)
    slow = rss(ESCALATION * 400)  # 2,000 items: far more than 50 ms of feedparser
    try:
        with pytest.raises(ParseError, match="longer than"):
            await pool.parse(slow, headers={}, feed="f", url="http://x/", fetched=datetime.now(UTC))
    finally:
        pool.close()
