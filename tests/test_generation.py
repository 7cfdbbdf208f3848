"""The generation marker (``monitor.storage.generation``): a fresh install, a loss noticed across a restart through
the file beside the data, a file of another configuration that silences nothing, two replicas that agree on the new
generation, and the loss counted in the metrics. Against the suite's real Redis, emptied with FLUSHDB."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from structlog.testing import capture_logs

from monitor.config import Config
from monitor.core.clock import SystemClock
from monitor.detection.rulefile import load_rules
from monitor.service.metrics import Metrics
from monitor.service.root import App, build_app
from monitor.storage.generation import Generation, state_file
from monitor.storage.keys import Keys
from tests.support.articles import ESCALATION, Item, rss
from tests.support.feedserver import FeedServer

ROOT = Path(__file__).resolve().parents[1]
EARLY = datetime.now(UTC) - timedelta(hours=1)
OLD = [Item(i.guid, i.title, i.description, EARLY) for i in ESCALATION[:3]]


async def app_for(redis: aioredis.Redis, feed_url: str, state: Path, observer: Metrics | None = None) -> App:
    config = Config.model_validate(
        {
            "escalation": {"thresholds": [1000, 2000, 3000, 4000]},
            "fetch": {"allow_private_networks": True, "timeout_s": 5},
            "feeds": [{"name": "wire", "url": feed_url}],
            "alerts": {"sinks": [{"type": "console", "name": "out"}]},
        }
    )
    extra = {"observer": observer} if observer is not None else {}
    return await build_app(
        config, load_rules([ROOT / "rules"]), clock=SystemClock(), redis=redis, stdout=io.StringIO(),
        consumer="t", state_dir=state, parse_in_workers=False, **extra,
    )  # fmt: skip


async def outbox_ids(redis: aioredis.Redis) -> list[str]:
    return [fields[b"id"].decode() for _, fields in await redis.xrange(Keys().outbox)]


async def test_a_fresh_install_begins_a_generation_without_any_loss(redis: aioredis.Redis, tmp_path: Path) -> None:
    path = state_file(tmp_path, Keys())
    generation = Generation(redis, Keys(), SystemClock(), path=path)
    assert await generation.check() is False
    marker = json.loads(await redis.get(Keys().generation))
    assert json.loads(path.read_text())["generation"] == marker["generation"] == generation.token
    assert await generation.check() is False and generation.losses == 0


@pytest.mark.timeout(60)
async def test_a_loss_while_the_monitor_was_stopped_is_noticed_from_the_file(
    redis: aioredis.Redis, tmp_path: Path
) -> None:
    """RELIABILITY.md §3.3 'Redis restart without persistence', across a restart of the monitor itself."""
    async with FeedServer() as feeds:
        feeds.set_feed("/wire.xml", rss(OLD))
        app = await app_for(redis, feeds.url("/wire.xml"), tmp_path)
        try:
            await app.start()
            [first] = await app.cycle()
        finally:
            await app.close()  # writes the file: the feed was read now
        assert first is not None and first.alerted == 3
        await redis.flushdb()  # Redis restarted without persistence while the monitor was down
        fresh = [Item(i.guid, i.title, i.description, datetime.now(UTC)) for i in ESCALATION[3:]]
        feeds.set_feed("/wire.xml", rss(OLD + fresh))
        metrics = Metrics()
        app = await app_for(redis, feeds.url("/wire.xml"), tmp_path, metrics)
        try:
            with capture_logs() as logs:
                await app.start()
                [second] = await app.cycle()
                [third] = await app.cycle()
        finally:
            await app.close()
    assert second is not None and second.alerted == 2 and second.duplicates == 3
    assert third is not None and third.alerted == 0
    assert len(await outbox_ids(redis)) == 2  # only the new stories were enqueued
    lost = [e for e in logs if e["event"] == "redis_state_lost"]
    assert len(lost) == 1 and lost[0]["log_level"] == "warning"
    assert [e["events_rebuilt"] for e in logs if e["event"] == "feed_reread_silently"] == [3]
    assert b"monitor_redis_state_lost_total 1.0" in metrics.render()


@pytest.mark.timeout(60)
async def test_a_file_of_another_configuration_silences_nothing(redis: aioredis.Redis, tmp_path: Path) -> None:
    async with FeedServer() as feeds:
        feeds.set_feed("/wire.xml", rss(OLD))
        feeds.set_feed("/other.xml", rss(OLD))
        app = await app_for(redis, feeds.url("/other.xml"), tmp_path)  # "wire" was another feed then
        try:
            await app.start()
            await app.cycle()
        finally:
            await app.close()
        await redis.flushdb()
        app = await app_for(redis, feeds.url("/wire.xml"), tmp_path)
        try:
            with capture_logs() as logs:
                await app.start()
                [result] = await app.cycle()
        finally:
            await app.close()
    assert [e["event"] for e in logs].count("redis_state_lost") == 1
    assert result is not None and result.alerted == 3  # never read before: nothing to hold back


async def test_two_replicas_agree_on_the_new_generation(redis: aioredis.Redis, tmp_path: Path) -> None:
    one = Generation(redis, Keys(), SystemClock(), path=tmp_path / "a.json")
    two = Generation(redis, Keys(), SystemClock(), path=tmp_path / "b.json")
    assert not await one.check() and not await two.check()
    assert one.token == two.token
    one.read("wire", EARLY)
    await redis.flushdb()
    assert await two.check() is True  # the first to look begins the new generation ...
    assert await one.check() is True  # ... and the other joins it, with its own reads as cutoffs
    assert one.token == two.token != None  # noqa: E711
    assert one.cutoff("wire") == EARLY and two.cutoff("wire") is None
    assert await one.check() is False


async def test_an_unreadable_file_is_reported_and_a_new_generation_begins(
    redis: aioredis.Redis, tmp_path: Path
) -> None:
    path = tmp_path / "generation-monitor.json"
    path.write_text("{not json")
    with capture_logs() as logs:
        assert await Generation(redis, Keys(), SystemClock(), path=path).check() is False
    assert [e["event"] for e in logs] == ["generation_file_unreadable"]
    assert json.loads(path.read_text())["generation"]


async def test_an_unwritable_state_directory_is_reported_once(redis: aioredis.Redis, tmp_path: Path) -> None:
    blocked = tmp_path / "file-not-dir"
    blocked.write_text("")
    generation = Generation(redis, Keys(), SystemClock(), path=blocked / "generation-monitor.json")
    with capture_logs() as logs:
        assert await generation.check() is False
        for _ in range(3):
            generation.read("wire", EARLY)
            await generation.save()
    assert [e["event"] for e in logs].count("generation_file_unwritable") == 1


@pytest.mark.timeout(60)
async def test_a_loss_in_the_middle_of_a_batch_commits_nothing_of_it(
    redis: aioredis.Redis, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The commit script itself checks the marker: Redis emptied after the batch's look at the marker and before
    its commits fails the poll (nothing claimed, nothing enqueued); the next poll notices the loss and goes on."""
    async with FeedServer() as feeds:
        feeds.set_feed("/wire.xml", rss(OLD))
        app = await app_for(redis, feeds.url("/wire.xml"), tmp_path)
        try:
            await app.start()
            looked = app.generation.check

            async def look_then_lose() -> bool:
                found = await looked()
                await redis.flushdb()  # the wipe lands between the look and the commits
                return found

            monkeypatch.setattr(app.generation, "check", look_then_lose)
            [failed] = await app.cycle()
            assert await redis.xlen(Keys().outbox) == 0
            monkeypatch.setattr(app.generation, "check", looked)
            with capture_logs() as logs:
                [result] = await app.cycle()
        finally:
            await app.close()
    assert failed is None  # the poll failed, and will be read again
    assert [e["event"] for e in logs].count("redis_state_lost") == 1
    assert result is not None and result.alerted == 3  # never alerted before: nothing to hold back
    assert len(await outbox_ids(redis)) == 3
