"""Feeds read at nearly the same moment processed as one batch, oldest story first.

A new feed, a restart after downtime or a burst brings many feeds' backlogs within a second or two. Processed feed
by feed, in whatever order their fetches finish, a later report of a story could open its event (and name it)
before the earlier reports that a live reader would have seen first. ``Coalescer`` holds each batch until no other
has arrived for a short quiet time (at most a few seconds from the first), and hands every batch gathered so to the
processor at once, which orders them all by event time; each caller gets back the result for its own articles. The
cost is the quiet time, added once to an alert's delay (more during a burst, never beyond the limit).

A gathering ends once it holds ``max_batches`` batches (the feeds fetched at once, ``fetch.concurrency``): polls
give their fetch slot back while they wait here, so without a bound a long burst would hold every parsed feed in
memory.

When the polls under way are known (``in_flight``), a gathering waits for every one of them (up to the limit), not
only for a quiet moment: a slow feed's backlog still comes in before the story it reports first is opened by a
faster feed's later report. A gathering of old stories only (a new feed, a restart after downtime: nothing published
in the last ``FRESH_S``) may wait up to ``BACKLOG_WAIT_S``, since there order matters more than seconds; and
once every poll under way is in, it still waits for a quiet moment (``WINDOW_S``, within ``MAX_WAIT_S``), since
the feeds polled a moment later bring the rest of the same backlog (feeds that were empty a cycle before, a
flood after an outage).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta

from monitor.core.models import Article, ProcessResult

__all__ = ["BACKLOG_WAIT_S", "FRESH_S", "MAX_WAIT_S", "WINDOW_S", "Coalescer"]

#: How long without a new batch ends the gathering: the batches of feeds read at the same moment come closer.
WINDOW_S = 0.5
#: How long the first batch gathered waits at most, however many follow it.
MAX_WAIT_S = 2.0
#: How long a gathering of old stories only waits at most for the polls under way.
BACKLOG_WAIT_S = 8.0
#: A story published this long before now is old: its alert is not waited for by anyone.
FRESH_S = 3600.0
#: How often a gathering looks again at the polls under way (a poll may end without handing anything in).
_TICK_S = 0.05

ProcessMany = Callable[[Sequence[Sequence[Article]]], Awaitable[list[ProcessResult]]]


class Coalescer:
    """``await coalescer(articles)`` processes ``articles`` with the other batches handed in until ``window_s``
    passes without one (or ``max_wait_s`` after the first) and returns the result for them; an error of the
    processor is raised to every caller of that gathering."""

    def __init__(
        self,
        process_many: ProcessMany,
        window_s: float = WINDOW_S,
        max_wait_s: float = MAX_WAIT_S,
        *,
        now: Callable[[], datetime] | None = None,
        backlog_wait_s: float = BACKLOG_WAIT_S,
        max_batches: int | None = None,
    ) -> None:
        #: How many polls are under way (each will hand in a batch or none); when every one of them has handed its
        #: batch in, nothing more can come and the gathering ends at once. None: unknown, the quiet time decides.
        self.in_flight: Callable[[], int] | None = None
        self._process_many = process_many
        self._window_s = window_s
        self._max_wait_s = max(window_s, max_wait_s)
        #: The clock that tells old stories (None: every gathering is limited to ``max_wait_s``).
        self._now = now
        self._backlog_wait_s = max(self._max_wait_s, backlog_wait_s)
        self._max_batches = max_batches
        self._pending: list[tuple[Sequence[Article], asyncio.Future[ProcessResult]]] = []
        self._flush: asyncio.Task[None] | None = None
        self._arrived = asyncio.Event()  # set by each batch handed in (it wakes the gathering)
        self._last = 0.0  # when (loop time) the last batch was handed in
        self._fresh = False  # whether a batch pending holds a story that is not old (see ``_is_old``)

    async def __call__(self, articles: Sequence[Article]) -> ProcessResult:
        if not articles:
            return ProcessResult()
        done: asyncio.Future[ProcessResult] = asyncio.get_running_loop().create_future()
        done.add_done_callback(_retrieve)  # a caller cancelled meanwhile leaves no "never retrieved" warning
        self._pending.append((articles, done))
        self._fresh = self._fresh or not self._is_old(articles)
        self._last = asyncio.get_running_loop().time()
        self._arrived.set()
        if self._flush is None:
            self._flush = asyncio.create_task(self._flush_later(), name="coalesce-articles")
        # The window's processing goes on if this caller is cancelled: the other callers wait for it.
        return await asyncio.shield(done)

    async def _flush_later(self) -> None:
        batch: list[tuple[Sequence[Article], asyncio.Future[ProcessResult]]] = []
        try:
            await self._gather()
            batch = self._take()
            results = await self._process_many([articles for articles, _ in batch])
        except asyncio.CancelledError:  # shutting down: the callers are cancelled too
            if not batch:  # still in the window: this task owns what is pending
                batch = self._take()
            for _, done in batch:
                done.cancel()
            raise
        except Exception as exc:  # every caller hears of it, as it would have processing alone
            for _, done in batch:
                if not done.done():
                    done.set_exception(exc)
            return
        for (_, done), result in zip(batch, results, strict=True):
            if not done.done():
                done.set_result(result)

    async def _gather(self) -> None:
        """Wait until every poll under way has handed its batch in (when they are known; with old stories only,
        and then ``window_s`` without a new batch, within ``max_wait_s``), else until ``window_s`` has passed without
        a new batch; at most ``max_wait_s`` since this gathering began (``backlog_wait_s`` while it holds old
        stories only), and no longer than until it holds ``max_batches``."""
        loop = asyncio.get_running_loop()
        began = loop.time()
        while True:
            if self._max_batches is not None and len(self._pending) >= self._max_batches:
                return  # as many feeds as are fetched at once: process them, and go on gathering
            now = loop.time()
            deadline = began + (self._max_wait_s if self._fresh else self._backlog_wait_s)
            if self.in_flight is not None:
                if len(self._pending) < self.in_flight():
                    end = deadline
                elif self._fresh:
                    return  # every poll under way has handed its batch in
                else:
                    # Old stories: the feeds due next (polled a moment later, with their jitter) may bring more of
                    # the same backlog, so a quiet moment must pass too, within ``max_wait_s``.
                    end = min(self._last + self._window_s, began + self._max_wait_s)
            else:
                end = min(self._last + self._window_s, deadline)
            if now >= end:
                return
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), timeout=min(_TICK_S, end - now))

    def _take(self) -> list[tuple[Sequence[Article], asyncio.Future[ProcessResult]]]:
        """What this gathering holds; the next one starts empty."""
        batch, self._pending, self._flush, self._fresh = self._pending, [], None, False
        return batch

    def _is_old(self, articles: Sequence[Article]) -> bool:
        """Whether every article was published more than ``FRESH_S`` ago (one without a date is not old; without a
        clock, none is)."""
        if self._now is None:
            return False
        cutoff = self._now() - timedelta(seconds=FRESH_S)
        return all(a.published is not None and a.published < cutoff for a in articles)


def _retrieve(done: asyncio.Future[ProcessResult]) -> None:
    if not done.cancelled():
        done.exception()
