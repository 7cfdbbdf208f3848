"""The fetch worker process: its own event loop, aiohttp session, Redis client, poll-state batcher, lease token and
parser pool, wired here (the worker's counterpart of ``monitor.service.root``), around one ``FeedPoller``.

The daemon (``monitor.fetching.workers``) sends ``("poll", id, name, feed)`` (``feed`` None when unchanged since
it last sent it); the worker takes the feed's lease, fetches and parses it as the daemon itself would, and sends the
articles back as ``("articles", id, articles)``. The poller's ``handle`` then waits for ``("ack", id, result,
error)``: the daemon matched, clustered and enqueued them. Only then does the poller record the poll (validators,
digest, health, the lease stretched to the next poll), so a worker or daemon that dies in between leaves the feed to
be fetched again: at least once, the article claims in Redis making a replay harmless. ``("done", id, result,
next_delay, observed)`` closes the poll; ``observed`` are the poll's calls to the ``Observer``, which the daemon
replays into its metrics. ``("fetch", config)`` follows a reload and ``("stop",)`` ends the worker, as does the end
of the channel (the daemon has gone, even killed). ``("beat",)`` goes to the daemon every second, so that it can
tell a hung worker (``monitor.fetching.watchdog``).

Hostile-feed isolation is the daemon's: the private-network guard on every connection and hop, the body cap, the
whole-fetch deadline, and parsing in the worker's own parser processes under ``RLIMIT_AS`` and a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import signal
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog

from monitor.config import FeedConfig, FetchConfig, RedisConfig
from monitor.core.clock import SystemClock
from monitor.core.errors import StoreError
from monitor.core.logs import Redactor, configure_logging
from monitor.core.memory import limit_heap_growth
from monitor.core.models import Article, ProcessResult
from monitor.core.observe import FetchOutcome
from monitor.fetching.fetcher import Fetcher
from monitor.fetching.frames import Channel, open_channel
from monitor.fetching.poller import FeedPoller
from monitor.fetching.schedule import reseed_jitter
from monitor.fetching.watchdog import beat
from monitor.network.guard import make_session
from monitor.parsing.pool import ParserPool
from monitor.storage.batch import ScriptBatch
from monitor.storage.connection import close, connect
from monitor.storage.keys import Keys
from monitor.storage.leases import FeedLeases
from monitor.storage.pollstate import PollState

__all__ = ["WorkerSpec", "worker_main"]

log = structlog.get_logger("monitor.fetching.worker")


@dataclass(frozen=True)
class WorkerSpec:
    """What a worker is started with. ``token`` is its lease token (None: polls without leases, as ``monitor once``);
    it is the slot's, kept across restarts, so a restarted worker takes its feeds' leases back at once."""

    slot: int
    token: str | None
    redis_url: str
    redis: RedisConfig
    namespace: str
    fetch: FetchConfig
    parse_workers: int
    log_level: str
    log_format: str
    redactor: Redactor | None = None


@dataclass
class _Poll:
    """One poll in this worker: the daemon's answer to its articles, and the observer calls it made."""

    id: int
    ack: asyncio.Future[tuple[ProcessResult | None, tuple[str, str] | None]]
    observed: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)


_current: contextvars.ContextVar[_Poll] = contextvars.ContextVar("fetch_worker_poll")


class _Recorder:
    """The poller's observer in a worker: it keeps the calls of each poll for the daemon to replay."""

    def feed_polled(self, feed: str, outcome: FetchOutcome, seconds: float) -> None:
        _current.get().observed.append(("feed_polled", (feed, outcome, seconds)))

    def feed_skipped(self, feed: str) -> None:
        _current.get().observed.append(("feed_skipped", (feed,)))

    def items_parsed(self, feed: str, count: int) -> None:
        _current.get().observed.append(("items_parsed", (feed, count)))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return lambda *args: None  # the processing and delivery counters are the daemon's


def worker_main(spec: WorkerSpec, sock: socket.socket) -> None:
    """The worker process's entry point."""
    # Ctrl-C reaches the whole process group: the daemon decides when its workers stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    limit_heap_growth()
    reseed_jitter()
    configure_logging(level=spec.log_level, fmt=spec.log_format, redactor=spec.redactor)
    structlog.contextvars.bind_contextvars(fetch_worker=spec.slot)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_Worker(spec).serve(sock))


class _Worker:
    def __init__(self, spec: WorkerSpec) -> None:
        self.spec = spec
        self.polls: dict[int, _Poll] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.channel: Channel | None = None
        #: The feeds' definitions as the daemon last sent them.
        self.feeds: dict[str, FeedConfig] = {}

    async def serve(self, sock: socket.socket) -> None:
        spec = self.spec
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, self._stop_now)
        self.channel = await open_channel(sock)
        redis = connect(spec.redis_url, spec.redis)
        keys = Keys(spec.namespace)
        session = make_session(spec.fetch)
        parser = ParserPool(
            workers=spec.parse_workers, memory_mb=spec.fetch.parse_memory_mb, timeout_s=spec.fetch.parse_timeout_s,
            max_inflated=spec.fetch.max_bytes, log_level=spec.log_level, log_format=spec.log_format,
        )  # fmt: skip
        clock = SystemClock()
        poller = FeedPoller(
            store=PollState(redis, keys, batch=ScriptBatch(redis)),
            fetcher=Fetcher(session, spec.fetch, clock=clock),
            parser=parser, handle=self._handle, fetch=spec.fetch, clock=clock, observer=_Recorder(),
            leases=FeedLeases(redis, keys, spec.token) if spec.token is not None else None,
            _slots=asyncio.Semaphore(spec.fetch.concurrency), _handing=asyncio.Semaphore(spec.fetch.concurrency),
        )  # fmt: skip
        log.debug("fetch_worker_started", slot=spec.slot)
        channel = self.channel
        heartbeat = asyncio.get_running_loop().create_task(beat(lambda: channel.post(("beat",))))
        self.tasks.add(heartbeat)
        try:
            await self._read(poller)
        finally:
            for task in list(self.tasks):
                task.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)
            await asyncio.to_thread(parser.close)
            await session.close()
            await close(redis)
            await self.channel.aclose()

    def _stop_now(self) -> None:
        if self.channel is not None:
            self.channel.close()

    async def _read(self, poller: FeedPoller) -> None:
        assert self.channel is not None
        while True:
            try:
                messages = await self.channel.receive()
            except EOFError:
                return  # the daemon has gone (or asked us to stop by closing)
            if not self._dispatch(poller, messages):
                return

    def _dispatch(self, poller: FeedPoller, messages: list[tuple[Any, ...]]) -> bool:
        """Act on a batch of the daemon's messages; False when one of them says to stop."""
        for message in messages:
            kind = message[0]
            if kind == "poll":
                _, poll_id, name, feed = message
                if feed is not None:
                    self.feeds[name] = feed
                task = asyncio.get_running_loop().create_task(self._poll(poller, poll_id, self.feeds[name]))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)
            elif kind == "ack":
                _, poll_id, result, error = message
                poll = self.polls.get(poll_id)
                if poll is not None and not poll.ack.done():
                    poll.ack.set_result((result, error))
            elif kind == "fetch":
                poller.fetch = message[1]
            elif kind == "stop":
                return False
        return True

    async def _poll(self, poller: FeedPoller, poll_id: int, feed: FeedConfig) -> None:
        poll = _Poll(poll_id, asyncio.get_running_loop().create_future())
        _current.set(poll)  # this task's own context: the recorder and ``_handle`` find their poll
        self.polls[poll_id] = poll
        try:
            result = await poller.poll(feed)
            await poller.extend_lease(feed)
            delay = poller.next_delays.get(feed.name)
            assert self.channel is not None
            with contextlib.suppress(ConnectionError):
                self.channel.post(("done", poll_id, result, delay, poll.observed))
        finally:
            self.polls.pop(poll_id, None)

    async def _handle(self, articles: Sequence[Article]) -> ProcessResult:
        """The poller's ``handle``: the articles go to the daemon, and the poll goes on once it has processed them."""
        poll = _current.get()
        assert self.channel is not None
        await self.channel.send(("articles", poll.id, list(articles)))
        result, error = await poll.ack
        if error is not None:
            # As the daemon's own processing failing would fail the poll: a Redis failure records nothing (the feed
            # is fetched again next time), any other is recorded as an internal error.
            kind, reason = error
            if kind == "abandoned":  # as a poll the daemon cancels at shutdown: nothing recorded
                raise asyncio.CancelledError(reason)
            raise StoreError(reason) if kind == "store" else RuntimeError(reason)
        return result or ProcessResult()
