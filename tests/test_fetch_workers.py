"""``fetch.workers``: feeds polled in worker processes, with a real Redis, real loopback feed servers and real
processes: each feed polled by exactly one worker, a worker killed mid-cycle restarted with nothing lost and nothing
alerted twice, a worker that hangs (``SIGSTOP``) killed and restarted the same way, the same alerts whatever the
number of workers, and the key's validation."""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp import web

from monitor.config import Config, FetchConfig, load_config
from monitor.config.schema import AUTO_WORKERS_FEEDS, FeedConfig, default_fetch_workers
from monitor.core.clock import SystemClock
from monitor.core.errors import ConfigError
from monitor.core.models import Article, ProcessResult
from monitor.detection.rulefile import load_rules
from monitor.fetching.watchdog import BEAT_S, hang_after_s
from monitor.fetching.workers import FetchWorkers, slot_of, worker_share
from monitor.service.root import App, build_app
from monitor.storage.keys import Keys
from tests.support.articles import ESCALATION, UNRELATED, Item, rss
from tests.support.daemons import log_events, start_daemon, stop_daemon, wait_for_log
from tests.support.feedserver import FeedServer

ROOT = Path(__file__).resolve().parents[1]
RULES = load_rules([ROOT / "rules"])
QUIET_INDEX = {"thresholds": [1000, 2000, 3000, 4000]}


def calm(feed: int) -> list[Item]:
    return [Item(f"f{feed}-calm-{i}", f"{u.title} ({feed}.{i})", u.description) for i, u in enumerate(UNRELATED)]


def config(feeds: FeedServer, names: Sequence[str], workers: int, timeout_s: float = 10) -> Config:
    return Config.model_validate(
        {
            "fetch": {"allow_private_networks": True, "timeout_s": timeout_s, "workers": workers},
            "feeds": [{"name": name, "url": feeds.url(f"/{name}.xml"), "interval_s": 60} for name in names],
            "alerts": {"sinks": [{"type": "console"}]},
            "escalation": QUIET_INDEX,
        }
    )


async def make_app(cfg: Config, redis: aioredis.Redis, redis_url: str) -> App:
    app = await build_app(cfg, RULES, clock=SystemClock(), redis=redis, stdout=io.StringIO(), redis_url=redis_url)
    await app.start()
    return app


async def alert_log(redis: aioredis.Redis) -> list[dict[str, Any]]:
    return [json.loads(fields[b"alert"]) for _, fields in await redis.xrange(Keys().alert_log)]


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


async def test_each_feed_is_polled_by_exactly_one_of_two_workers(redis: aioredis.Redis, redis_url: str) -> None:
    names = [f"feed{i:02d}" for i in range(12)]
    assert {slot_of(n, 2) for n in names} == {0, 1}  # both workers get feeds
    async with FeedServer() as feeds:
        for i, name in enumerate(names):
            feeds.set_feed(f"/{name}.xml", rss(calm(i)))
        app = await make_app(config(feeds, names, 2), redis, redis_url)
        assert isinstance(app.poller, FetchWorkers)
        try:
            results = await app.cycle()
            pids = app.poller.pids
            holders = {n: (await redis.get(Keys().feed_lease(n))) for n in names}
        finally:
            await app.close()
        assert [r.articles if r else None for r in results] == [3] * 12
        assert all(feeds.hits(f"/{n}.xml") == 1 for n in names)
    assert len(set(pids)) == 2 and os.getpid() not in pids
    for name, holder in holders.items():  # the lease of each feed is its own worker's
        assert holder is not None and holder.decode().endswith(f"/w{slot_of(name, 2)}"), (name, holder)
    assert not any(alive(pid) for pid in pids)  # close() stopped them


async def test_a_worker_killed_mid_poll_is_restarted_and_its_feed_is_delivered_once(
    redis: aioredis.Redis, redis_url: str
) -> None:
    names = ["held", "other"]
    answer, asked = asyncio.Event(), asyncio.Event()
    async with FeedServer() as feeds:
        _serve_held_and_other(feeds, answer, asked)
        app = await make_app(config(feeds, names, 2), redis, redis_url)
        assert isinstance(app.poller, FetchWorkers)
        try:
            cycle = asyncio.create_task(app.cycle())
            await asyncio.wait_for(asked.wait(), 20)
            killed = app.poller.pid_of("held")
            assert killed is not None
            os.kill(killed, signal.SIGKILL)
            await asyncio.sleep(0.5)  # the daemon sees the worker gone and starts another, which asks again
            answer.set()
            held_result, other_result = await asyncio.wait_for(cycle, 30)
            restarted = app.poller.pid_of("held")
        finally:
            await app.close()
        assert restarted is not None and restarted != killed
        assert held_result is not None and held_result.alerted == 3
        assert other_result is not None and other_result.alerted == 2
        assert feeds.hits("/held.xml") == 2  # asked by the killed worker, then by its successor
    await _assert_each_escalation_alerted_once(redis)


async def test_a_worker_killed_after_its_articles_were_processed_alerts_nothing_twice(
    redis: aioredis.Redis, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed between the daemon processing a poll's articles and the worker recording the poll: the feed is
    fetched again (its validators were not saved) and its articles are found claimed."""
    async with FeedServer() as feeds:
        feeds.set_feed("/wire.xml", rss(ESCALATION))
        app = await make_app(config(feeds, ["wire"], 2), redis, redis_url)
        assert isinstance(app.poller, FetchWorkers)
        workers = app.poller
        # dead before it hears that its articles were processed
        seen = _signal_after_first_batch(app, workers, monkeypatch, signal.SIGKILL, [], settle_s=0.3)
        try:
            (result,) = await asyncio.wait_for(app.cycle(), 30)
            (again,) = await app.cycle()
        finally:
            await app.close()
        assert [r.alerted for r in seen] == [5, 0] and seen[1].duplicates == 5
        assert result is not None and result.duplicates == 5
        assert again is not None and again.articles == 0  # recorded by the retry: the next poll was a 304
        assert feeds.hits("/wire.xml") == 3
    assert len([a for a in await alert_log(redis) if a["kind"] == "event"]) == 5


async def test_a_worker_stopped_mid_poll_is_killed_restarted_and_its_feed_delivered_once(
    redis: aioredis.Redis, redis_url: str
) -> None:
    """A worker that stops answering without exiting (``SIGSTOP``) is killed once it has been silent longer than
    the bound derived from the fetch timeout, and its poll goes to its successor."""
    names = ["held", "other"]
    answer, asked = asyncio.Event(), asyncio.Event()
    async with FeedServer() as feeds:
        _serve_held_and_other(feeds, answer, asked)
        cfg = config(feeds, names, 2, timeout_s=2)
        app = await make_app(cfg, redis, redis_url)
        assert isinstance(app.poller, FetchWorkers)
        loop = asyncio.get_running_loop()
        try:
            cycle = asyncio.create_task(app.cycle())
            await asyncio.wait_for(asked.wait(), 20)
            stopped = app.poller.pid_of("held")
            assert stopped is not None
            os.kill(stopped, signal.SIGSTOP)
            since = loop.time()
            answer.set()  # the stopped worker never reads it; its successor is answered at once
            held_result, other_result = await asyncio.wait_for(cycle, 60)
            waited = loop.time() - since
            restarted = app.poller.pid_of("held")
        finally:
            await app.close()
        assert restarted is not None and restarted != stopped and not alive(stopped)
        assert waited >= hang_after_s(cfg.fetch) - BEAT_S  # not before it had been silent that long
        assert held_result is not None and held_result.alerted == 3
        assert other_result is not None and other_result.alerted == 2
        assert feeds.hits("/held.xml") == 2  # asked by the stopped worker, then by its successor
    await _assert_each_escalation_alerted_once(redis)


async def test_a_worker_stopped_after_its_articles_were_processed_alerts_nothing_twice(
    redis: aioredis.Redis, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stopped between the daemon processing a poll's articles and the worker recording the poll: killed as hung,
    its successor fetches the feed again and finds its articles claimed."""
    async with FeedServer() as feeds:
        feeds.set_feed("/wire.xml", rss(ESCALATION))
        app = await make_app(config(feeds, ["wire"], 2, timeout_s=2), redis, redis_url)
        assert isinstance(app.poller, FetchWorkers)
        workers = app.poller
        stopped: list[int] = []
        seen = _signal_after_first_batch(app, workers, monkeypatch, signal.SIGSTOP, stopped)
        try:
            (result,) = await asyncio.wait_for(app.cycle(), 60)
            (again,) = await app.cycle()
        finally:
            await app.close()
        assert [r.alerted for r in seen] == [5, 0] and seen[1].duplicates == 5
        assert result is not None and result.duplicates == 5
        assert again is not None and again.articles == 0  # recorded by the retry: the next poll was a 304
        assert feeds.hits("/wire.xml") == 3
        assert not alive(stopped[0]) and workers.pid_of("wire") != stopped[0]
    assert len([a for a in await alert_log(redis) if a["kind"] == "event"]) == 5


async def test_the_same_alerts_with_zero_one_and_two_workers(redis: aioredis.Redis, redis_url: str) -> None:
    names = [f"feed{i}" for i in range(6)]
    found = []
    async with FeedServer() as feeds:
        for i, name in enumerate(names):
            feeds.set_feed(f"/{name}.xml", rss(calm(i) + ESCALATION[i : i + 1]))
        for workers in (0, 1, 2):
            await redis.flushdb()
            app = await make_app(config(feeds, names, workers), redis, redis_url)
            assert isinstance(app.poller, FetchWorkers) == (workers > 0)
            try:
                results = await app.cycle()
            finally:
                await app.close()
            assert all(r is not None for r in results)
            alerts = await alert_log(redis)
            found.append(sorted((a["kind"], a["event_type"], a["severity"], a["articles"][0]["url"]) for a in alerts))
    assert len(found[0]) == 5
    assert found[0] == found[1] == found[2]


def test_fetch_workers_is_validated_with_its_line(tmp_path: Path) -> None:
    def load(workers: str) -> Config:
        path = tmp_path / "monitor.yaml"
        path.write_text(f"fetch:\n  timeout_s: 20\n  workers: {workers}\nfeeds: []\n")
        return load_config(path, env={})

    assert load("0").fetch.workers == 0
    assert load("3").fetch.workers == 3
    for bad in ("-1", "65", "two", "1.5"):
        with pytest.raises(ConfigError) as caught:
            load(bad)
        (problem,) = caught.value.problems
        assert problem.line == 3 and problem.message.startswith("fetch.workers"), str(problem)
    cores = len(os.sched_getaffinity(0))
    assert default_fetch_workers() == min(cores, 64)
    assert load("auto").fetch_workers == 0 and Config().fetch.workers == "auto"  # few feeds: in the daemon
    many = [FeedConfig(name=f"f{i}", url=f"https://feeds.example.org/{i}.xml") for i in range(AUTO_WORKERS_FEEDS)]
    assert Config(feeds=many).fetch_workers == default_fetch_workers()  # many feeds: one worker per core
    assert load("3").fetch_workers == 3


def descendants(root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(), [root]
    while todo:
        pid = todo.pop()
        found.update(children.get(pid, []))
        todo.extend(children.get(pid, []))
    return found


async def test_sigterm_stops_the_daemon_and_all_its_worker_processes(
    redis: aioredis.Redis, redis_url: str, tmp_path: Path
) -> None:
    names = [f"feed{i}" for i in range(8)]
    assert {slot_of(n, 2) for n in names} == {0, 1}  # a worker starts with its first feed's poll
    async with FeedServer() as feeds:
        for i, name in enumerate(names):
            feeds.set_feed(f"/{name}.xml", rss(calm(i)))
        lines = "\n".join(f'  - {{name: {n}, url: "{feeds.url(f"/{n}.xml")}", interval_s: 1}}' for n in names)
        path = tmp_path / "monitor.yaml"
        path.write_text(
            f"rules: [{ROOT / 'rules'}]\nfetch: {{allow_private_networks: true, workers: 2}}\n"
            f"feeds:\n{lines}\nalerts: {{sinks: [{{type: console}}]}}\nlog: {{format: json}}\nmetrics: {{port: 0}}\n"
        )
        log = tmp_path / "daemon.log"
        proc = await start_daemon(path, log, REDIS_URL=redis_url, MONITOR_REPLICA="w")
        try:
            started = [await wait_for_log(log, "fetch_worker_started", slot=slot) for slot in (0, 1)]
            for name in names:
                await wait_for_log(log, "feed_fetched", feed=name)
            family = descendants(proc.pid)
        finally:
            code = await stop_daemon(proc)
    assert code == 0
    workers = {event["pid"] for event in started}
    assert workers <= family and len(family) > 2  # the workers, and their parser processes and forkservers
    await wait_until(lambda: not any(alive(pid) for pid in family), 5)
    assert [e["event"] for e in log_events(log) if e.get("event") == "fetch_worker_died"] == []
    assert await redis.get(Keys().feed_lease("feed0")) is None  # released at shutdown


async def wait_until(check: Callable[[], bool], timeout_s: float) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.1)


def test_each_worker_gets_its_share_of_the_fetch_limits_and_two_parser_processes() -> None:
    fetch = FetchConfig(concurrency=32, per_host_concurrency=5, parse_workers=2)
    mine, parsers = worker_share(fetch, 2)
    assert (mine.concurrency, mine.per_host_concurrency, parsers) == (16, 3, 2)
    mine, parsers = worker_share(FetchConfig(concurrency=100, parse_workers=8), 3)
    assert (mine.concurrency, parsers) == (34, 2)
    assert worker_share(FetchConfig(parse_workers=1), 4)[1] == 1


async def _assert_each_escalation_alerted_once(redis: aioredis.Redis) -> None:
    events = [a for a in await alert_log(redis) if a["kind"] == "event"]
    assert sorted(a["articles"][0]["url"] for a in events) == sorted(
        f"https://news.example.org/{i.guid}" for i in ESCALATION
    )


def _signal_after_first_batch(
    app: App,
    workers: FetchWorkers,
    monkeypatch: pytest.MonkeyPatch,
    sig: signal.Signals,
    signalled: list[int],
    settle_s: float = 0.0,
) -> list[ProcessResult]:
    """Send ``sig`` to the worker polling "wire" once the daemon has processed its first batch (before the worker
    hears so); the results the daemon's processor gave, as they come."""
    process_many = app.processor.process_many
    seen: list[ProcessResult] = []

    async def process_then_signal(batches: Sequence[Sequence[Article]]) -> list[ProcessResult]:
        results = await process_many(batches)
        seen.extend(results)
        if len(seen) == 1:
            pid = workers.pid_of("wire")
            assert pid is not None
            os.kill(pid, sig)
            signalled.append(pid)
            await asyncio.sleep(settle_s)
        return results

    monkeypatch.setattr(app.processor, "process_many", process_then_signal)
    return seen


def _serve_held_and_other(feeds: FeedServer, answer: asyncio.Event, asked: asyncio.Event) -> None:
    """ "/held.xml" answers (three escalation stories) only once ``answer`` is set, and sets ``asked`` when asked;
    "/other.xml" has the other escalation stories and a calm one."""

    async def held(request: web.BaseRequest) -> web.Response:
        asked.set()
        await answer.wait()
        return web.Response(body=rss(ESCALATION[:3]), content_type="application/rss+xml", headers={"ETag": '"h1"'})

    feeds.route("/held.xml", held)
    feeds.set_feed("/other.xml", rss(ESCALATION[3:] + calm(1)))
