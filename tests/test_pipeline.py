"""The whole pipeline in-process: a loopback feed server, the real Redis, a signature-checking webhook receiver."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import redis.asyncio as aioredis

from monitor.config import Config
from monitor.core.clock import SystemClock
from monitor.detection.rulefile import load_rules
from monitor.service.root import App, build_app
from tests.support.articles import ESCALATION, UNRELATED, Item, rss
from tests.support.feedserver import FeedServer
from tests.support.webhook_receiver import WebhookReceiver

ROOT = Path(__file__).resolve().parents[1]
SECRET = "whsec_" + "c2VjcmV0LWZvci10ZXN0cy1vbmx5LTEyMzQ1Njc4"
RULES = load_rules([ROOT / "rules"])


QUIET_INDEX = {"thresholds": [1000, 2000, 3000, 4000]}  # keeps escalation alerts out of tests about events


def config_for(feed_urls: list[str], hook_url: str, *, escalation: dict | None = None, **alerts: object) -> Config:
    return Config.model_validate(
        {
            "escalation": QUIET_INDEX if escalation is None else escalation,
            "fetch": {"allow_private_networks": True, "timeout_s": 5},
            "feeds": [{"name": f"feed{i}", "url": url, "interval_s": 1} for i, url in enumerate(feed_urls)],
            "alerts": {
                "sinks": [{"type": "webhook", "url": hook_url, "secret": SECRET}, {"type": "console"}],
                "max_retry_delay_s": 1,
                **alerts,
            },
        }
    )


async def make_app(config: Config, redis: aioredis.Redis) -> tuple[App, io.StringIO]:
    out = io.StringIO()
    app = await build_app(config, RULES, clock=SystemClock(), redis=redis, stdout=out, consumer="test")
    await app.start()
    return app, out


async def test_escalation_items_become_signed_alerts_and_nothing_else(redis: aioredis.Redis) -> None:
    async with FeedServer() as feeds, WebhookReceiver(SECRET) as rx:
        feeds.set_feed("/wire.xml", rss(ESCALATION + UNRELATED))
        app, out = await make_app(config_for([feeds.url("/wire.xml")], rx.url, escalation={}), redis)
        try:
            (result,) = await app.cycle()
            assert result is not None and result.alerted == len(ESCALATION)
            await app.deliver_pending(5)
            await rx.wait_for(len(ESCALATION) + 1)
        finally:
            await app.close()
    alerts = [a for a in rx.alerts if a["kind"] == "event"]
    (escalation,) = [a for a in rx.alerts if a["kind"] == "escalation"]
    assert escalation["previous_level"] == 1 and escalation["escalation_level"] == 5
    assert rx.invalid_signatures == []
    assert sorted(a["articles"][0]["url"] for a in alerts) == sorted(
        f"https://news.example.org/{i.guid}" for i in ESCALATION
    )
    types = {a["title"]: a["event_type"] for a in alerts}
    assert types[ESCALATION[1].title] == "attack_on_us_forces_in_iraq"
    assert types[ESCALATION[2].title] == "iraq_expels_or_ends_us_presence"
    assert types[ESCALATION[3].title] == "us_embassy_or_diplomatic_incident"
    assert types[ESCALATION[4].title] == "us_personnel_evacuation_or_advisory"
    for alert in alerts:
        assert alert["kind"] == "event" and alert["revision"] == 1 and alert["severity"] >= 3
        assert alert["id"] == f"{alert['event_id']}.r1" and alert["evidence"]
        assert set(alert) >= {
            "id",
            "kind",
            "event_id",
            "revision",
            "event_type",
            "severity",
            "title",
            "summary",
            "escalation_level",
            "first_seen",
            "updated",
            "entities",
            "evidence",
            "articles",
        }
    assert out.getvalue().count("[ALERT") == len(ESCALATION) and out.getvalue().count("[ESCALATION") == 1


async def test_repolling_and_syndicated_copies_do_not_alert_twice(redis: aioredis.Redis) -> None:
    copy = Item("other-guid-same-story-123", ESCALATION[0].title, ESCALATION[0].description)
    async with FeedServer() as feeds, WebhookReceiver(SECRET) as rx:
        feeds.set_feed("/a.xml", rss(ESCALATION[:2]))
        feeds.set_feed("/b.xml", rss([copy]))
        app, _ = await make_app(config_for([feeds.url("/a.xml"), feeds.url("/b.xml")], rx.url), redis)
        try:
            await app.cycle()
            await app.cycle()  # 304s
            feeds.set_feed("/a.xml", rss([*ESCALATION[:2], UNRELATED[0]]))  # changed, same stories
            await app.cycle()
            await app.deliver_pending(5)
            assert len(await rx.wait_for(2)) == 2
            feeds.set_feed("/a.xml", rss([*ESCALATION[:3]]))  # one new story
            await app.cycle()
            await app.deliver_pending(5)
            alerts = await rx.wait_for(3)
        finally:
            await app.close()
    assert len(alerts) == 3 and len({a["id"] for a in alerts}) == 3
    assert feeds.hits("/a.xml") == 4
    conditional = [r for r in feeds.requests if r.path == "/a.xml"][1]
    assert conditional.headers.get("If-None-Match")


async def test_old_articles_are_ignored(redis: aioredis.Redis) -> None:
    stale = Item(
        "old-1", ESCALATION[1].title, ESCALATION[1].description, published=datetime.now(UTC) - timedelta(days=10)
    )
    async with FeedServer() as feeds, WebhookReceiver(SECRET) as rx:
        feeds.set_feed("/wire.xml", rss([stale]))
        app, _ = await make_app(config_for([feeds.url("/wire.xml")], rx.url), redis)
        try:
            (result,) = await app.cycle()
        finally:
            await app.close()
    assert result is not None and result.too_old == 1 and result.alerted == 0


async def test_a_sink_that_fails_then_recovers_gets_the_alert_once(redis: aioredis.Redis) -> None:
    async with FeedServer() as feeds, WebhookReceiver(SECRET) as rx:
        rx.script([503, 503, 200])
        feeds.set_feed("/wire.xml", rss(ESCALATION[:1]))
        app, out = await make_app(config_for([feeds.url("/wire.xml")], rx.url), redis)
        try:
            await app.cycle()
            await app.deliver_pending(10)
            received = await rx.wait_for_requests(3)
        finally:
            await app.close()
    assert [r.reply.status for r in received if r.reply] == [503, 503, 200]
    assert len({r.webhook_id for r in received}) == 1
    assert out.getvalue().count("[ALERT") == 1  # the console was not held up by the failing webhook


async def test_a_broken_feed_does_not_stop_the_others(redis: aioredis.Redis) -> None:
    async with FeedServer() as feeds, WebhookReceiver(SECRET) as rx:
        feeds.set_feed("/good.xml", rss(ESCALATION[:1]))
        urls = [feeds.url("/html"), feeds.url("/good.xml"), feeds.url("/unavailable"), "http://127.0.0.1:9/closed"]
        app, _ = await make_app(config_for(urls, rx.url), redis)
        try:
            results = await app.cycle()
            await app.deliver_pending(5)
            await rx.wait_for(1)
            health = await app.store.feed_health("feed0")
        finally:
            await app.close()
    assert [r is not None for r in results] == [False, True, False, False]
    assert health["consecutive_errors"] == "1" and health["last_error"]
