"""``fetch.workers``: N fetch-and-parse processes, and the daemon's side of them.

The daemon keeps scheduling, processing (matching, claims, events) and delivery; ``FetchWorkers.poll`` sends each
due poll to one worker (``monitor.fetching.worker``), chosen by a stable hash of the feed's name, so a feed is always
polled by the same worker. Each worker holds the feed leases with a token of its own, kept across its restarts:
the leases replicas use decide who polls, so many workers on one machine and many machines share feeds the same
way. A worker sends a poll's articles here; ``handle`` (the processor) processes them, the answer goes back, and
only then does the worker record the poll state (at least once: see the worker's docstring).

A worker that dies (even ``SIGKILL``) is seen at once (its channel ends), started again with the same slot and
token, and given the polls it had in flight; a poll whose worker dies twice fails (``None``, as a failed poll).
Their articles are fetched again, and the claims in Redis make any processed a second time harmless: nothing is
lost, nothing alerted twice. A worker that hangs without exiting (no heartbeat, ``monitor.fetching.watchdog``) is
killed, and then restarted the same way. ``close`` asks the workers to stop, and kills those that do not within
``STOP_S``.

Workers start from the ``forkserver`` (a clean process, not a copy of the daemon's threads and sockets); each has
the daemon's share of ``fetch.concurrency`` and ``per_host_concurrency`` and of the parser processes (at least two).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import multiprocessing
import socket
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from multiprocessing.process import BaseProcess

import structlog

from monitor.config import Config, FeedConfig, FetchConfig
from monitor.core.clock import Clock
from monitor.core.errors import StoreError
from monitor.core.logs import Redactor
from monitor.core.models import Article, ProcessResult
from monitor.core.observe import NULL_OBSERVER, Observer
from monitor.fetching.frames import Channel, open_channel
from monitor.fetching.poller import ArticleHandler
from monitor.fetching.watchdog import Watched, hang_after_s, watch
from monitor.fetching.worker import WorkerSpec, worker_main
from monitor.storage.connection import Redis
from monitor.storage.keys import Keys
from monitor.storage.leases import FeedLeases

__all__ = ["STOP_S", "FetchWorkers", "slot_of", "start_workers", "worker_share"]

log = structlog.get_logger("monitor.fetching.workers")

#: How long ``close`` waits for the workers to stop before killing them.
STOP_S = 3.0
#: A slot whose worker died this many times within ``_DEATHS_WINDOW_S`` waits before the next start (up to 5 s).
_DEATHS_WINDOW_S = 60.0
#: Tries of one poll: a poll whose worker died this many times fails.
_TRIES = 2

#: An ``Observer`` call a worker made during a poll: its method's name and arguments.
Observed = tuple[str, tuple[object, ...]]


def slot_of(feed: str, workers: int) -> int:
    """The worker that polls ``feed``: stable across runs and machines (not Python's salted ``hash``)."""
    return zlib.crc32(feed.encode()) % workers


def worker_share(fetch: FetchConfig, workers: int) -> tuple[FetchConfig, int]:
    """A worker's part of the fetch limits: its fetch configuration (concurrency shared out) and parser processes
    (``parse_workers`` shared out, but at least two)."""
    shares = {
        "concurrency": math.ceil(fetch.concurrency / workers),
        "per_host_concurrency": math.ceil(fetch.per_host_concurrency / workers),
    }
    # At least two parser processes each (if the daemon would have two): with one, a slow hostile parse would hold
    # every other feed of its worker behind it.
    return fetch.model_copy(update=shares), max(min(2, fetch.parse_workers), fetch.parse_workers // workers)


@dataclass
class _Slot:
    index: int
    spec: WorkerSpec
    leases: FeedLeases | None
    process: BaseProcess | None = None
    channel: Channel | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    #: Its first start was asked for (the first poll of one of its feeds starts it).
    launched: bool = False
    deaths: list[float] = field(default_factory=list)
    reader: asyncio.Task[None] | None = None
    #: When (loop time) its worker was started or last sent anything, heartbeats included.
    heard: float = 0.0
    #: The definition of each feed this slot's worker has (sent with its first poll, and again after a reload).
    known: dict[str, FeedConfig] = field(default_factory=dict)

    def send_poll(self, poll_id: int, feed: FeedConfig) -> None:
        """Ask the worker to poll ``feed``; its definition travels only when the worker does not have it yet."""
        if self.channel is None:
            return  # gone: the restart resends it
        fresh = self.known.get(feed.name) is not feed
        self.known[feed.name] = feed
        with contextlib.suppress(ConnectionError):
            self.channel.post(("poll", poll_id, feed.name, feed if fresh else None))


@dataclass
class _Pending:
    feed: FeedConfig
    slot: _Slot
    result: asyncio.Future[ProcessResult | None]
    tries: int = 1


class FetchWorkers:
    """The daemon's fetch workers: ``poll``, ``cycle``, ``next_delays`` and ``fetch`` as ``FeedPoller`` has them.

    ``specs`` are the workers' start settings, one per slot; ``leases`` the same slots' leases as the daemon
    releases them at shutdown (None without leases)."""

    def __init__(
        self,
        specs: Sequence[WorkerSpec],
        *,
        handle: ArticleHandler,
        fetch: FetchConfig,
        clock: Clock,
        leases: Sequence[FeedLeases] | None = None,
        observer: Observer = NULL_OBSERVER,
    ) -> None:
        self._slots = [_Slot(i, spec, leases[i] if leases else None) for i, spec in enumerate(specs)]
        self._handle = handle
        self._fetch = fetch
        self._clock = clock
        self._observer = observer
        self._ids = itertools.count(1)
        self._pending: dict[int, _Pending] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        self._watching = False
        self.next_delays: dict[str, float] = {}

    @property
    def fetch(self) -> FetchConfig:
        return self._fetch

    @fetch.setter
    def fetch(self, config: FetchConfig) -> None:
        """A reload's fetch settings: the workers apply them from their next poll (as ``FeedPoller.fetch``)."""
        self._fetch = config
        for slot in self._slots:
            mine, _ = worker_share(config, len(self._slots))
            slot.spec = replace(slot.spec, fetch=mine)
            if slot.channel is not None:
                self._spawn(self._send_quietly(slot.channel, ("fetch", mine)))

    @property
    def pids(self) -> list[int]:
        """The running workers' process ids (tests and the benchmark watch them)."""
        return [s.process.pid for s in self._slots if s.process is not None and s.process.pid is not None]

    def pid_of(self, feed: str) -> int | None:
        """The process id of the worker that polls ``feed`` (None before it started)."""
        process = self._slots[slot_of(feed, len(self._slots))].process
        return process.pid if process is not None else None

    async def poll(self, feed: FeedConfig) -> ProcessResult | None:
        """Poll ``feed`` in its worker: what ``FeedPoller.poll`` returns (never raises)."""
        slot = self._slots[slot_of(feed.name, len(self._slots))]
        if self._closed or not await self._ensure(slot):
            return None
        poll_id = next(self._ids)
        pending = _Pending(feed, slot, asyncio.get_running_loop().create_future())
        self._pending[poll_id] = pending
        try:
            slot.send_poll(poll_id, feed)
            return await pending.result  # a worker that dies meanwhile is restarted and sent this poll again
        finally:
            self._pending.pop(poll_id, None)

    async def extend_lease(self, feed: FeedConfig) -> None:
        """Nothing to do here: each worker stretches its lease itself right after the poll."""

    async def cycle(self, feeds: Sequence[FeedConfig]) -> list[ProcessResult | None]:
        return list(await asyncio.gather(*(self.poll(f) for f in feeds)))

    async def release_leases(self, feeds: Sequence[FeedConfig]) -> None:
        """Give back the leases the workers hold, so another replica (or this one restarted) polls them at once."""
        for feed in feeds:
            leases = self._slots[slot_of(feed.name, len(self._slots))].leases
            if leases is not None:
                await leases.release(feed.name)

    async def close(self) -> None:
        """Stop the workers (``stop``, then a kill after ``STOP_S``); polls still waiting fail."""
        self._closed = True
        for slot in self._slots:
            slot.ready.set()  # polls waiting for a worker to start see that it will not
            if slot.channel is not None:
                await self._send_quietly(slot.channel, ("stop",))
        processes = [s.process for s in self._slots if s.process is not None]
        await asyncio.to_thread(_join_all, processes, STOP_S)
        for slot in self._slots:
            if slot.reader is not None:
                slot.reader.cancel()
            if slot.channel is not None:
                await slot.channel.aclose()
        for pending in self._pending.values():
            if not pending.result.done():
                pending.result.set_result(None)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, *(s.reader for s in self._slots if s.reader), return_exceptions=True)

    # -- workers --------------------------------------------------------------------------------------------

    async def _ensure(self, slot: _Slot) -> bool:
        """Start the slot's worker if it never was; True once it runs (False if closed meanwhile)."""
        if not slot.launched:
            slot.launched = True
            await self._launch(slot)
        await slot.ready.wait()
        return not self._closed

    async def _launch(self, slot: _Slot) -> None:
        """Start the slot's worker, trying again (with a growing pause) while the process cannot be started."""
        pause = 0.5
        while not self._closed:
            try:
                await self._start(slot)
                return
            except Exception as exc:  # no process (out of memory, too many processes): the polls wait, not fail
                log.error("fetch_worker_start_failed", slot=slot.index, reason=f"{type(exc).__name__}: {exc}")
            await asyncio.sleep(pause)
            pause = min(pause * 2, 10.0)

    async def _start(self, slot: _Slot) -> None:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["monitor.fetching.worker"])
        mine, child = socket.socketpair()
        process = context.Process(
            target=worker_main, args=(slot.spec, child), name=f"monitor-fetch-{slot.index}", daemon=False
        )
        try:
            await asyncio.to_thread(process.start)
        finally:
            child.close()
        slot.process = process
        slot.heard = asyncio.get_running_loop().time()
        slot.channel = await open_channel(mine)
        if not self._watching:
            self._watching = True
            self._spawn(watch(self._slots, lambda: hang_after_s(self._fetch), self._in_flight))
        slot.reader = asyncio.get_running_loop().create_task(self._read(slot, slot.channel))
        slot.ready.set()
        log.info("fetch_worker_started", slot=slot.index, pid=process.pid)

    async def _read(self, slot: _Slot, channel: Channel) -> None:
        while True:
            try:
                messages = await channel.receive()
            except EOFError:
                break
            slot.heard = asyncio.get_running_loop().time()
            for message in messages:  # and heartbeats ("beat",), which only count as hearing from the worker
                if message[0] == "articles":
                    _, poll_id, articles = message
                    self._spawn(self._process(channel, poll_id, articles))
                elif message[0] == "done":
                    _, poll_id, result, delay, observed = message
                    self._done(poll_id, result, delay, observed)
        await channel.aclose()
        if not self._closed:
            await self._restart(slot)

    def _in_flight(self, slot: Watched) -> int:
        return sum(1 for pending in self._pending.values() if pending.slot is slot)

    def _done(self, poll_id: int, result: ProcessResult | None, delay: float | None, observed: list[Observed]) -> None:
        pending = self._pending.get(poll_id)
        if pending is None:
            return
        if delay is not None:
            self.next_delays[pending.feed.name] = delay
        for name, args in observed:
            getattr(self._observer, name)(*args)
        if not pending.result.done():
            pending.result.set_result(result)

    async def _process(self, channel: Channel, poll_id: int, articles: list[Article]) -> None:
        """Process a poll's articles and answer its worker, which then records the poll."""
        result: ProcessResult | None = None
        error: tuple[str, str] | None = None
        if poll_id not in self._pending:
            error = ("abandoned", "the poll was abandoned (the daemon is stopping)")
        else:
            try:
                result = await self._handle(articles)
            except StoreError as exc:
                error = ("store", str(exc))
            except Exception as exc:  # as in the poller: a bug fails this poll, not the daemon
                pending = self._pending.get(poll_id)
                log.exception("feed_processing_crashed", feed=pending.feed.name if pending else None)
                error = ("internal", type(exc).__name__)
        with contextlib.suppress(ConnectionError):
            channel.post(("ack", poll_id, result, error))

    async def _restart(self, slot: _Slot) -> None:
        """The worker of ``slot`` has gone: start another, and send it the polls its predecessor had."""
        process, slot.process, slot.channel = slot.process, None, None
        slot.ready.clear()
        slot.known.clear()
        exitcode = None
        if process is not None:
            await asyncio.to_thread(process.join, STOP_S)
            exitcode = process.exitcode
        mine = [(i, p) for i, p in self._pending.items() if p.slot is slot]
        log.warning("fetch_worker_died", slot=slot.index, exitcode=exitcode, in_flight=len(mine))
        now = self._clock.monotonic()
        slot.deaths = [t for t in slot.deaths if now - t < _DEATHS_WINDOW_S] + [now]
        if len(slot.deaths) > 2:
            await asyncio.sleep(min(5.0, 0.1 * 2 ** len(slot.deaths)))
        await self._launch(slot)
        if self._closed:
            return
        for poll_id, pending in mine:
            if pending.result.done():
                continue
            if pending.tries >= _TRIES:
                log.warning("feed_failed", feed=pending.feed.name, reason="its fetch worker died during the poll")
                pending.result.set_result(None)
                continue
            pending.tries += 1
            slot.send_poll(poll_id, pending.feed)

    async def _send_quietly(self, channel: Channel, message: tuple[object, ...]) -> None:
        """Send, or nothing if the worker has gone: its reader restarts it and resends what is pending."""
        with contextlib.suppress(ConnectionError, RuntimeError):
            await channel.send(message)

    def _spawn(self, coroutine: object) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coroutine)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _join_all(processes: list[BaseProcess], timeout_s: float) -> None:
    """Wait up to ``timeout_s`` in all for the processes to end; kill the rest."""
    deadline = time.monotonic() + timeout_s
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
    for process in processes:
        if process.is_alive():
            process.kill()
            process.join(1.0)


def start_workers(
    config: Config,
    *,
    redis: Redis,
    redis_url: str,
    namespace: str,
    token: str | None,
    handle: ArticleHandler,
    clock: Clock,
    observer: Observer = NULL_OBSERVER,
    redactor: Redactor | None = None,
) -> FetchWorkers:
    """``config.fetch_workers`` workers reaching Redis at ``redis_url``; ``token`` (None: no leases) is this replica's
    lease token, each worker's being it with the worker's slot added. Processes start at the first poll."""
    count = config.fetch_workers
    fetch, parsers = worker_share(config.fetch, count)
    tokens = [f"{token}/w{i}" if token is not None else None for i in range(count)]
    log_settings = {"log_level": config.log.level, "log_format": config.log.format, "redactor": redactor}
    specs = [
        WorkerSpec(i, tokens[i], redis_url, config.redis, namespace, fetch, parsers, **log_settings)  # type: ignore[arg-type]
        for i in range(count)
    ]
    leases = [FeedLeases(redis, Keys(namespace), t) for t in tokens if t is not None] or None
    return FetchWorkers(specs, handle=handle, fetch=config.fetch, clock=clock, leases=leases, observer=observer)
