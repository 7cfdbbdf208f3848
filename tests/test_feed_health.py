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
#: A deadline for parses that must succeed: minutes of margin for a worker starting and a big feed on a loaded machine.
LONG_S = 30.0


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


@pytest.mark.timeout(180)
async def test_parser_workers_contain_hostile_feeds(tmp_path: Path) -> None:
    """The deadlines are set for the work, not for the wall clock: the parses that must succeed (200,000 items take
    about 2.5 s of an idle core) get one no loaded machine misses; the hostile one, which must fail whichever way,
    a short one, so the test does not wait for it to use up its memory."""
    pool = ParserPool(workers=1, memory_mb=256, timeout_s=LONG_S)
    now = datetime.now(UTC)
    try:
        good = await pool.parse(rss(ESCALATION[:2]), headers={}, feed="f", url="http://x/", fetched=now)
        assert [a.title for a in good] == [ESCALATION[0].title, ESCALATION[1].title]
        with pytest.raises(ParseError, match="not a feed"):
            await pool.parse(b"<html><body>hello</body></html>", headers={}, feed="f", url="http://x/", fetched=now)
        # 200,000 items: the lxml fast path reads them within the memory limit and keeps the newest MAX_ENTRIES ...
        many = rss([ESCALATION[0]] * 1).replace(
            b"</channel>", b"<item><title>x</title></item>" * 200_000 + b"</channel>"
        )
        assert len(await pool.parse(many, headers={}, feed="f", url="http://x/", fetched=now)) == MAX_ENTRIES
        # ... but markup in the titles sends them to feedparser, and that is more than a 256 MB worker can hold as
        # parsed entries; the worker says so, dies, or overruns its deadline, and is replaced; either way the daemon
        # gets a ParseError.
        huge = many.replace(b"<title>x</title>", b"<title>x <b>y</b></title>")
        pool.timeout_s = 5
        with pytest.raises(ParseError):
            await pool.parse(huge, headers={}, feed="f", url="http://x/", fetched=now)
        pool.timeout_s = LONG_S
        again = await pool.parse(rss(ESCALATION[:1]), headers={}, feed="f", url="http://x/", fetched=now)
        assert len(again) == 1
    finally:
        pool.close()


async def test_a_parse_that_takes_too_long_is_abandoned() -> None:
    """The deadline is measured against the parse: the worker is started first (under a long deadline), then a feed
    that takes over a second of an idle core gets 50 ms; afterwards the replaced worker parses again."""
    pool = ParserPool(workers=1, memory_mb=1024, timeout_s=LONG_S)
    slow = rss(ESCALATION * 4000)  # 20,000 items: about 1.2 s of feedparser on an idle core
    try:
        await pool.parse(rss(ESCALATION[:1]), headers={}, feed="warm", url="http://x/", fetched=datetime.now(UTC))
        pool.timeout_s = 0.05
        with pytest.raises(ParseError, match=r"^parsing took longer than 0\.05 s$"):
            await pool.parse(slow, headers={}, feed="f", url="http://x/", fetched=datetime.now(UTC))
        pool.timeout_s = LONG_S
        again = await pool.parse(rss(ESCALATION[:2]), headers={}, feed="f", url="http://x/", fetched=datetime.now(UTC))
        assert len(again) == 2
    finally:
        pool.close()
