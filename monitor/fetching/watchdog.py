"""Fetch workers that hang: each worker says it is alive every ``BEAT_S`` seconds; the daemon kills one it has not
heard from for ``hang_after_s`` (the fetch timeout and a few heartbeats).

A worker that dies is seen at once, its channel ending (``monitor.fetching.workers``). One that stops answering
without exiting (``SIGSTOP``, a loop stuck in native code, a deadlock) leaves its channel open, and its polls would
wait for ever. Its event loop sends a heartbeat whatever it is doing, so silence longer than any one fetch may take
means the loop no longer runs: the daemon kills the process (``SIGKILL`` ends a stopped process too), and the end
of its channel then restarts it and resends its polls in flight, as for any worker that dies.

Time here is the event loop's own (monotonic, real): heartbeats are real time, whatever clock the daemon schedules by.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from multiprocessing.process import BaseProcess
from typing import Protocol

import structlog

from monitor.config import FetchConfig

__all__ = ["BEAT_S", "Watched", "beat", "hang_after_s", "watch"]

log = structlog.get_logger("monitor.fetching.watchdog")

#: How often a worker says it is alive (and how often the daemon looks).
BEAT_S = 1.0
#: Heartbeats a worker may miss on top of the fetch timeout: a loaded machine can delay a few.
_MISSED = 5


def hang_after_s(fetch: FetchConfig) -> float:
    """How long a worker may stay silent before it counts as hung: longer than a whole fetch may take (a fetch
    never holds the loop itself, but a slow one is the longest wait there is in a worker) plus a few heartbeats."""
    return fetch.timeout_s + _MISSED * BEAT_S


class Watched(Protocol):
    """A worker slot as the watchdog sees it: its process, and when (loop time) its channel last brought anything."""

    index: int
    process: BaseProcess | None
    heard: float


async def beat(post: Callable[[], None]) -> None:
    """The worker's side: call ``post`` (send a heartbeat) every ``BEAT_S`` until it raises (the channel closed)."""
    with contextlib.suppress(ConnectionError):
        while True:
            post()
            await asyncio.sleep(BEAT_S)


async def watch(slots: Sequence[Watched], bound_s: Callable[[], float], in_flight: Callable[[Watched], int]) -> None:
    """The daemon's side, until cancelled: kill the process of every slot silent for longer than ``bound_s()``."""
    loop = asyncio.get_running_loop()
    last = loop.time()
    while True:
        await asyncio.sleep(BEAT_S)
        now = loop.time()
        waited, last = now - last, now
        if waited > 2 * BEAT_S:
            # This loop was held up itself: heartbeats may be waiting unread in the channels. Count from now.
            for slot in slots:
                slot.heard = max(slot.heard, now)
            continue
        for slot in slots:
            process, silent = slot.process, now - slot.heard
            if process is None or silent <= bound_s() or not process.is_alive():
                continue
            log.warning(
                "fetch_worker_hung",
                slot=slot.index,
                pid=process.pid,
                silent_s=round(silent, 1),
                in_flight=in_flight(slot),
            )
            slot.heard = now  # killed once: the end of its channel restarts it
            with contextlib.suppress(OSError, ValueError):
                process.kill()
