"""Feeds read at nearly the same moment processed as one batch, oldest story first.

A new feed, a restart after downtime or a burst brings many feeds' backlogs within a second or two. Processed feed
by feed, in whatever order their fetches finish, a later report of a story could open its event (and name it)
before the earlier reports that a live reader would have seen first. ``Coalescer`` holds each batch for a short
window and hands every batch that arrived in it to the processor at once, which orders them all by event time; each
caller gets back the result for its own articles. The cost is the window, added once to an alert's delay.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from monitor.core.models import Article, ProcessResult

__all__ = ["WINDOW_S", "Coalescer"]

#: How long a batch waits for the batches of other feeds read at the same moment.
WINDOW_S = 0.5

ProcessMany = Callable[[Sequence[Sequence[Article]]], Awaitable[list[ProcessResult]]]


class Coalescer:
    """``await coalescer(articles)`` processes ``articles`` with the other batches handed in within ``window_s``
    and returns the result for them; an error of the processor is raised to every caller of that window."""

    def __init__(self, process_many: ProcessMany, window_s: float = WINDOW_S) -> None:
        self._process_many = process_many
        self._window_s = window_s
        self._pending: list[tuple[Sequence[Article], asyncio.Future[ProcessResult]]] = []
        self._flush: asyncio.Task[None] | None = None

    async def __call__(self, articles: Sequence[Article]) -> ProcessResult:
        if not articles:
            return ProcessResult()
        done: asyncio.Future[ProcessResult] = asyncio.get_running_loop().create_future()
        done.add_done_callback(_retrieve)  # a caller cancelled meanwhile leaves no "never retrieved" warning
        self._pending.append((articles, done))
        if self._flush is None:
            self._flush = asyncio.create_task(self._flush_later(), name="coalesce-articles")
        # The window's processing goes on if this caller is cancelled: the other callers wait for it.
        return await asyncio.shield(done)

    async def _flush_later(self) -> None:
        batch: list[tuple[Sequence[Article], asyncio.Future[ProcessResult]]] = []
        try:
            await asyncio.sleep(self._window_s)
            batch, self._pending, self._flush = self._pending, [], None
            results = await self._process_many([articles for articles, _ in batch])
        except asyncio.CancelledError:  # shutting down: the callers are cancelled too
            if not batch:  # still in the window: this task owns what is pending
                batch, self._pending, self._flush = self._pending, [], None
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


def _retrieve(done: asyncio.Future[ProcessResult]) -> None:
    if not done.cancelled():
        done.exception()
