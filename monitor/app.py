"""The composition root: the only place that builds clients and wires the pipeline for ``run`` and ``once``.

``App.poll_feed`` is the daemon tick for one feed and ``App.cycle`` one pass over every feed; ``monitor run``
schedules the former, ``monitor once`` calls the latter, and tests call both directly.
"""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TextIO

import aiohttp
import redis.asyncio as aioredis
import structlog

from monitor.clock import Clock
from monitor.config import Config, FeedConfig
from monitor.errors import FetchError, ParseError, StoreError
from monitor.eventstore import EventStore
from monitor.fetch import Fetcher
from monitor.keys import Keys
from monitor.matcher import Matcher
from monitor.netguard import make_session
from monitor.outbox import REDIS_ERRORS, Deliverer, trim_delivered
from monitor.parse import parse_feed_async
from monitor.pipeline import Processor, ProcessResult, policies
from monitor.rulefile import RuleSet
from monitor.sinks import Sink
from monitor.sinks.factory import build_sinks
from monitor.store import Store

__all__ = ["App", "build_app"]

log = structlog.get_logger(__name__)


@dataclass
class App:
    config: Config
    ruleset: RuleSet
    matcher: Matcher
    redis: aioredis.Redis
    store: Store
    http: aiohttp.ClientSession
    fetcher: Fetcher
    processor: Processor
    sinks: list[Sink]
    deliverers: list[Deliverer]
    clock: Clock
    owns_http: bool = True
    _fetch_slots: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(32))

    async def start(self) -> None:
        """Create every sink's consumer group before anything is enqueued (see ``outbox.ensure_group``)."""
        for deliverer in self.deliverers:
            await deliverer.ensure_group()

    async def poll_feed(self, feed: FeedConfig) -> ProcessResult | None:
        """Fetch, parse and process one feed. Never raises: every failure is logged and recorded as health."""
        bound = log.bind(feed=feed.name)
        started = self.clock.monotonic()
        async with self._fetch_slots:
            try:
                validators = await self.store.validators(feed.name)
                result = await self.fetcher.fetch(feed.url, validators)
                if result.status == 304 or result.body is None:
                    await self.store.record_fetch(
                        feed.name,
                        at=self.clock.now(),
                        ok=True,
                        status=304,
                        items=0,
                        latency_s=self.clock.monotonic() - started,
                    )
                    bound.debug("feed_not_modified")
                    return ProcessResult()
                articles = await parse_feed_async(
                    result.body, headers=result.headers, feed=feed.name, url=result.url, fetched=self.clock.now()
                )
                outcome = await self.processor.process(articles)
                # Validators only after the articles are processed: a crash before this re-fetches the feed.
                await self.store.save_validators(feed.name, result.validators)
                await self.store.record_fetch(
                    feed.name,
                    at=self.clock.now(),
                    ok=True,
                    status=result.status,
                    items=len(articles),
                    latency_s=self.clock.monotonic() - started,
                )
                bound.info(
                    "feed_fetched",
                    status=result.status,
                    items=len(articles),
                    matched=outcome.matched,
                    alerted=outcome.alerted,
                    elapsed_s=round(self.clock.monotonic() - started, 3),
                )
                return outcome
            except (FetchError, ParseError) as exc:
                status = getattr(exc, "status", None)
                bound.warning("feed_failed", reason=exc.reason, status=status)
                await self._record_failure(feed, status, exc.reason, started)
            except StoreError as exc:
                bound.error("feed_store_failed", reason=str(exc))
            except Exception:  # a bug must not stop the other feeds or the daemon
                bound.exception("feed_crashed")
                await self._record_failure(feed, None, "internal error", started)
        return None

    async def _record_failure(self, feed: FeedConfig, status: int | None, reason: str, started: float) -> None:
        try:
            await self.store.record_fetch(
                feed.name,
                at=self.clock.now(),
                ok=False,
                status=status,
                items=0,
                latency_s=self.clock.monotonic() - started,
                error=reason,
            )
        except StoreError as exc:
            log.error("feed_store_failed", feed=feed.name, reason=str(exc))

    async def cycle(self, feeds: Sequence[FeedConfig] | None = None) -> list[ProcessResult | None]:
        """Poll every feed once, concurrently (bounded by ``fetch.concurrency``)."""
        return list(await asyncio.gather(*(self.poll_feed(f) for f in (feeds or self.config.feeds))))

    async def deliver_pending(self, timeout_s: float) -> int:
        """Deliver everything due on every sink, each sink on its own (used by ``monitor once``)."""
        counts = await asyncio.gather(*(d.drain(timeout_s) for d in self.deliverers))
        return sum(counts)

    async def trim_outbox(self) -> None:
        """Drop outbox entries every sink is done with (never an undelivered one); Redis errors are only logged."""
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

    async def close(self) -> None:
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
) -> App:
    """Wire the pipeline. ``redis`` is passed in (the CLI starts or connects to it); ``http`` defaults to a guarded
    session built from ``config.fetch``."""
    keys = keys or Keys()
    owns_http = http is None
    session = http if http is not None else make_session(config.fetch)
    matcher = Matcher(ruleset, min_severity=config.alerts.min_severity)
    event_policy, escalation_policy = policies(config.events, config.escalation)
    store = Store(redis, keys)
    sinks = build_sinks(
        config.alerts.sinks,
        session,
        stdout or sys.stdout,
        clock=clock,
        source=config.source,
        allow_private_networks=config.fetch.allow_private_networks,
    )
    name = consumer or socket.gethostname()
    deliverers = [
        Deliverer(
            redis,
            keys,
            sink,
            consumer=name,
            clock=clock,
            max_attempts=config.alerts.max_attempts,
            max_retry_delay_s=config.alerts.max_retry_delay_s,
        )
        for sink in sinks
    ]
    app = App(
        config=config,
        ruleset=ruleset,
        matcher=matcher,
        redis=redis,
        store=store,
        http=session,
        fetcher=Fetcher(session, config.fetch, clock=clock),
        processor=Processor(
            matcher,
            EventStore(redis, keys),
            clock,
            max_age_hours=config.alerts.max_age_hours,
            event_policy=event_policy,
            escalation_policy=escalation_policy,
        ),
        sinks=sinks,
        deliverers=deliverers,
        clock=clock,
        owns_http=owns_http,
        _fetch_slots=asyncio.Semaphore(config.fetch.concurrency),
    )
    return app
