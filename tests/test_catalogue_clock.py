"""Regression test for the clock step of ``../shared/RELIABILITY.md`` §3.3: the wall clock jumps a day forward,
then back by more than that, while the daemon runs; monotonic time goes on untouched. The daemon runs in this
process (``Daemon.serve``) with the real scheduler, whose wall clock is faked together with the app's; the feed
and the sink are real (a loopback feed server and a JSONL file sink), Redis is the suite's."""

from __future__ import annotations

import asyncio
import io
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from apscheduler.executors import base as executors_base
from apscheduler.schedulers import base as schedulers_base

from monitor.config import Config
from monitor.core.clock import SystemClock
from monitor.detection.rulefile import load_rules
from monitor.service.daemon import Daemon
from monitor.service.root import build_app
from tests.support.articles import ESCALATION, Item, rss
from tests.support.feedserver import FeedServer

ROOT = Path(__file__).resolve().parents[1]
OFFSET = [timedelta(0)]


class SteppedClock(SystemClock):
    def now(self) -> datetime:
        return super().now() + OFFSET[0]


class SteppedDatetime(datetime):
    """What APScheduler sees as ``datetime``: the same wall clock as the app's."""

    @classmethod
    def now(cls, tz: tzinfo | None = None) -> SteppedDatetime:  # type: ignore[override]
        real = datetime.now(tz)
        return real + OFFSET[0]  # type: ignore[return-value]


async def until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout_s}s: {what}"
        await asyncio.sleep(0.05)


def story(n: int) -> Item:
    return Item(ESCALATION[n].guid, ESCALATION[n].title, ESCALATION[n].description, datetime.now(UTC))


@pytest.mark.timeout(120)
async def test_a_clock_step_forward_and_back_neither_freezes_nor_repeats(
    redis: aioredis.Redis, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """§3.3 clock step (+1 day, then -1 day -1 h): polls go on at their interval after each step, every new story
    alerts once and no old one again. Before the fix a step forward left the feed's next poll "missed" (the chain
    of polls ended) and a step back made it wait out the step."""
    OFFSET[0] = timedelta(0)
    monkeypatch.setattr(schedulers_base, "datetime", SteppedDatetime)
    monkeypatch.setattr(executors_base, "datetime", SteppedDatetime)
    out = tmp_path / "alerts.jsonl"
    async with FeedServer() as feeds:
        feeds.set_feed("/wire.xml", rss([story(0)]))
        config = Config.model_validate(
            {
                "escalation": {"thresholds": [1000, 2000, 3000, 4000]},
                "fetch": {"allow_private_networks": True, "timeout_s": 5},
                "feeds": [{"name": "wire", "url": feeds.url("/wire.xml"), "interval_s": 1, "adaptive": False}],
                "alerts": {"sinks": [{"type": "file", "name": "out", "path": str(out)}]},
                "metrics": {"enabled": False},
            }
        )
        app = await build_app(
            config, load_rules([ROOT / "rules"]), clock=SteppedClock(), redis=redis, stdout=io.StringIO(),
            consumer="clock", parse_in_workers=False,
        )  # fmt: skip
        daemon = Daemon(app)
        served = asyncio.create_task(daemon.serve())

        def alerts() -> list[str]:
            return [json.loads(line)["id"] for line in out.read_text().splitlines()] if out.exists() else []

        try:
            await until(lambda: len(alerts()) == 1, 30, "the first alert")
            for n, step in ((1, timedelta(days=1)), (2, -timedelta(days=1, hours=1))):
                OFFSET[0] += step
                hits = feeds.hits("/wire.xml")
                await until(lambda h=hits: feeds.hits("/wire.xml") >= h + 3, 20, f"polls after step {step}")  # type: ignore[misc]
                feeds.set_feed("/wire.xml", rss([story(i) for i in range(n + 1)]))
                await until(lambda n=n: len(alerts()) >= n + 1, 20, f"the alert after step {step}")  # type: ignore[misc]
            await asyncio.sleep(2)
        finally:
            daemon.should_exit.set()
            await asyncio.wait_for(served, 20)
            await app.close()
            OFFSET[0] = timedelta(0)
    ids = alerts()
    assert len(ids) == 3 == len(set(ids))


async def test_a_job_rescheduled_between_the_step_and_its_notice_is_not_moved_again() -> None:
    """The race behind a frozen feed: after a step forward a poll runs at once and picks its next run by the new
    clock before the watch has noticed the step; shifting every job then would push that poll a whole step away."""
    from apscheduler.schedulers.asyncio import AsyncIOScheduler
    from apscheduler.triggers.cron import CronTrigger

    from monitor.service.clockwatch import shift_jobs

    scheduler = AsyncIOScheduler(timezone=UTC)
    scheduler.start(paused=True)
    try:
        now = datetime.now(UTC)
        for step in (timedelta(days=1), -timedelta(days=1, hours=1)):
            old = scheduler.add_job(print, "date", run_date=now - step + timedelta(seconds=30))
            new = scheduler.add_job(print, "date", run_date=now + timedelta(seconds=30))
            digest = scheduler.add_job(print, CronTrigger(hour=7, timezone=UTC))
            before = digest.next_run_time
            assert shift_jobs(scheduler, step, now) == 1
            assert old.next_run_time == now + timedelta(seconds=30)  # the old timeline, moved by the step
            assert new.next_run_time == now + timedelta(seconds=30)  # already timed by the new clock
            assert digest.next_run_time == before  # wall-clock times stay
            scheduler.remove_all_jobs()
    finally:
        scheduler.shutdown(wait=False)
