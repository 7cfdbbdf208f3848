"""Feed parsing in worker processes with memory and time limits.

A hostile feed can make a parser use a great deal of memory or time. Each worker process runs with an
address-space limit (``RLIMIT_AS``) and exits when the daemon is gone, and each parse has a
deadline; a worker that runs out of memory answers with an error, and one that overruns its deadline or dies is
replaced, so the daemon itself never goes down with a feed. Only one large body (over ``LARGE_BODY``) is parsed
at a time: the memory a parse needs grows with the body, so this bounds the workers' peak together, and the other
workers keep parsing the ordinary feeds meanwhile; after it, the next parses go to fresh workers (the old ones finish
what they hold and exit), so no worker keeps the heap of its largest parse. ``workers=0`` parses in a thread
instead (``monitor scan`` and small tools).

Replacing a worker means replacing the pool (``concurrent.futures`` cannot stop one task), so the parses that
were running or queued beside the stuck one are sent once more to the new pool rather than failed.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import multiprocessing
import os
import resource
import signal
from collections.abc import Callable, Mapping
from concurrent.futures.process import BrokenProcessPool
from datetime import datetime
from typing import Any

import structlog

from monitor.core.errors import ParseError
from monitor.core.limits import LARGE_BODY
from monitor.core.memory import limit_heap_growth, release_free_memory
from monitor.core.models import Article
from monitor.parsing.feed import MAX_INFLATED_BYTES, parse_feed, parse_feed_async
from monitor.parsing.telegram import ChannelPage, parse_channel_page

__all__ = ["ParserPool"]

log = structlog.get_logger(__name__)

#: How often a worker checks that the daemon is still there.
_WATCH_S = 1.0


def _init_worker(memory_mb: int, log_level: str, log_format: str, daemon_pid: int) -> None:
    limit_heap_growth()
    limit = memory_mb * 1024 * 1024
    with contextlib.suppress(ValueError, OSError):  # some sandboxes forbid lowering limits; parse anyway
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    _watch_daemon(daemon_pid)
    # A fresh process: log as the daemon does (JSON on stderr), not structlog's default console output.
    from monitor.core.logs import configure_logging

    configure_logging(level=log_level, fmt=log_format)


def _watch_daemon(daemon_pid: int) -> None:
    """Exit once the daemon is gone, even if it was SIGKILLed. The workers' parent is the forkserver, which stays
    up as long as any worker does, and a worker waiting for work never sees its queue close (it holds both ends),
    so neither notices by itself. A timer signal, not a thread: a thread would take its own malloc arena out of
    the address-space limit."""

    def check(signum: int, frame: object) -> None:
        try:
            os.kill(daemon_pid, 0)
        except ProcessLookupError:
            os._exit(0)
        except PermissionError:
            pass  # alive, under another user (cannot happen for our own parent, but never exit on a guess)

    signal.signal(signal.SIGALRM, check)
    signal.setitimer(signal.ITIMER_REAL, _WATCH_S, _WATCH_S)


def _parse(
    body: bytes, headers: dict[str, str], feed: str, url: str, fetched: datetime, max_inflated: int
) -> list[Article] | tuple[str, str]:
    """Runs in the worker; errors come back as ("error", reason): our exceptions do not cross processes."""
    try:
        return parse_feed(body, headers=headers, feed=feed, url=url, fetched=fetched, max_inflated=max_inflated)
    except ParseError as exc:
        return ("error", exc.reason)
    except MemoryError:
        return ("error", "the feed needed more memory than a parser worker may use")
    finally:
        if len(body) > LARGE_BODY or body[:2] == b"\x1f\x8b":  # large, or inflated from gzip
            release_free_memory()


def _parse_channel(
    body: bytes, headers: dict[str, str], feed: str, channel: str, url: str, fetched: datetime
) -> ChannelPage | tuple[str, str]:
    """A Telegram channel page, in the worker (see ``monitor.parsing.telegram``); errors as in ``_parse``."""
    try:
        return parse_channel_page(body, headers=headers, feed=feed, channel=channel, url=url, fetched=fetched)
    except ParseError as exc:
        return ("error", exc.reason)
    except MemoryError:
        return ("error", "the page needed more memory than a parser worker may use")


class _Replaced(Exception):
    """The pool this parse was sent to was replaced because of another feed."""


class ParserPool:
    def __init__(
        self,
        *,
        workers: int,
        memory_mb: int,
        timeout_s: float,
        max_inflated: int = MAX_INFLATED_BYTES,
        log_level: str = "info",
        log_format: str = "json",
    ) -> None:
        self.workers = workers
        self.memory_mb = memory_mb
        self.timeout_s = timeout_s
        self.max_inflated = max_inflated
        self._log = (log_level, log_format)
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        self._large: asyncio.Semaphore | None = None
        self._closed = False

    def _executor(self) -> concurrent.futures.ProcessPoolExecutor:
        if self._pool is None:
            # forkserver: workers start from a clean process, not a copy of the daemon's threads and sockets.
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(["monitor.parsing.feed", "monitor.parsing.telegram"])
            self._pool = concurrent.futures.ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=context,
                initializer=_init_worker,
                initargs=(self.memory_mb, *self._log, os.getpid()),
            )
        return self._pool

    def _discard(self, pool: concurrent.futures.ProcessPoolExecutor | None) -> None:
        """Kill the workers of ``pool`` (one is stuck or dead) unless it was replaced already; the next parse
        starts fresh ones."""
        if pool is None or pool is not self._pool:
            return
        self._pool = None
        _kill(pool)

    def _retire(self, pool: concurrent.futures.ProcessPoolExecutor) -> None:
        """After a large body: new workers for the next parses, while this pool's finish what they hold and exit.
        A worker's heap keeps the high-water mark of the largest parse it made (Python's object arenas are not
        trimmed), and a large parse is what sets it."""
        if pool is not self._pool:
            return
        self._pool = None
        pool.shutdown(wait=False)

    async def parse(
        self, body: bytes, *, headers: Mapping[str, str], feed: str, url: str, fetched: datetime
    ) -> list[Article]:
        if self.workers == 0:
            return await parse_feed_async(body, headers=headers, feed=feed, url=url, fetched=fetched)
        args = (body, dict(headers), feed, url, fetched, self.max_inflated)
        result: list[Article] = await self._run(_parse, args, feed=feed, url=url, size=len(body))
        return result

    async def parse_channel(
        self, body: bytes, *, headers: Mapping[str, str], feed: str, channel: str, url: str, fetched: datetime
    ) -> ChannelPage:
        """A Telegram channel preview page (``monitor.parsing.telegram``), with the limits of every parse."""
        if self.workers == 0:
            return await asyncio.to_thread(
                parse_channel_page, body, headers=headers, feed=feed, channel=channel, url=url, fetched=fetched
            )
        args = (body, dict(headers), feed, channel, url, fetched)
        page: ChannelPage = await self._run(_parse_channel, args, feed=feed, url=url, size=len(body))
        return page

    async def _run(self, task: Callable[..., Any], args: tuple[Any, ...], *, feed: str, url: str, size: int) -> Any:
        if self._closed:
            raise ParseError(url, "the parser workers were stopped (the daemon is stopping)")
        if size <= LARGE_BODY:
            return await self._parse_retrying(task, args, feed, url, size)
        if self._large is None:
            self._large = asyncio.Semaphore(1)
        async with self._large:
            return await self._parse_retrying(task, args, feed, url, size)

    async def _parse_retrying(
        self, task: Callable[..., Any], args: tuple[Any, ...], feed: str, url: str, size: int
    ) -> Any:
        try:
            return await self._parse_once(task, args, feed, url, size)
        except _Replaced as exc:
            if self._closed:
                raise ParseError(url, "the parser workers were stopped (the daemon is stopping)") from exc
            log.info("parse_resent", feed=feed, reason="its worker was replaced because of another feed")
        try:
            return await self._parse_once(task, args, feed, url, size)
        except _Replaced as exc:
            raise ParseError(url, "the parser workers were replaced twice during this parse") from exc

    async def _parse_once(self, task: Callable[..., Any], args: tuple[Any, ...], feed: str, url: str, size: int) -> Any:
        loop = asyncio.get_running_loop()
        pool = self._executor()
        timeout_s = self.timeout_s  # the deadline of this parse, and the one its error names
        try:
            future = loop.run_in_executor(pool, task, *args)
        except RuntimeError as exc:
            if pool is not self._pool:  # submitted just as another parse replaced this pool
                raise _Replaced from exc
            raise ParseError(url, f"no parser worker could start: {exc}") from exc
        try:
            result = await asyncio.wait_for(future, timeout_s)
        except TimeoutError as exc:
            if pool is not self._pool:
                raise _Replaced from exc
            self._discard(pool)
            log.warning("parser_worker_replaced", feed=feed, reason="timeout")
            raise ParseError(url, f"parsing took longer than {timeout_s:g} s") from exc
        except BrokenProcessPool as exc:
            if pool is not self._pool:
                raise _Replaced from exc
            self._discard(pool)
            log.warning("parser_worker_replaced", feed=feed, reason="worker died")
            raise ParseError(url, "the parser worker died (the feed may be hostile)") from exc
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # this poll itself is being cancelled (shutdown)
            raise _Replaced from None  # the replaced pool cancelled its queue
        if size > LARGE_BODY:
            self._retire(pool)
        if isinstance(result, tuple):
            raise ParseError(url, result[1])
        return result

    def close(self) -> None:
        """Stop the workers now: a parse still running is of no use to a daemon that is stopping."""
        self._closed = True
        pool, self._pool = self._pool, None
        if pool is not None:
            _kill(pool)


def _kill(pool: concurrent.futures.ProcessPoolExecutor) -> None:
    # The executor has no public way to stop a running task; its processes are killed directly.
    for process in list(getattr(pool, "_processes", {}).values()):
        with contextlib.suppress(Exception):
            process.kill()
    pool.shutdown(wait=False, cancel_futures=True)
