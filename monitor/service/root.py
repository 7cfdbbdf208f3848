"""The composition root: the only place that builds clients and wires the pipeline for ``run`` and ``once``.

``App.poll_feed`` is the daemon tick for one feed and ``App.cycle`` one pass over every feed; ``monitor run``
schedules the former, ``monitor once`` calls the latter, and tests call both directly.
"""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TextIO

import aiohttp
import structlog
from aiohttp import web

from monitor.config import Config, FeedConfig
from monitor.core.clock import Clock
from monitor.core.errors import StoreError
from monitor.core.logs import Redactor
from monitor.core.models import ProcessResult
from monitor.core.observe import NULL_OBSERVER, Observer
from monitor.delivery.outbox import Deliverer
from monitor.delivery.sinks import Sink
from monitor.delivery.sinks.factory import build_sinks
from monitor.detection.matcher import Matcher
from monitor.detection.rulefile import RuleSet
from monitor.fetching.fetcher import Fetcher
from monitor.fetching.poller import ArticleHandler, FeedPoller
from monitor.fetching.workers import FetchWorkers, start_workers
from monitor.network.guard import make_session
from monitor.parsing.pool import ParserPool
from monitor.processing.coalesce import Coalescer
from monitor.processing.policies import policies
from monitor.processing.processor import Processor
from monitor.service.reload import sink_signatures
from monitor.storage.batch import ScriptBatch
from monitor.storage.connection import Redis, close
from monitor.storage.events import EventStore
from monitor.storage.generation import Generation, state_file
from monitor.storage.keys import EVENT_TTL_S, Keys
from monitor.storage.leases import FeedLeases, replica_token
from monitor.storage.messages import MessageStore
from monitor.storage.outbox import trim_delivered
from monitor.storage.pollstate import PollState
from monitor.web.app import install
from monitor.web.reads import Reader

__all__ = ["App", "Reconfiguration", "build_app", "dashboard_installer", "replica_name"]

log = structlog.get_logger(__name__)
_GENERATION_CHECK_S = 2.0


@dataclass(frozen=True, slots=True)
class Reconfiguration:
    """A new configuration, ready to apply: ``started`` are new deliverers (new or changed sinks), ``stopped`` the
    running ones they replace or that were removed; unchanged sinks keep their running deliverer."""

    config: Config
    ruleset: RuleSet
    matcher: Matcher
    processor: Processor
    deliverers: list[Deliverer]
    started: list[Deliverer]
    stopped: list[Deliverer]


@dataclass
class App:
    """The wired monitor: the feed poller, the processor it hands articles to, the sinks and their deliverers."""

    config: Config
    ruleset: RuleSet
    matcher: Matcher
    redis: Redis
    store: PollState
    http: aiohttp.ClientSession
    #: Polls the feeds: in this process, or in ``fetch.workers`` worker processes (``monitor.fetching.workers``).
    poller: FeedPoller | FetchWorkers
    processor: Processor
    generation: Generation
    sinks: list[Sink]
    deliverers: list[Deliverer]
    clock: Clock
    owns_http: bool = True
    observer: Observer = NULL_OBSERVER
    replica: str = ""
    stdout: TextIO | None = None
    #: The running configuration's feeds by name, and the configuration they were read from (see ``feed``).
    _feeds_by_name: tuple[Config, dict[str, FeedConfig]] | None = None

    def feed(self, name: str) -> FeedConfig | None:
        """The running configuration's feed of that name (None once a reload removed it). Asked on every poll:
        a dict, built again after a reload, instead of a scan of thousands of feeds."""
        if self._feeds_by_name is None or self._feeds_by_name[0] is not self.config:
            self._feeds_by_name = (self.config, {f.name: f for f in self.config.feeds})
        return self._feeds_by_name[1].get(name)

    async def start(self) -> None:
        """Check the generation marker (see ``monitor.storage.generation``), then create every sink's consumer group
        before anything is enqueued (see ``outbox.ensure_groups``)."""
        await self.generation.check()
        for deliverer in self.deliverers:
            await deliverer.ensure_group()

    async def check_generation(self) -> None:
        """The heartbeat's look at the generation marker, and the file's update; Redis errors are only logged."""
        try:
            async with asyncio.timeout(_GENERATION_CHECK_S):  # a hung Redis must not hold the heartbeat job
                await self.generation.check()
        except (StoreError, TimeoutError) as exc:
            log.debug("generation_check_failed", reason=str(exc) or type(exc).__name__)
        await self.generation.save()

    @property
    def next_delays(self) -> dict[str, float]:
        return self.poller.next_delays

    @property
    def leases(self) -> FeedLeases | None:
        """This process's own feed leases (None with fetch workers, which hold leases of their own)."""
        return self.poller.leases if isinstance(self.poller, FeedPoller) else None

    async def release_leases(self, feeds: Sequence[FeedConfig]) -> None:
        """Give back the feed leases this replica holds (its workers' too); raises ``StoreError``."""
        if isinstance(self.poller, FetchWorkers):
            await self.poller.release_leases(feeds)
        elif self.poller.leases is not None:
            for feed in feeds:
                await self.poller.leases.release(feed.name)

    async def poll_feed(self, feed: FeedConfig) -> ProcessResult | None:
        """The daemon tick for one feed (see ``FeedPoller.poll``): never raises."""
        return await self.poller.poll(feed)

    async def extend_lease(self, feed: FeedConfig) -> None:
        await self.poller.extend_lease(feed)

    async def cycle(self, feeds: Sequence[FeedConfig] | None = None) -> list[ProcessResult | None]:
        """Poll every feed once, concurrently (bounded by ``fetch.concurrency``)."""
        return await self.poller.cycle(feeds or self.config.feeds)

    async def deliver_pending(self, timeout_s: float) -> int:
        """Deliver everything due on every sink, each sink on its own (used by ``monitor once``)."""
        counts = await asyncio.gather(*(d.drain(timeout_s) for d in self.deliverers))
        return sum(counts)

    async def trim_outbox(self) -> None:
        """Drop outbox entries every sink is done with (never an undelivered one), and index entries of events
        that have expired; Redis errors are only logged."""
        await self.processor.events.prune(self.clock.now(), timedelta(seconds=EVENT_TTL_S))
        try:
            removed = await trim_delivered(self.redis, self.store.keys)
        except StoreError as exc:
            log.warning("outbox_trim_failed", reason=str(exc))
            return
        if removed:
            log.info("outbox_trimmed", removed=removed)

    async def refresh_escalation(self) -> None:
        """Let the escalation level decay between events; Redis errors are only logged."""
        try:
            await self.processor.refresh_escalation()
        except StoreError as exc:
            log.warning("escalation_refresh_failed", reason=str(exc))

    def deliverer(self, sink: Sink, config: Config) -> Deliverer:
        """The deliverer of ``sink`` for this replica."""
        return Deliverer(
            self.redis,
            self.store.keys,
            sink,
            consumer=self.replica,
            clock=self.clock,
            max_attempts=config.alerts.max_attempts,
            max_retry_delay_s=config.alerts.max_retry_delay_s,
            observer=self.observer,
            groups=self.sink_names,
        )

    def sink_names(self) -> list[str]:
        """Every running sink's name, which is its consumer group's: what a deliverer that finds its group missing
        creates together (see ``monitor.storage.outbox.ensure_groups``)."""
        return [sink.name for sink in self.sinks]

    async def prepare_reload(self, config: Config, ruleset: RuleSet) -> Reconfiguration:
        """Everything a new configuration needs, built without touching the running app; raises ``ConfigError``
        (e.g. a sink that cannot be built), in which case nothing changes. See ``apply_reload``."""
        matcher = await asyncio.to_thread(Matcher, ruleset, min_severity=config.alerts.min_severity)
        processor = _processor(config, matcher, self.processor.events, self.clock, self.observer, self.generation)
        messages = MessageStore(self.redis, self.store.keys)
        built = {s.name: s for s in _sinks(config, self.http, self.stdout, self.clock, messages)}
        old, new = sink_signatures(self.config), sink_signatures(config)
        running = {d.sink.name: d for d in self.deliverers}
        deliverers: list[Deliverer] = []
        started: list[Deliverer] = []
        for name, sink in built.items():
            if name in running and old.get(name) == new[name]:
                deliverers.append(running[name])  # unchanged: keeps running, with its retry timers
                await sink.close()
            else:
                started.append(self.deliverer(sink, config))
                deliverers.append(started[-1])
        kept = {d.sink.name for d in deliverers if d not in started}
        stopped = [d for name, d in running.items() if name not in kept]
        return Reconfiguration(config, ruleset, matcher, processor, deliverers, started, stopped)

    def apply_reload(self, change: Reconfiguration) -> None:
        """Switch to a prepared configuration. Polls in flight finish with the processor they started with; the
        caller stops ``change.stopped`` and starts ``change.started``."""
        self.config = change.config
        self.ruleset = change.ruleset
        self.matcher = change.matcher
        self.processor = change.processor
        self.poller.fetch = change.config.fetch
        self.deliverers = change.deliverers
        self.sinks = [d.sink for d in change.deliverers]

    async def close(self) -> None:
        await self.generation.save()
        if isinstance(self.poller, FetchWorkers):
            await self.poller.close()
        else:
            await asyncio.to_thread(self.poller.parser.close)
        for sink in self.sinks:
            await sink.close()
        if self.owns_http:
            await self.http.close()
        await close(self.redis)


async def build_app(
    config: Config,
    ruleset: RuleSet,
    *,
    clock: Clock,
    redis: Redis,
    http: aiohttp.ClientSession | None = None,
    stdout: TextIO | None = None,
    consumer: str | None = None,
    keys: Keys | None = None,
    parse_in_workers: bool = True,
    observer: Observer = NULL_OBSERVER,
    fetch_leases: bool = True,
    state_dir: Path | None = None,
    redis_url: str | None = None,
    redactor: Redactor | None = None,
) -> App:
    """Wire the pipeline. ``redis`` is passed in (the CLI starts or connects to it); ``http`` defaults to a guarded
    session built from ``config.fetch``. ``consumer`` (else ``config.replica_name``, else the host name) names
    this replica; with ``fetch_leases`` it polls a feed only while no other replica holds the feed's lease.
    ``state_dir`` keeps the generation marker's file (see ``monitor.storage.generation``); None: in memory only.
    Given ``redis_url``, where workers reach this Redis (``run`` and ``once`` give it), feeds are polled in
    ``fetch.workers`` processes logging through ``redactor``; else, or with ``workers: 0``, in this process."""
    keys = keys or Keys()
    owns_http = http is None
    session = http if http is not None else make_session(config.fetch)
    matcher = Matcher(ruleset, min_severity=config.alerts.min_severity)
    store = PollState(redis, keys, batch=ScriptBatch(redis))
    sinks = _sinks(config, session, stdout, clock, MessageStore(redis, keys))
    name = consumer or replica_name(config)

    def locate(feed: str) -> str | None:
        found = app.feed(feed)
        return found.url if found is not None else None

    path = state_file(state_dir, keys) if state_dir is not None else None
    generation = Generation(redis, keys, clock, path=path, locate=locate, observer=observer)
    token = replica_token(name) if fetch_leases else None
    # Feeds read within a moment of each other (in this process or sent by fetch workers): one batch, oldest story
    # first, by the app's processor at that moment (a reload may have replaced it).
    process = Coalescer(
        lambda batches: app.processor.process_many(batches), now=clock.now, max_batches=config.fetch.concurrency
    )
    in_workers = redis_url if parse_in_workers and config.fetch_workers > 0 else None
    poller = _poller(config, session, store, process, clock, observer, token, in_workers, redactor, parse_in_workers)
    process.in_flight = (lambda: poller.active) if isinstance(poller, FeedPoller) else None
    wait = config.redis  # replicas that must hold an enqueued alert (WAIT), and for how long at most
    events = EventStore(redis, keys, replicas=wait.replicas_to_wait, wait_timeout_ms=wait.wait_timeout_ms)
    processor = _processor(config, matcher, events, clock, observer, generation)
    app = App(
        config=config, ruleset=ruleset, matcher=matcher, redis=redis, store=store, http=session, poller=poller,
        processor=processor, generation=generation, sinks=sinks, deliverers=[], clock=clock, owns_http=owns_http,
        observer=observer, replica=name, stdout=stdout,
    )  # fmt: skip
    app.deliverers = [app.deliverer(sink, config) for sink in sinks]
    return app


def dashboard_installer(app: App) -> Callable[[web.Application], None] | None:
    """What puts the dashboard on the daemon's HTTP server (None when ``web.enabled`` is false). It reads the
    running configuration and rules at each request, so a reload shows at once; the token is read at start."""
    if not app.config.web.enabled:
        return None
    token = app.config.web.token.get_secret_value() if app.config.web.token else None
    reader = Reader(app.redis, app.store.keys, app.clock, lambda: app.config, lambda: app.ruleset)
    return lambda server: install(server, reader, token=token)


def replica_name(config: Config) -> str:
    """This replica's consumer name: ``replica_name`` (or ``MONITOR_REPLICA``), else the host name, which is
    stable across restarts on a host; two replicas on one host need distinct names."""
    return config.replica_name or socket.gethostname()


def _sinks(
    config: Config, session: aiohttp.ClientSession, stdout: TextIO | None, clock: Clock, messages: MessageStore
) -> list[Sink]:
    return build_sinks(
        config.alerts.sinks,
        session,
        stdout or sys.stdout,
        clock=clock,
        source=config.source,
        allow_private_networks=config.fetch.allow_private_networks,
        smtp=config.smtp,
        messages=messages,
    )


def _processor(
    config: Config, matcher: Matcher, events: EventStore, clock: Clock, observer: Observer, generation: Generation
) -> Processor:
    event_policy, escalation_policy = policies(config.events, config.escalation)
    return Processor(
        matcher,
        events,
        clock,
        max_age_hours=config.alerts.max_age_hours,
        event_policy=event_policy,
        escalation_policy=escalation_policy,
        observer=observer,
        generation=generation,
    )


def _poller(
    config: Config,
    session: aiohttp.ClientSession,
    store: PollState,
    handle: ArticleHandler,
    clock: Clock,
    observer: Observer,
    token: str | None,
    workers_redis_url: str | None,
    redactor: Redactor | None,
    parse_in_workers: bool,
) -> FeedPoller | FetchWorkers:
    """Fetch workers reaching Redis at ``workers_redis_url``, or (None) a poller in this process; ``token`` is this
    replica's lease token (None: no leases)."""
    if workers_redis_url is not None:
        return start_workers(
            config, redis=store.redis, redis_url=workers_redis_url, namespace=store.keys.namespace, token=token,
            handle=handle, clock=clock, observer=observer, redactor=redactor,
        )  # fmt: skip
    leases = FeedLeases(store.redis, store.keys, token) if token is not None else None
    fetch = config.fetch
    parser = ParserPool(
        workers=fetch.parse_workers if parse_in_workers else 0,
        memory_mb=fetch.parse_memory_mb,
        timeout_s=fetch.parse_timeout_s,
        max_inflated=fetch.max_bytes,
        log_level=config.log.level,
        log_format=config.log.format,
    )
    return FeedPoller(
        store=store,
        fetcher=Fetcher(session, fetch, clock=clock),
        parser=parser,
        handle=handle,
        fetch=fetch,
        clock=clock,
        observer=observer,
        leases=leases,
        _slots=asyncio.Semaphore(fetch.concurrency),
        _handing=asyncio.Semaphore(fetch.concurrency),
    )
