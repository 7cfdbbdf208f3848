"""Polling a Telegram channel through the app, against a fixture channel on loopback and a real Redis: the first
poll reads the latest posts, later ones ask only for newer posts, a 429 backs off, the private-network guard holds,
and the config names a bad channel at its line."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
from aiohttp import web

from monitor.config import Config, load_config
from monitor.core.clock import SystemClock
from monitor.core.errors import ConfigError
from monitor.detection.rulefile import load_rules
from monitor.fetching.telegram import cursor_id
from monitor.network.guard import make_session
from monitor.service.root import App, build_app
from monitor.storage.keys import Keys
from tests.support.feedserver import FeedServer
from tests.support.tgchannel import Channel, Post, sample_posts
from tests.test_netguard import FakeResolver

ROOT = Path(__file__).resolve().parents[1]
NAME = "sabereen_test"


def config(base: str, *, private: bool = True, **feed: Any) -> Config:
    return Config.model_validate(
        {
            "fetch": {"allow_private_networks": private, "timeout_s": 5, "parse_workers": 1},
            "feeds": [{"name": "tg", "type": "telegram", "channel": NAME, "telegram_base_url": base, **feed}],
            "alerts": {"sinks": [{"type": "console"}], "max_age_hours": 0},
            "escalation": {"thresholds": [1000, 2000, 3000, 4000]},
        }
    )


@asynccontextmanager
async def running(cfg: Config, redis: aioredis.Redis, **extra: Any) -> AsyncIterator[App]:
    app = await build_app(
        cfg, load_rules([ROOT / "rules"]), clock=SystemClock(), redis=redis, stdout=io.StringIO(), consumer="t", **extra
    )
    try:
        await app.start()
        yield app
    finally:
        await app.close()


async def outbox_alerts(redis: aioredis.Redis) -> list[dict[str, Any]]:
    return [json.loads(f[b"alert"]) for _, f in await redis.xrange(Keys().outbox)]


async def test_first_poll_reads_the_latest_posts_then_only_newer_ones(redis: aioredis.Redis) -> None:
    recent = datetime.now(UTC) - timedelta(hours=1)
    channel = Channel(NAME, sample_posts(at=recent))
    async with FeedServer() as server:
        channel.serve(server)
        async with running(config(server.url("")), redis) as app:
            [first] = await app.cycle()
            assert first is not None and first.articles == 4
            health = await app.store.feed_health("tg")
            assert cursor_id(health["cursor"], NAME) == 106
            [quiet] = await app.cycle()  # nothing new
            assert quiet is not None and quiet.articles == 0
            channel.add(Post(107, "Second drone attack reported at Ain al-Asad air base hosting US troops"))
            channel.add(Post(108, None, service=True))
            [again] = await app.cycle()
            assert again is not None and again.articles == 1
            [_] = await app.cycle()
            health = await app.store.feed_health("tg")
    assert channel.queries == ["", "after=106", "after=106", "after=108"]
    assert cursor_id(health["cursor"], NAME) == 108
    alerts = [a for a in await outbox_alerts(redis) if a["kind"] == "event"]
    assert alerts and alerts[0]["articles"][0]["url"].startswith("https://t.me/sabereen_test/")


async def test_a_burst_longer_than_a_page_is_followed_within_one_poll(redis: aioredis.Redis) -> None:
    recent = datetime.now(UTC) - timedelta(hours=1)
    channel = Channel(NAME, [Post(1, "First post of the channel, a quiet day", recent)])
    async with FeedServer() as server:
        channel.serve(server)
        async with running(config(server.url("")), redis) as app:
            await app.cycle()
            for i in range(2, 47):
                channel.add(Post(i, f"Update {i}: talks in Baghdad continue on the budget", recent))
            [burst] = await app.cycle()
    assert burst is not None and burst.articles == 45
    assert channel.queries == ["", "after=1", "after=21", "after=41"]


async def test_429_backs_off_for_retry_after_and_keeps_the_cursor(redis: aioredis.Redis) -> None:
    recent = datetime.now(UTC) - timedelta(hours=1)
    channel = Channel(NAME, sample_posts(at=recent))
    async with FeedServer() as server:
        channel.serve(server)
        async with running(config(server.url(""), interval_s=30), redis) as app:
            await app.cycle()
            channel.script = [429]
            [throttled] = await app.cycle()
            assert throttled is None
            assert app.next_delays["tg"] >= 120 * 0.9  # Retry-After: 120, less the jitter
            health = await app.store.feed_health("tg")
            assert health["last_status"] == "429" and cursor_id(health["cursor"], NAME) == 106
            [back] = await app.cycle()
    assert back is not None and channel.queries == ["", "after=106", "after=106"]


async def test_a_page_that_is_not_a_channel_is_a_feed_error(redis: aioredis.Redis) -> None:
    async with FeedServer() as server:
        server.set_feed(f"/s/{NAME}", b"<html><body><h1>Welcome</h1></body></html>", content_type="text/html")
        async with running(config(server.url("")), redis) as app:
            [failed] = await app.cycle()
            health = await app.store.feed_health("tg")
    assert failed is None
    assert "not a Telegram channel preview" in health["last_error"]


@pytest.fixture
async def guarded_app(redis: aioredis.Redis) -> AsyncIterator[Callable[[Config, FakeResolver], Any]]:
    """Apps whose session has the private-network guard on and resolves names from a table."""
    opened: list[tuple[App, aiohttp.ClientSession]] = []

    async def build(cfg: Config, resolver: FakeResolver) -> App:
        session = make_session(cfg.fetch, resolver=resolver)
        app = await build_app(
            cfg, load_rules([ROOT / "rules"]), clock=SystemClock(), redis=redis, stdout=io.StringIO(),
            consumer="t", http=session,
        )  # fmt: skip
        opened.append((app, session))
        return app

    yield build
    for app, session in opened:
        await app.close()
        await session.close()


async def test_a_telegram_base_that_resolves_to_a_private_address_is_refused_before_connecting(
    redis: aioredis.Redis, guarded_app: Callable[[Config, FakeResolver], Any]
) -> None:
    async with FeedServer() as server:
        Channel(NAME, sample_posts()).serve(server)
        resolver = FakeResolver({"t.me.test": ["127.0.0.1", "10.0.0.7"]})
        app = await guarded_app(config(f"http://t.me.test:{server.port}", private=False), resolver)
        [refused] = await app.cycle()
        health = await app.store.feed_health("tg")
    assert refused is None and server.connections == 0 and resolver.asked == ["t.me.test"]
    assert "resolves only to non-public addresses" in health["last_error"]


def test_config_errors_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "monitor.yaml"
    path.write_text(
        "feeds:\n"
        "  - name: good\n    type: telegram\n    channel: sabereen_news\n"
        "  - name: bad\n    type: telegram\n    channel: '@no'\n"
        "  - name: unnamed\n    type: telegram\n"
    )
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    text = str(info.value)
    assert f"{path}:7: feeds[1].channel: a Telegram channel name is 5-32" in text
    assert f"{path}:8: feeds[2]: a telegram feed needs 'channel'" in text
    good = Config.model_validate({"feeds": [{"name": "g", "type": "telegram", "channel": "sabereen_news"}]})
    assert good.feeds[0].url == "https://t.me/s/sabereen_news"


def test_the_commented_feed_examples_of_the_shipped_config_are_valid(tmp_path: Path) -> None:
    shipped = (ROOT / "config" / "monitor.yaml").read_text(encoding="utf-8").splitlines()
    examples = [line.replace("# ", "", 1) for line in shipped if line.startswith(("  # - ", "  #   "))]
    path = tmp_path / "examples.yaml"
    path.write_text("feeds:\n" + "\n".join(examples) + "\n", encoding="utf-8")
    feeds = load_config(path, env={}).feeds
    assert {f.type for f in feeds} == {"rss", "telegram"} and len(feeds) >= 8
    assert all(f.url.startswith("https://t.me/s/") for f in feeds if f.type == "telegram")


async def test_conditional_requests_only_for_the_page_the_validators_came_from(redis: aioredis.Redis) -> None:
    recent = datetime.now(UTC) - timedelta(hours=1)
    channel = Channel(NAME, sample_posts(at=recent), etags=True)
    async with FeedServer() as server:
        channel.serve(server)
        async with running(config(server.url("")), redis) as app:
            await app.cycle()  # new posts: the validators of this page are of no use next time
            await app.cycle()  # after=106, nothing new: an ETag for this very page
            [unchanged] = await app.cycle()  # the same page again, conditionally: 304
            health = await app.store.feed_health("tg")
            channel.add(Post(107, "Militia statement on Ain al-Asad attack on US troops denied by officials", recent))
            [fresh] = await app.cycle()
    assert channel.queries == ["", "after=106", "after=106", "after=106"]
    assert [bool(c) for c in channel.conditions] == [False, False, True, True]
    assert health["last_status"] == "304" and unchanged is not None and unchanged.articles == 0
    assert fresh is not None and fresh.articles == 1  # a changed page answers 200 despite the old ETag


@pytest.mark.parametrize(
    ("route", "fetch", "reason"),
    [
        ("big", {"max_bytes": 50_000}, "body larger than max_bytes"),
        ("hang", {"timeout_s": 1}, "no complete response within 1 s"),
    ],
)
async def test_size_cap_and_deadline_hold_for_channel_pages(
    redis: aioredis.Redis, route: str, fetch: dict[str, Any], reason: str
) -> None:
    async with FeedServer() as server:

        async def to_builtin(request: web.BaseRequest) -> web.StreamResponse:  # the page redirects to the misbehaviour
            return web.Response(status=302, headers={"Location": f"/{route}"})

        server.route(f"/s/{NAME}", to_builtin)
        cfg = config(server.url(""))
        cfg = cfg.model_copy(update={"fetch": cfg.fetch.model_copy(update=fetch)})
        async with running(cfg, redis) as app:
            [failed] = await app.cycle()
            health = await app.store.feed_health("tg")
    assert failed is None and reason in health["last_error"]
