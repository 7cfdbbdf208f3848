"""Fetch slots bound fetching and parsing, not processing: a poll waiting for its articles to be processed (a batch
the ``Coalescer`` is still gathering) gives its slot to the next feed, and past a bound keeps it (real HTTP on
loopback, real Redis)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

import redis.asyncio as aioredis

from monitor.config import FeedConfig, FetchConfig
from monitor.core.clock import SystemClock
from monitor.core.models import Article, ProcessResult
from monitor.fetching.fetcher import Fetcher
from monitor.fetching.poller import FeedPoller
from monitor.network.guard import make_session
from monitor.parsing.pool import ParserPool
from monitor.storage.keys import Keys
from monitor.storage.pollstate import PollState
from tests.support.articles import ESCALATION, rss
from tests.support.feedserver import FeedServer


@dataclass
class Rig:
    """A poller with one fetch slot over feeds a, b, c (one story each); feed a's articles are held in processing
    until ``release`` is set (``waiting`` is set once they are)."""

    poller: FeedPoller
    feeds: FeedServer
    release: asyncio.Event = field(default_factory=asyncio.Event)
    waiting: asyncio.Event = field(default_factory=asyncio.Event)
    handled: list[str] = field(default_factory=list)

    def poll(self, name: str) -> asyncio.Task[ProcessResult | None]:
        return asyncio.create_task(self.poller.poll(FeedConfig(name=name, url=self.feeds.url(f"/{name}.xml"))))


@contextlib.asynccontextmanager
async def rig(redis: aioredis.Redis, namespace: str, handing: int) -> AsyncIterator[Rig]:
    fetch = FetchConfig(allow_private_networks=True, concurrency=1, timeout_s=5)
    clock = SystemClock()
    handled: list[str] = []
    release, waiting = asyncio.Event(), asyncio.Event()

    async def handle(articles: Sequence[Article]) -> ProcessResult:
        handled.append(articles[0].feed)
        if articles[0].feed == "a":
            waiting.set()
            await release.wait()
        return ProcessResult(articles=len(articles))

    async with FeedServer() as feeds:
        for name, item in zip("abc", ESCALATION, strict=False):
            feeds.set_feed(f"/{name}.xml", rss([item]))
        session = make_session(fetch)
        poller = FeedPoller(
            store=PollState(redis, Keys(namespace)), fetcher=Fetcher(session, fetch, clock=clock),
            parser=ParserPool(workers=0, memory_mb=256, timeout_s=10), handle=handle, fetch=fetch, clock=clock,
            _slots=asyncio.Semaphore(1), _handing=asyncio.Semaphore(handing),
        )  # fmt: skip
        try:
            yield Rig(poller, feeds, release, waiting, handled)
        finally:
            await session.close()


async def test_a_poll_waiting_for_its_articles_to_be_processed_does_not_hold_its_fetch_slot(
    redis: aioredis.Redis,
) -> None:
    """One fetch slot. Feed a's articles wait to be processed; feed b is fetched, parsed and processed meanwhile,
    and a's poll is still counted as under way (the ``Coalescer`` waits for it) until its articles are done."""
    async with rig(redis, "slots", handing=8) as r:
        first = r.poll("a")
        await asyncio.wait_for(r.waiting.wait(), timeout=10)
        second = await asyncio.wait_for(r.poll("b"), timeout=10)
        assert second is not None and second.articles == 1 and r.handled == ["a", "b"]
        assert r.poller.active == 1  # a: its articles handed in, not yet processed
        r.release.set()
        done = await first
        assert done is not None and done.articles == 1 and r.poller.active == 0


async def test_when_processing_falls_behind_a_parsed_feed_keeps_its_fetch_slot(redis: aioredis.Redis) -> None:
    """One fetch slot and room for one poll waiting to be processed: while a's articles wait, the next feed is
    fetched and parsed but keeps its slot until a is done, so the third is not fetched at all meanwhile. Parsed
    feeds in memory stay bounded however far the processor falls behind."""
    async with rig(redis, "behind", handing=1) as r:
        polls = [r.poll(name) for name in "abc"]
        await asyncio.wait_for(r.waiting.wait(), timeout=10)
        await asyncio.sleep(0.5)  # time enough for b and c to be fetched, were there room
        assert r.handled == ["a"] and not any(p.done() for p in polls)
        assert r.poller.active == 2  # a waiting to be processed, the next holding the slot; the third waits for it
        r.release.set()
        results = await asyncio.wait_for(asyncio.gather(*polls), timeout=10)
        assert [res.articles for res in results if res is not None] == [1, 1, 1]
        assert r.handled[0] == "a" and sorted(r.handled) == ["a", "b", "c"]
