"""Fetch slots bound fetching and parsing, not processing: a poll waiting for its articles to be processed (a batch
the ``Coalescer`` is still gathering) gives its slot to the next feed (real HTTP on loopback, real Redis)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

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


async def test_a_poll_waiting_for_its_articles_to_be_processed_does_not_hold_its_fetch_slot(
    redis: aioredis.Redis,
) -> None:
    """One fetch slot. Feed a's articles wait to be processed; feed b is fetched, parsed and processed meanwhile,
    and a's poll is still counted as under way (the ``Coalescer`` waits for it) until its articles are done."""
    release, waiting = asyncio.Event(), asyncio.Event()
    handled: list[str] = []

    async def handle(articles: Sequence[Article]) -> ProcessResult:
        handled.append(articles[0].feed)
        if articles[0].feed == "a":
            waiting.set()
            await release.wait()
        return ProcessResult(articles=len(articles))

    fetch = FetchConfig(allow_private_networks=True, concurrency=1, timeout_s=5)
    clock = SystemClock()
    async with FeedServer() as feeds:
        feeds.set_feed("/a.xml", rss(ESCALATION[:1]))
        feeds.set_feed("/b.xml", rss(ESCALATION[1:2]))
        session = make_session(fetch)
        parser = ParserPool(workers=0, memory_mb=256, timeout_s=10)
        poller = FeedPoller(
            store=PollState(redis, Keys("slots")), fetcher=Fetcher(session, fetch, clock=clock), parser=parser,
            handle=handle, fetch=fetch, clock=clock, _slots=asyncio.Semaphore(fetch.concurrency),
        )  # fmt: skip
        try:
            first = asyncio.create_task(poller.poll(FeedConfig(name="a", url=feeds.url("/a.xml"))))
            await asyncio.wait_for(waiting.wait(), timeout=10)
            second = await asyncio.wait_for(poller.poll(FeedConfig(name="b", url=feeds.url("/b.xml"))), timeout=10)
            assert second is not None and second.articles == 1 and handled == ["a", "b"]
            assert poller.active == 1  # a: its articles handed in, not yet processed
            release.set()
            done = await first
            assert done is not None and done.articles == 1 and poller.active == 0
        finally:
            await session.close()


async def test_when_processing_falls_behind_a_parsed_feed_keeps_its_fetch_slot(redis: aioredis.Redis) -> None:
    """One fetch slot and room for one poll waiting to be processed: while a's articles wait, the next feed is
    fetched and parsed but keeps its slot until a is done, so the third is not fetched at all meanwhile. Parsed
    feeds in memory stay bounded however far the processor falls behind."""
    release, waiting = asyncio.Event(), asyncio.Event()
    handled: list[str] = []

    async def handle(articles: Sequence[Article]) -> ProcessResult:
        handled.append(articles[0].feed)
        if articles[0].feed == "a":
            waiting.set()
            await release.wait()
        return ProcessResult(articles=len(articles))

    fetch = FetchConfig(allow_private_networks=True, concurrency=1, timeout_s=5)
    clock = SystemClock()
    async with FeedServer() as feeds:
        for name, item in zip("abc", ESCALATION, strict=False):
            feeds.set_feed(f"/{name}.xml", rss([item]))
        session = make_session(fetch)
        parser = ParserPool(workers=0, memory_mb=256, timeout_s=10)
        poller = FeedPoller(
            store=PollState(redis, Keys("behind")), fetcher=Fetcher(session, fetch, clock=clock), parser=parser,
            handle=handle, fetch=fetch, clock=clock, _slots=asyncio.Semaphore(1), _handing=asyncio.Semaphore(1),
        )  # fmt: skip
        try:
            polls = [
                asyncio.create_task(poller.poll(FeedConfig(name=name, url=feeds.url(f"/{name}.xml")))) for name in "abc"
            ]
            await asyncio.wait_for(waiting.wait(), timeout=10)
            await asyncio.sleep(0.5)  # time enough for b and c to be fetched, were there room
            assert handled == ["a"] and not any(p.done() for p in polls)
            assert poller.active == 2  # a waiting to be processed, the next holding the slot; the third waits for it
            release.set()
            results = await asyncio.wait_for(asyncio.gather(*polls), timeout=10)
            assert [r.articles for r in results if r is not None] == [1, 1, 1]
            assert handled[0] == "a" and sorted(handled) == ["a", "b", "c"]
        finally:
            await session.close()
