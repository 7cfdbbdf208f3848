"""The composition root: the only place that builds clients and wires the pipeline for ``run`` and ``once``.

``App.poll_feed`` is the daemon tick for one feed and ``App.cycle`` one pass over every feed; ``monitor run``
schedules the former, ``monitor once`` calls the latter, and tests call both directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import socket
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TextIO

import aiohttp
import redis.asyncio as aioredis
import structlog

from monitor.config import Config, FeedConfig
from monitor.core.clock import Clock
from monitor.core.errors import FetchError, ParseError, StoreError
from monitor.core.observe import NULL_OBSERVER, Observer
from monitor.delivery.outbox import REDIS_ERRORS, Deliverer, trim_delivered
from monitor.delivery.sinks import Sink
from monitor.delivery.sinks.factory import build_sinks
from monitor.delivery.sinks.webhook import safe_origin
from monitor.detection.matcher import Matcher
from monitor.detection.rulefile import RuleSet
from monitor.events.alerts import feed_notice
from monitor.fetching.fetcher import Fetcher, Validators
from monitor.fetching.schedule import Cadence, next_delay, server_hint
from monitor.network.guard import make_session
from monitor.parsing.pool import ParserPool
from monitor.processing.processor import Processor, ProcessResult, policies
from monitor.service.reload import sink_signatures
from monitor.storage.batch import ScriptBatch
from monitor.storage.events import EventStore
from monitor.storage.keys import EVENT_TTL_S, Keys
from monitor.storage.leases import FeedLeases, lease_ttl_ms, replica_token
from monitor.storage.pollstate import FetchRecord, PollStart, Store

__all__ = ["App", "Reconfiguration", "build_app", "replica_name"]

log = structlog.get_logger(__name__)


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
    config: Config
    ruleset: RuleSet
    matcher: Matcher
    redis: aioredis.Redis
    store: Store
    http: aiohttp.ClientSession
    fetcher: Fetcher
    parser: ParserPool
    processor: Processor
    sinks: list[Sink]
    deliverers: list[Deliverer]
    clock: Clock
    owns_http: bool = True
    observer: Observer = NULL_OBSERVER
    #: Per-feed fetch leases shared with other replicas; None polls every feed regardless (``monitor once``).
    leases: FeedLeases | None = None
    replica: str = ""
    stdout: TextIO | None = None
    next_delays: dict[str, float] = field(default_factory=dict)
    #: When (monotonic) the lease this replica last set on each feed it polls runs out.
    _lease_until: dict[str, float] = field(default_factory=dict)
    _fetch_slots: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(32))

    async def start(self) -> None:
        """Create every sink's consumer group before anything is enqueued (see ``outbox.ensure_group``)."""
        for deliverer in self.deliverers:
            await deliverer.ensure_group()

    async def poll_feed(self, feed: FeedConfig) -> ProcessResult | None:
        """Fetch, parse and process one feed. Never raises: every failure is logged and recorded as health.

        Afterwards ``next_delays[feed.name]`` holds when to poll it again (see ``monitor.fetching.schedule``).
        Redis sees two
        script calls: ``Store.begin_poll`` before the fetch and ``Store.finish_poll`` after it.
        """
        bound = log.bind(feed=feed.name)
        start = await self._begin(feed)
        if start is None or start.holder is not None:
            return None if start is None else ProcessResult()
        started = self.clock.monotonic()
        async with self._fetch_slots:
            try:
                result = await self.fetcher.fetch(feed.url, start.validators)
                hint = server_hint(result.headers, result.body, self.clock.now())
                if result.status == 304 or result.body is None:
                    await self._record(feed, start, started, status=304, changed=False, hint=hint)
                    bound.debug("feed_not_modified")
                    self.observer.feed_polled(feed.name, "not_modified", self.clock.monotonic() - started)
                    return ProcessResult()
                digest = hashlib.sha1(result.body, usedforsecurity=False).hexdigest()[:16]
                articles = await self.parser.parse(
                    result.body, headers=result.headers, feed=feed.name, url=result.url, fetched=self.clock.now()
                )
                self.observer.items_parsed(feed.name, len(articles))
                outcome = await self.processor.process(articles)
                # Validators only after the articles are processed: a crash before this re-fetches the feed.
                await self._record(
                    feed,
                    start,
                    started,
                    status=result.status,
                    changed=digest != start.body_digest,
                    hint=hint,
                    items=len(articles),
                    digest=digest,
                    validators=result.validators,
                )
                bound.info(
                    "feed_fetched",
                    status=result.status,
                    items=len(articles),
                    matched=outcome.matched,
                    alerted=outcome.alerted,
                    elapsed_s=round(self.clock.monotonic() - started, 3),
                )
                self.observer.feed_polled(feed.name, "ok", self.clock.monotonic() - started)
                return outcome
            except (FetchError, ParseError) as exc:
                status = getattr(exc, "status", None)
                bound.warning("feed_failed", reason=exc.reason, status=status)
                self.observer.feed_polled(feed.name, "error", self.clock.monotonic() - started)
                await self._record_failure(feed, start, status, exc.reason, started, getattr(exc, "retry_after", None))
            except StoreError as exc:
                self._store_failed(feed, exc, started)
            except Exception:  # a bug must not stop the other feeds or the daemon
                bound.exception("feed_crashed")
                self.observer.feed_polled(feed.name, "error", self.clock.monotonic() - started)
                await self._record_failure(feed, start, None, "internal error", started, None)
        return None

    async def extend_lease(self, feed: FeedConfig) -> None:
        """Stretch this replica's lease on a feed to the next delay its poll chose, so that other replicas do not
        poll it in between when the adaptive interval grows. ``finish_poll`` usually did it already; this is a
        round trip only when it could not (Redis failed, or a failure's backoff came out longer than foreseen)."""
        if self.leases is None or feed.name not in self.next_delays:
            return
        until = self._lease_until.get(feed.name)
        if until is None:
            return  # not ours (held elsewhere, lost, or unknown): the next poll takes it if it is free
        delay = self.next_delays[feed.name]
        wanted = lease_ttl_ms(delay)
        # finish_poll stretched the lease a moment ago, so it ends a little before ``wanted`` from now: up to half
        # the margin lease_ttl_ms leaves before the next poll counts as long enough.
        slack = (delay - wanted / 1000) / 2
        if self.clock.monotonic() + wanted / 1000 <= until + slack:
            return  # the lease already lasts that long: spare a round trip
        with contextlib.suppress(*REDIS_ERRORS, StoreError):
            if await self.leases.acquire(feed.name, wanted) is None:
                self._lease_until[feed.name] = self.clock.monotonic() + wanted / 1000

    async def _begin(self, feed: FeedConfig) -> PollStart | None:
        """Take the feed's lease (see ``monitor.storage.leases``) and read its state. A ``PollStart``
        with a ``holder`` when
        another replica holds the lease (skip the poll); None when Redis failed (recorded like any failed poll).
        Otherwise the lease, with leases on, is ours until about when this replica means to poll the feed next."""
        token = self.leases.token if self.leases is not None else None
        ttl_ms = lease_ttl_ms(self.next_delays.get(feed.name, float(feed.interval_s)))
        self._lease_until.pop(feed.name, None)
        taken = self.clock.monotonic()
        try:
            start = await self.store.begin_poll(feed.name, lease_token=token, lease_ttl_ms=ttl_ms)
        except StoreError as exc:
            self._store_failed(feed, exc, taken)
            return None
        if start.holder is not None:
            log.debug("feed_poll_skipped", feed=feed.name, holder=start.holder)
            self.observer.feed_skipped(feed.name)
            # Look again after one base interval (not a delay this replica chose while it held the feed), so that
            # the feed is taken over soon after its holder stops.
            self.next_delays[feed.name] = float(feed.interval_s)
        elif token is not None:
            self._lease_until[feed.name] = taken + ttl_ms / 1000
        return start

    def _store_failed(self, feed: FeedConfig, exc: StoreError, started: float) -> None:
        log.error("feed_store_failed", feed=feed.name, reason=str(exc))
        self.observer.feed_polled(feed.name, "error", self.clock.monotonic() - started)
        self.next_delays[feed.name] = float(feed.interval_s)

    def _cadence(self, feed: FeedConfig) -> Cadence:
        return Cadence(
            base_s=feed.interval_s,
            min_s=feed.min_interval_s or max(1.0, feed.interval_s / 2),
            max_s=feed.max_interval_s or feed.interval_s * 4,
            adaptive=feed.adaptive,
        )

    async def _record(
        self,
        feed: FeedConfig,
        start: PollStart,
        started: float,
        *,
        status: int,
        changed: bool,
        hint: float | None,
        items: int = 0,
        digest: str | None = None,
        validators: Validators | None = None,
    ) -> None:
        delay, remembered = next_delay(
            self._cadence(feed),
            previous_s=start.interval_s,
            changed=changed,
            failed=False,
            consecutive_errors=0,
            hint_s=hint,
        )
        self.next_delays[feed.name] = delay
        record = await self._finish(
            feed,
            delay,
            ok=True,
            status=status,
            items=items,
            latency_s=self.clock.monotonic() - started,
            interval_s=remembered,
            body_digest=digest,
            validators=validators,
        )
        threshold = self.config.fetch.alert_after_failures
        if threshold and record.errors_before >= threshold:
            await self._notice(feed, down=False, errors=record.errors_before, reason="")

    async def _record_failure(
        self,
        feed: FeedConfig,
        start: PollStart,
        status: int | None,
        reason: str,
        started: float,
        retry_after: float | None,
    ) -> None:
        self.next_delays[feed.name] = float(feed.interval_s)
        try:
            # The backoff depends on the count this very call updates: foresee it from the count read at the start,
            # so the lease is stretched in the same step; extend_lease corrects it in the rare case it differs.
            foreseen = start.consecutive_errors + 1
            delay = self._backoff(feed, foreseen, retry_after)
            record = await self._finish(
                feed,
                delay,
                ok=False,
                status=status,
                items=0,
                latency_s=self.clock.monotonic() - started,
                error=reason,
            )
            after = record.errors_after
            self.next_delays[feed.name] = delay if after == foreseen else self._backoff(feed, after, retry_after)
            if self.config.fetch.alert_after_failures and after == self.config.fetch.alert_after_failures:
                await self._notice(feed, down=True, errors=after, reason=reason)
        except StoreError as exc:
            log.error("feed_store_failed", feed=feed.name, reason=str(exc))

    def _backoff(self, feed: FeedConfig, consecutive_errors: int, retry_after: float | None) -> float:
        delay, _ = next_delay(
            self._cadence(feed),
            previous_s=None,
            changed=False,
            failed=True,
            consecutive_errors=consecutive_errors,
            retry_after_s=retry_after,
        )
        return delay

    async def _finish(
        self,
        feed: FeedConfig,
        delay: float,
        *,
        ok: bool,
        status: int | None,
        items: int,
        latency_s: float,
        error: str | None = None,
        interval_s: float | None = None,
        body_digest: str | None = None,
        validators: Validators | None = None,
    ) -> FetchRecord:
        """``Store.finish_poll``, stretching this replica's lease to ``delay`` when it still holds it."""
        token = self.leases.token if self.leases is not None else None
        asked = self.clock.monotonic()
        record = await self.store.finish_poll(
            feed.name,
            at=self.clock.now(),
            ok=ok,
            status=status,
            items=items,
            latency_s=latency_s,
            error=error,
            interval_s=interval_s,
            body_digest=body_digest,
            validators=validators,
            lease_token=token,
            lease_ttl_ms=lease_ttl_ms(delay),
        )
        if token is not None:
            if record.lease_left_s is None:
                self._lease_until.pop(feed.name, None)
            else:  # measured from before the call: never later than the lease really ends
                self._lease_until[feed.name] = asked + record.lease_left_s
        return record

    async def _notice(self, feed: FeedConfig, *, down: bool, errors: int, reason: str) -> None:
        """Tell the operators, through the sinks, that a feed went down (once per outage) or came back."""
        notice = feed_notice(
            feed=feed.name,
            url_origin=safe_origin(feed.url),
            down=down,
            consecutive_errors=errors,
            reason=reason,
            now=self.clock.now(),
        )
        await self.store.enqueue_notice(notice)
        log.warning("feed_down_notified" if down else "feed_recovery_notified", feed=feed.name, errors=errors)

    async def cycle(self, feeds: Sequence[FeedConfig] | None = None) -> list[ProcessResult | None]:
        """Poll every feed once, concurrently (bounded by ``fetch.concurrency``)."""
        return list(await asyncio.gather(*(self.poll_feed(f) for f in (feeds or self.config.feeds))))

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
        except (*REDIS_ERRORS, StoreError) as exc:
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
        )

    async def prepare_reload(self, config: Config, ruleset: RuleSet) -> Reconfiguration:
        """Everything a new configuration needs, built without touching the running app; raises ``ConfigError``
        (e.g. a sink that cannot be built), in which case nothing changes. See ``apply_reload``."""
        matcher = await asyncio.to_thread(Matcher, ruleset, min_severity=config.alerts.min_severity)
        processor = _processor(config, matcher, self.processor.events, self.clock, self.observer)
        built = {s.name: s for s in _sinks(config, self.http, self.stdout, self.clock)}
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
        self.deliverers = change.deliverers
        self.sinks = [d.sink for d in change.deliverers]

    async def close(self) -> None:
        await asyncio.to_thread(self.parser.close)
        for sink in self.sinks:
            await sink.close()
        if self.owns_http:
            await self.http.close()
        await self.redis.aclose()


async def build_app(
    config: Config,
    ruleset: RuleSet,
    *,
    clock: Clock,
    redis: aioredis.Redis,
    http: aiohttp.ClientSession | None = None,
    stdout: TextIO | None = None,
    consumer: str | None = None,
    keys: Keys | None = None,
    parse_in_workers: bool = True,
    observer: Observer = NULL_OBSERVER,
    fetch_leases: bool = True,
) -> App:
    """Wire the pipeline. ``redis`` is passed in (the CLI starts or connects to it); ``http`` defaults to a guarded
    session built from ``config.fetch``. ``consumer`` (else ``config.replica_name``, else the host name) names
    this replica; with ``fetch_leases`` it polls a feed only while no other replica holds the feed's lease."""
    keys = keys or Keys()
    owns_http = http is None
    session = http if http is not None else make_session(config.fetch)
    matcher = Matcher(ruleset, min_severity=config.alerts.min_severity)
    store = Store(redis, keys, batch=ScriptBatch(redis))
    sinks = _sinks(config, session, stdout, clock)
    name = consumer or replica_name(config)
    app = App(
        config=config,
        ruleset=ruleset,
        matcher=matcher,
        redis=redis,
        store=store,
        http=session,
        fetcher=Fetcher(session, config.fetch, clock=clock),
        parser=ParserPool(
            workers=config.fetch.parse_workers if parse_in_workers else 0,
            memory_mb=config.fetch.parse_memory_mb,
            timeout_s=config.fetch.parse_timeout_s,
            max_inflated=config.fetch.max_bytes,
            log_level=config.log.level,
            log_format=config.log.format,
        ),
        processor=_processor(config, matcher, EventStore(redis, keys), clock, observer),
        sinks=sinks,
        deliverers=[],
        clock=clock,
        owns_http=owns_http,
        observer=observer,
        leases=FeedLeases(redis, keys, replica_token(name)) if fetch_leases else None,
        replica=name,
        stdout=stdout,
        _fetch_slots=asyncio.Semaphore(config.fetch.concurrency),
    )
    app.deliverers = [app.deliverer(sink, config) for sink in sinks]
    return app


def replica_name(config: Config) -> str:
    """This replica's consumer name: ``replica_name`` (or ``MONITOR_REPLICA``), else the host name, which is
    stable across restarts on a host; two replicas on one host need distinct names."""
    return config.replica_name or socket.gethostname()


def _sinks(config: Config, session: aiohttp.ClientSession, stdout: TextIO | None, clock: Clock) -> list[Sink]:
    return build_sinks(
        config.alerts.sinks,
        session,
        stdout or sys.stdout,
        clock=clock,
        source=config.source,
        allow_private_networks=config.fetch.allow_private_networks,
        smtp=config.smtp,
    )


def _processor(config: Config, matcher: Matcher, events: EventStore, clock: Clock, observer: Observer) -> Processor:
    event_policy, escalation_policy = policies(config.events, config.escalation)
    return Processor(
        matcher,
        events,
        clock,
        max_age_hours=config.alerts.max_age_hours,
        event_policy=event_policy,
        escalation_policy=escalation_policy,
        observer=observer,
    )
