"""Feed parsing in worker processes with memory and time limits.

feedparser is pure Python and a hostile feed can make it use a great deal of memory or time. Each worker process
runs with an address-space limit (``RLIMIT_AS``), and each parse with a deadline; a worker that runs out of memory
answers with an error, and one that overruns its deadline or dies is replaced, so the daemon itself never goes
down with a feed. ``workers=0`` parses in a thread instead (``monitor scan`` and small tools).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import multiprocessing
import resource
from collections.abc import Mapping
from concurrent.futures.process import BrokenProcessPool
from datetime import datetime

import structlog

from monitor.errors import ParseError
from monitor.models import Article
from monitor.parse import parse_feed, parse_feed_async

__all__ = ["ParserPool"]

log = structlog.get_logger(__name__)


def _limit_memory(memory_mb: int) -> None:
    limit = memory_mb * 1024 * 1024
    with contextlib.suppress(ValueError, OSError):  # some sandboxes forbid lowering limits; parse anyway
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _parse(
    body: bytes, headers: dict[str, str], feed: str, url: str, fetched: datetime
) -> list[Article] | tuple[str, str]:
    """Runs in the worker; errors come back as ("error", reason): our exceptions do not cross processes."""
    try:
        return parse_feed(body, headers=headers, feed=feed, url=url, fetched=fetched)
    except ParseError as exc:
        return ("error", exc.reason)
    except MemoryError:
        return ("error", "the feed needed more memory than a parser worker may use")


class ParserPool:
    def __init__(self, *, workers: int, memory_mb: int, timeout_s: float) -> None:
        self.workers = workers
        self.memory_mb = memory_mb
        self.timeout_s = timeout_s
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None

    def _executor(self) -> concurrent.futures.ProcessPoolExecutor:
        if self._pool is None:
            # forkserver: workers start from a clean process, not a copy of the daemon's threads and sockets.
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(["monitor.parse"])
            self._pool = concurrent.futures.ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=context,
                initializer=_limit_memory,
                initargs=(self.memory_mb,),
            )
        return self._pool

    def _discard(self) -> None:
        """Kill the workers (one is stuck or dead); the next parse starts fresh ones."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        # The executor has no public way to stop a running task; its processes are killed directly.
        for process in list(getattr(pool, "_processes", {}).values()):
            with contextlib.suppress(Exception):
                process.kill()
        pool.shutdown(wait=False, cancel_futures=True)

    async def parse(
        self, body: bytes, *, headers: Mapping[str, str], feed: str, url: str, fetched: datetime
    ) -> list[Article]:
        if self.workers == 0:
            return await parse_feed_async(body, headers=headers, feed=feed, url=url, fetched=fetched)
        loop = asyncio.get_running_loop()
        try:
            future = loop.run_in_executor(self._executor(), _parse, body, dict(headers), feed, url, fetched)
            result = await asyncio.wait_for(future, self.timeout_s)
        except TimeoutError as exc:
            self._discard()
            log.warning("parser_worker_replaced", feed=feed, reason="timeout")
            raise ParseError(url, f"parsing took longer than {self.timeout_s:g} s") from exc
        except BrokenProcessPool as exc:
            self._discard()
            log.warning("parser_worker_replaced", feed=feed, reason="worker died")
            raise ParseError(url, "the parser worker died (the feed may be hostile)") from exc
        if isinstance(result, tuple):
            raise ParseError(url, result[1])
        return result

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
