"""Feeds read at nearly the same moment are processed as one batch (``monitor.processing.coalesce``), and the
processor orders such a batch by event time across feeds (``Processor.process_many``)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
import redis.asyncio as aioredis

from monitor.core.models import Article, ProcessResult
from monitor.processing.coalesce import Coalescer
from tests.support.processing import default_processor
from tests.test_events import MATCHER, FakeClock, article, events_of


def _batch(*ids: str) -> list[Article]:
    return [article(i, f"headline {i}", "") for i in ids]


async def test_batches_of_one_window_go_to_the_processor_together_and_each_gets_its_own_result() -> None:
    calls: list[list[list[str]]] = []

    async def process_many(batches: Sequence[Sequence[Article]]) -> list[ProcessResult]:
        calls.append([[a.id for a in batch] for batch in batches])
        return [ProcessResult(articles=len(batch)) for batch in batches]

    coalescer = Coalescer(process_many, window_s=0.05)
    first, second, empty = await asyncio.gather(coalescer(_batch("a", "b")), coalescer(_batch("c")), coalescer([]))
    assert calls == [[["u:a", "u:b"], ["u:c"]]]  # one call for the window; the empty batch never waits
    assert (first.articles, second.articles, empty.articles) == (2, 1, 0)
    later = await coalescer(_batch("d"))  # a batch after the window has one of its own
    assert later.articles == 1 and len(calls) == 2


async def test_a_burst_is_gathered_until_it_goes_quiet_but_never_beyond_the_limit() -> None:
    calls: list[int] = []

    async def process_many(batches: Sequence[Sequence[Article]]) -> list[ProcessResult]:
        calls.append(len(batches))
        return [ProcessResult(articles=len(batch)) for batch in batches]

    async def burst(coalescer: Coalescer, count: int, gap: float) -> None:
        waiting = []
        for i in range(count):  # each batch arrives before the quiet time after the last one has passed
            waiting.append(asyncio.create_task(coalescer(_batch(f"b{i}"))))
            await asyncio.sleep(gap)
        await asyncio.gather(*waiting)

    await burst(Coalescer(process_many, window_s=0.2, max_wait_s=5.0), 6, 0.05)
    assert calls == [6]  # one gathering, though it lasted longer than the quiet time
    calls.clear()
    await burst(Coalescer(process_many, window_s=0.2, max_wait_s=0.3), 12, 0.05)
    assert len(calls) >= 2 and sum(calls) == 12  # the limit ends a gathering that never goes quiet


async def test_a_gathering_ends_at_once_when_every_poll_under_way_has_handed_its_batch_in() -> None:
    async def process_many(batches: Sequence[Sequence[Article]]) -> list[ProcessResult]:
        return [ProcessResult(articles=len(batch)) for batch in batches]

    coalescer = Coalescer(process_many, window_s=5.0, max_wait_s=5.0)
    coalescer.in_flight = lambda: 1  # one feed polled at a time: nothing else can come
    loop = asyncio.get_running_loop()
    began = loop.time()
    assert (await coalescer(_batch("a"))).articles == 1
    assert loop.time() - began < 1.0  # not the five seconds of quiet


async def test_an_error_reaches_every_caller_of_the_window_and_a_cancelled_caller_does_not_stop_the_rest() -> None:
    async def failing(batches: Sequence[Sequence[Article]]) -> list[ProcessResult]:
        raise RuntimeError("redis down")

    coalescer = Coalescer(failing, window_s=0.05)
    results = await asyncio.gather(coalescer(_batch("a")), coalescer(_batch("b")), return_exceptions=True)
    assert [str(r) for r in results] == ["redis down", "redis down"]

    seen: list[str] = []

    async def recording(batches: Sequence[Sequence[Article]]) -> list[ProcessResult]:
        seen.extend(a.id for batch in batches for a in batch)
        return [ProcessResult(articles=len(batch)) for batch in batches]

    coalescer = Coalescer(recording, window_s=0.05)
    gone = asyncio.create_task(coalescer(_batch("x")))
    stays = asyncio.create_task(coalescer(_batch("y")))
    await asyncio.sleep(0.01)
    gone.cancel()
    assert (await stays).articles == 1
    with pytest.raises(asyncio.CancelledError):
        await gone
    assert seen == ["u:x", "u:y"]  # the cancelled caller's articles were still processed with the window


async def test_a_backlog_from_two_feeds_is_read_oldest_story_first_across_feeds(redis: aioredis.Redis) -> None:
    """The later report (a reaction typed another way) comes from one feed, the first report of the strike from
    another; processed as one batch, the strike opens the event and names it, as it did live."""
    clock = FakeClock(moment=datetime(2024, 2, 8, 12, 0, tzinfo=UTC))
    processor = default_processor(redis, MATCHER, clock)
    at = clock.now() - timedelta(hours=6)
    strike = article(
        "s1",
        "US drone strike in Baghdad kills Kataib Hezbollah commander",
        "A US strike on a car in the Mashtal district of Baghdad killed a senior Kataib Hezbollah leader.",
        feed="wire-a",
        at=at,
    )
    reaction = article(
        "s2",
        "Iraq condemns US strike that killed Kataib Hezbollah figure in Baghdad",
        "The Pentagon confirmed the strike in Baghdad; the Iraqi government called it a violation of sovereignty.",
        feed="outlet-c",
        at=at + timedelta(hours=3),
    )
    late_feed, early_feed = await processor.process_many([[reaction], [strike]])
    assert early_feed.alerted == 1 and late_feed.alerted == 0
    assert early_feed.placed[0][1] == late_feed.placed[0][1]
    alerts = await events_of(redis)
    assert alerts[0]["articles"][0]["url"] == strike.url


async def _two_polls(coalescer: Coalescer, gap_s: float) -> list[list[str]]:
    """Two polls under way; the second hands its batch in ``gap_s`` after the first. The calls the processor got."""
    coalescer.in_flight = lambda: 2
    first = asyncio.create_task(coalescer(_batch("a")))
    await asyncio.sleep(gap_s)
    await asyncio.gather(first, coalescer(_batch("b")))
    return CALLS


CALLS: list[list[str]] = []


async def _recorded(batches: Sequence[Sequence[Article]]) -> list[ProcessResult]:
    CALLS.append([a.id for batch in batches for a in batch])
    return [ProcessResult(articles=len(batch)) for batch in batches]


async def test_a_poll_still_under_way_is_waited_for_past_the_quiet_time() -> None:
    """A slow feed's backlog still joins the gathering when it comes after a quiet moment, within the limit."""
    CALLS.clear()
    calls = await _two_polls(Coalescer(_recorded, window_s=0.05, max_wait_s=2.0), 0.3)
    assert calls == [["u:a", "u:b"]]


async def test_a_gathering_of_old_stories_waits_longer_than_one_with_fresh_news() -> None:
    """Old stories only (a restart after downtime): order matters more than seconds, so the gathering waits for
    the slow poll past ``max_wait_s``; with a story published minutes ago it does not."""
    published = article("x", "x", "").published
    assert published is not None
    CALLS.clear()
    old = Coalescer(_recorded, window_s=0.05, max_wait_s=0.2, now=lambda: published + timedelta(hours=2),
                    backlog_wait_s=3.0)  # fmt: skip
    assert await _two_polls(old, 0.6) == [["u:a", "u:b"]]
    CALLS.clear()
    fresh = Coalescer(_recorded, window_s=0.05, max_wait_s=0.2, now=lambda: published + timedelta(minutes=5),
                      backlog_wait_s=3.0)  # fmt: skip
    assert await _two_polls(fresh, 0.6) == [["u:a"], ["u:b"]]


async def test_a_gathering_ends_when_it_holds_as_many_batches_as_are_fetched_at_once() -> None:
    """Polls give their fetch slot back while they wait here, so a burst that never goes quiet is processed in
    gatherings of ``max_batches``, not held in memory until the time limit."""
    sizes: list[int] = []

    async def process_many(batches: Sequence[Sequence[Article]]) -> list[ProcessResult]:
        sizes.append(len(batches))
        return [ProcessResult(articles=len(batch)) for batch in batches]

    coalescer = Coalescer(process_many, window_s=1.0, max_wait_s=10.0, max_batches=3)
    loop = asyncio.get_running_loop()
    began = loop.time()
    waiting = []
    for n in range(7):
        waiting.append(asyncio.create_task(coalescer(_batch(str(n)))))
        await asyncio.sleep(0.05)
    results = await asyncio.gather(*waiting)
    assert [r.articles for r in results] == [1] * 7
    assert sizes == [3, 3, 1]
    assert loop.time() - began < 5.0  # the last gathering ends on its quiet time, not on the ten-second limit


async def test_a_backlog_waits_for_a_quiet_moment_even_when_every_poll_under_way_is_in() -> None:
    """Old stories: the polls under way are in, but a feed polled a moment later brings more of the same backlog;
    the gathering waits for a quiet moment (within ``max_wait_s``) and reads both in one order. Fresh news does
    not wait."""
    published = article("x", "x", "").published
    assert published is not None
    for now, expected in ((published + timedelta(hours=2), [["u:a", "u:b"]]),
                          (published + timedelta(minutes=5), [["u:a"], ["u:b"]])):  # fmt: skip
        CALLS.clear()
        coalescer = Coalescer(_recorded, window_s=0.3, max_wait_s=2.0, now=lambda now=now: now, backlog_wait_s=3.0)
        coalescer.in_flight = lambda: 1  # one poll under way at each moment
        first = asyncio.create_task(coalescer(_batch("a")))
        await asyncio.sleep(0.1)
        await asyncio.gather(first, coalescer(_batch("b")))
        calls = list(CALLS)
        assert calls == expected
