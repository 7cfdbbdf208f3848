"""One poll of one feed, start to end: take the feed's lease, fetch with its validators, parse, hand the articles
on, record health and choose when to poll it next.

``FeedPoller.poll`` never raises: every failure is logged and recorded as the feed's health. Redis sees two script
calls per poll, ``PollState.begin_poll`` before the fetch and ``PollState.finish_poll`` after it. What happens to
the articles is not the poller's business: it calls the ``handle`` it is given (the processor, in the app).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import structlog

from monitor.config import FeedConfig, FetchConfig
from monitor.core.clock import Clock
from monitor.core.errors import FetchError, ParseError, StoreError
from monitor.core.models import Article, PollResult, ProcessResult, Validators
from monitor.core.observe import NULL_OBSERVER, Observer
from monitor.events.alerts import feed_notice
from monitor.fetching.fetcher import Fetcher
from monitor.fetching.schedule import Cadence, next_delay, server_hint
from monitor.fetching.telegram import read_channel
from monitor.network.http import safe_origin
from monitor.parsing.pool import ParserPool
from monitor.storage.leases import FeedLeases, lease_ttl_ms
from monitor.storage.pollstate import FetchRecord, PollStart, PollState

__all__ = ["ArticleHandler", "FeedPoller"]

log = structlog.get_logger("monitor.fetching.poller")

#: What the poller does with a feed's articles (the processor's ``process``, in the app).
ArticleHandler = Callable[[Sequence[Article]], Awaitable[ProcessResult]]


@dataclass
class FeedPoller:
    store: PollState
    fetcher: Fetcher
    parser: ParserPool
    handle: ArticleHandler
    fetch: FetchConfig
    clock: Clock
    observer: Observer = NULL_OBSERVER
    #: Per-feed fetch leases shared with other replicas; None polls every feed regardless (``monitor once``).
    leases: FeedLeases | None = None
    #: When to poll each feed next, in seconds, as its last poll chose (see ``monitor.fetching.schedule``).
    next_delays: dict[str, float] = field(default_factory=dict)
    #: When (monotonic) the lease this replica last set on each feed it polls runs out.
    _lease_until: dict[str, float] = field(default_factory=dict)
    #: Fetch slots (``fetch.concurrency``): a poll holds one while it fetches and parses, and gives it back before
    #: its articles are processed, so that polls waiting for a batch to be processed (``Coalescer``) do not stop
    #: the others from fetching; as many more may wait so (``_handing``), and past that a parsed feed keeps its
    #: fetch slot until there is room: a processor that falls behind slows fetching down, and the parsed feeds held
    #: in memory stay bounded.
    _slots: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(32))
    _handing: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(32))
    #: Polls under way since they took a slot: fetching, parsing, or waiting for their articles to be processed.
    active: int = 0

    async def poll(self, feed: FeedConfig) -> ProcessResult | None:
        """Fetch, parse and process one feed; None when it failed (logged, recorded as health)."""
        start = await self._begin(feed)
        if start is None or start.holder is not None:
            return None if start is None else ProcessResult()
        started = self.clock.monotonic()
        async with _Slot(self._slots, self._handing) as slot:
            self.active += 1
            try:
                return await self._fetch_and_handle(feed, start, started, slot)
            except (FetchError, ParseError) as exc:
                status = getattr(exc, "status", None)
                log.warning("feed_failed", feed=feed.name, reason=exc.reason, status=status)
                self.observer.feed_polled(feed.name, "error", self.clock.monotonic() - started)
                await self._record_failure(feed, start, status, exc.reason, started, getattr(exc, "retry_after", None))
            except StoreError as exc:
                self._store_failed(feed, exc, started)
            except Exception:  # a bug must not stop the other feeds or the daemon
                log.exception("feed_crashed", feed=feed.name)
                self.observer.feed_polled(feed.name, "error", self.clock.monotonic() - started)
                await self._record_failure(feed, start, None, "internal error", started, None)
            finally:
                self.active -= 1
        return None

    async def cycle(self, feeds: Sequence[FeedConfig]) -> list[ProcessResult | None]:
        """Poll every feed once, concurrently (bounded by ``fetch.concurrency``)."""
        return list(await asyncio.gather(*(self.poll(f) for f in feeds)))

    async def _fetch_and_handle(self, feed: FeedConfig, start: PollStart, started: float, slot: _Slot) -> ProcessResult:
        if feed.type == "telegram":
            return await self._poll_channel(feed, start, started, slot)
        result = await self.fetcher.fetch(feed.url, start.validators)
        hint = server_hint(result.headers, result.body, self.clock.now())
        if result.status == 304 or result.body is None:
            await self._record(feed, start, started, status=304, changed=False, hint=hint)
            log.debug("feed_not_modified", feed=feed.name)
            self.observer.feed_polled(feed.name, "not_modified", self.clock.monotonic() - started)
            return ProcessResult()
        digest = hashlib.sha1(result.body, usedforsecurity=False).hexdigest()[:16]
        articles = await self.parser.parse(
            result.body, headers=result.headers, feed=feed.name, url=result.url, fetched=self.clock.now()
        )
        self.observer.items_parsed(feed.name, len(articles))
        await slot.hand_over()
        outcome = await self.handle(articles)
        # Validators only after the articles are processed: a crash before this re-fetches the feed.
        changed = digest != start.body_digest
        await self._record(
            feed, start, started, status=result.status, changed=changed, hint=hint, items=len(articles),
            digest=digest, validators=result.validators,
        )  # fmt: skip
        log.info(
            "feed_fetched",
            feed=feed.name,
            status=result.status,
            items=len(articles),
            matched=outcome.matched,
            alerted=outcome.alerted,
            elapsed_s=round(self.clock.monotonic() - started, 3),
        )
        self.observer.feed_polled(feed.name, "ok", self.clock.monotonic() - started)
        return outcome

    async def _poll_channel(self, feed: FeedConfig, start: PollStart, started: float, slot: _Slot) -> ProcessResult:
        """A Telegram channel: only the posts after the saved cursor (see ``monitor.fetching.telegram``)."""
        read = await read_channel(
            feed, fetcher=self.fetcher, parser=self.parser, clock=self.clock, cursor=start.cursor,
            validators=start.validators,
        )  # fmt: skip
        self.observer.items_parsed(feed.name, len(read.articles))
        await slot.hand_over()
        outcome = await self.handle(read.articles) if read.articles else ProcessResult()
        hint = server_hint(read.headers, None, self.clock.now())
        await self._record(
            feed, start, started, status=read.status, changed=read.changed, hint=hint, items=len(read.articles),
            validators=read.validators, cursor=read.cursor,
        )  # fmt: skip
        log.info(
            "feed_fetched", feed=feed.name, status=read.status, items=len(read.articles), pages=read.pages,
            matched=outcome.matched, alerted=outcome.alerted, elapsed_s=round(self.clock.monotonic() - started, 3),
        )  # fmt: skip
        self.observer.feed_polled(
            feed.name, "ok" if read.status != 304 else "not_modified", self.clock.monotonic() - started
        )
        return outcome

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
        with contextlib.suppress(StoreError):
            if await self.leases.acquire(feed.name, wanted) is None:
                self._lease_until[feed.name] = self.clock.monotonic() + wanted / 1000

    async def _begin(self, feed: FeedConfig) -> PollStart | None:
        """Take the feed's lease (see ``monitor.storage.leases``) and read its state. A ``PollStart`` with a
        ``holder`` when another replica holds the lease (skip the poll); None when Redis failed (recorded like any
        failed poll). Otherwise the lease, with leases on, is ours until about when this replica polls it next."""
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
        cursor: str | None = None,
    ) -> None:
        delay, remembered = next_delay(
            _cadence(feed), previous_s=start.interval_s, changed=changed, failed=False, consecutive_errors=0,
            hint_s=hint,
        )  # fmt: skip
        self.next_delays[feed.name] = delay
        latency = self.clock.monotonic() - started
        result = PollResult(
            at=self.clock.now(), ok=True, status=status, items=items, latency_s=latency, interval_s=remembered,
            body_digest=digest, validators=validators, cursor=cursor,
        )  # fmt: skip
        record = await self._finish(feed, delay, result)
        threshold = self.fetch.alert_after_failures
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
            delay = _backoff(feed, foreseen, retry_after)
            latency = self.clock.monotonic() - started
            result = PollResult(at=self.clock.now(), ok=False, status=status, items=0, latency_s=latency, error=reason)
            record = await self._finish(feed, delay, result)
            after = record.errors_after
            self.next_delays[feed.name] = delay if after == foreseen else _backoff(feed, after, retry_after)
            if self.fetch.alert_after_failures and after == self.fetch.alert_after_failures:
                await self._notice(feed, down=True, errors=after, reason=reason)
        except StoreError as exc:
            log.error("feed_store_failed", feed=feed.name, reason=str(exc))

    async def _finish(self, feed: FeedConfig, delay: float, result: PollResult) -> FetchRecord:
        """``PollState.finish_poll``, stretching this replica's lease to ``delay`` when it still holds it."""
        token = self.leases.token if self.leases is not None else None
        asked = self.clock.monotonic()
        record = await self.store.finish_poll(feed.name, result, lease_token=token, lease_ttl_ms=lease_ttl_ms(delay))
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


class _Slot:
    """One poll's fetch slot, and once it hands its articles over, its place among the polls waiting for their
    articles to be processed instead (``FeedPoller._handing``); whichever it holds is given back when it ends."""

    def __init__(self, slots: asyncio.Semaphore, handing: asyncio.Semaphore) -> None:
        self._slots = slots
        self._handing = handing
        self._fetching = self._waiting = False

    async def __aenter__(self) -> _Slot:
        await self._slots.acquire()
        self._fetching = True
        return self

    async def hand_over(self) -> None:
        """Trade the fetch slot for a place among the polls waiting to be processed (waiting for one if need be)."""
        if self._fetching:  # (the two states never hold together)
            await self._handing.acquire()
            self._waiting = True
            self._fetching = False
            self._slots.release()

    async def __aexit__(self, *exc: object) -> None:
        if self._fetching:
            self._fetching = False
            self._slots.release()
        if self._waiting:
            self._waiting = False
            self._handing.release()


def _cadence(feed: FeedConfig) -> Cadence:
    return Cadence(
        base_s=feed.interval_s,
        min_s=feed.min_interval_s or max(1.0, feed.interval_s / 2),
        max_s=feed.max_interval_s or feed.interval_s * 4,
        adaptive=feed.adaptive,
    )


def _backoff(feed: FeedConfig, consecutive_errors: int, retry_after: float | None) -> float:
    delay, _ = next_delay(
        _cadence(feed),
        previous_s=None,
        changed=False,
        failed=True,
        consecutive_errors=consecutive_errors,
        retry_after_s=retry_after,
    )
    return delay
