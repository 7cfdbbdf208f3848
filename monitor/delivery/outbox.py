"""Delivery from the outbox stream to the sinks: at least once to every sink, or a dead letter with the reason.

Each sink reads the outbox through its own consumer group (the group is the sink's name; the stream and its
commands are ``monitor.storage.outbox``), driven by one ``Deliverer``; replicas of the monitor share a group, each
as its own consumer, so an alert goes to each sink once per group however many replicas run.

An entry stays pending until the sink accepted it (acknowledged after success) or it was dead-lettered, so nothing
is lost if the process dies mid-delivery: on restart a deliverer first re-delivers its own pending entries, and
entries of a consumer that vanished are taken over once idle for ``claim_idle_s``. A deliverer keeps the entries it
holds from looking idle by re-claiming them every ``claim_idle_s / 3`` seconds, so a long retry backoff is not
mistaken for a dead consumer.

Failed attempts are retried with exponential backoff and full jitter, waiting at least a ``Retry-After`` the sink
was given, and never longer than ``max_retry_delay_s`` (which also caps ``Retry-After``). Each entry has its own
timer, so one failing alert never holds back newer ones. Attempt counts live in Redis (a restart does not reset
them); the timers only in memory (a restarted deliverer retries its pending entries at once). Memory is bounded: a
deliverer holds at most ``max_held`` entries (in flight or waiting for a retry) and reads no new entries while it is
full, so a sink that is down for days costs nothing but stream length.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections.abc import Callable, Iterable
from typing import Any

import structlog

from monitor.core.clock import Clock, utc_iso
from monitor.core.errors import DeliveryError, PermanentDeliveryError, StoreError, StoreUnavailableError
from monitor.core.observe import NULL_OBSERVER, Observer
from monitor.delivery.held import HeldEntries, HeldEntry
from monitor.delivery.routing import Route
from monitor.delivery.sinks import Sink
from monitor.storage.connection import Redis
from monitor.storage.keys import Keys
from monitor.storage.outbox import OutboxEntry, OutboxGroup, OutboxGroupMissingError

__all__ = ["Deliverer", "retry_delay"]

_REDIS_BACKOFF_S = (0.5, 30.0)


def retry_delay(attempts: int, *, base_s: float, cap_s: float, retry_after: float | None, rng: random.Random) -> float:
    """Seconds until the next try after ``attempts`` failed ones: full jitter over ``base_s * 2**(attempts-1)``,
    at least ``retry_after`` when the sink gave one, and never more than ``cap_s``."""
    ceiling = min(cap_s, base_s * 2.0 ** min(attempts - 1, 60))
    delay = rng.uniform(0.0, ceiling)
    if retry_after is not None:
        delay = max(delay, min(retry_after, cap_s))
    return delay


def _origin(exc: Exception) -> BaseException:
    """What failed: for a ``StoreError`` the Redis client's own error it translates, so logs name it as before."""
    return exc.__cause__ if isinstance(exc, StoreError) and exc.__cause__ is not None else exc


class Deliverer:
    """Delivers the outbox to one sink. Run one per sink, each as its own task, so sinks never wait on each other.

    ``block_ms`` is how long one read waits for new entries; keep it well below the Redis client's socket
    timeout. ``concurrency`` bounds simultaneous sends to the sink, ``max_held`` the entries held in memory.
    A sink with a ``route`` (``monitor.delivery.routing.Route``; else a ``min_severity``) is not sent the alerts
    it refuses: they are acknowledged unsent. The consumer name must be stable across restarts of one replica (e.g.
    the host name) and unique among replicas. ``groups`` names every sink's group on the outbox (the current
    configuration's): a missing group is created together with every other missing one, so that after Redis lost
    its data all of them start at the stream's first entry (``monitor.storage.outbox.ensure_groups``).
    """

    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        sink: Sink,
        *,
        consumer: str,
        clock: Clock,
        max_attempts: int,
        max_retry_delay_s: float,
        claim_idle_s: float = 60.0,
        block_ms: int = 1000,
        concurrency: int = 4,
        max_held: int = 100,
        base_delay_s: float = 1.0,
        shutdown_grace_s: float = 5.0,
        rng: random.Random | None = None,
        observer: Observer = NULL_OBSERVER,
        groups: Callable[[], Iterable[str]] = tuple,
    ) -> None:
        if block_ms < 1 or concurrency < 1 or max_held < concurrency or max_attempts < 1:
            raise ValueError("need block_ms >= 1, concurrency >= 1, max_held >= concurrency, max_attempts >= 1")
        self.sink = sink
        self.consumer = consumer
        self._outbox = OutboxGroup(redis, keys, sink.name, consumer)
        self._group = sink.name
        self._clock = clock
        self._max_attempts = max_attempts
        self._max_delay = max_retry_delay_s
        self._base_delay = base_delay_s
        self._claim_idle_ms = max(1, int(claim_idle_s * 1000))
        self._claim_every = claim_idle_s / 2
        self._refresh_every = claim_idle_s / 3
        self._block_ms = block_ms
        self._grace = shutdown_grace_s
        self._rng = rng or random.Random()
        self._observer = observer
        self._groups = groups
        self._route: Route = getattr(sink, "route", None) or Route(min_severity=getattr(sink, "min_severity", None))
        self._log = structlog.get_logger(__name__).bind(sink=sink.name)

        self._held = HeldEntries(clock, max_held=max_held, concurrency=concurrency)
        self._disabled: str | None = None  # set by a 410: dead-letter everything until restart
        self._delivered = 0
        self._pel_cursor: str | None = "0"  # None once our own pending entries have been re-read
        self._claim_cursor = "0-0"
        self._next_claim = 0.0
        self._next_refresh = 0.0

    @property
    def delivered(self) -> int:
        """Alerts this deliverer has delivered (and acknowledged) so far."""
        return self._delivered

    async def ensure_group(self) -> str | None:
        """Create this sink's consumer group if needed, with every other sink's that is missing (``groups``); returns
        this group's start id when it was created. See ``monitor.storage.outbox.ensure_groups``."""
        created = await self._outbox.ensure(self._groups())
        if created:
            self._log.info("outbox_groups_created", groups=sorted(created), start=next(iter(created.values())))
        return created.get(self._group)

    # -- the two drivers ---------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until ``stop`` is set. Survives Redis restarts; in-flight sends get ``shutdown_grace_s``."""
        self._restart()
        watcher = asyncio.create_task(self._held.wake_on(stop))
        grace = self._grace
        pause = _REDIS_BACKOFF_S[0]
        group_ready = False
        try:
            while not stop.is_set():
                try:
                    if not group_ready:
                        await self.ensure_group()
                        group_ready = True
                    await self._tick(self._block_ms)
                    pause = _REDIS_BACKOFF_S[0]
                except OutboxGroupMissingError:
                    # The stream or group vanished (Redis lost its data, or someone deleted it): recreate.
                    self._log.warning("outbox_group_missing")
                    group_ready = False
                    self._pel_cursor = "0"
                    continue
                except Exception as exc:
                    # Redis restarting (or full, or read-only during a failover) must not end delivery; nor may
                    # a bug hit by one entry. Back off, then resume where the pending list says we were.
                    self._loop_failed(exc, pause)
                    self._pel_cursor = "0"  # entries read just before the failure may be ours but unheld
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), pause)
                    pause = min(pause * 2, _REDIS_BACKOFF_S[1])
        except asyncio.CancelledError:
            grace = 0.0  # cancelled, not asked to stop: leave at once; pending entries are redelivered later
            raise
        finally:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
            await self._held.finish_sends(grace)

    def _loop_failed(self, exc: Exception, pause: float) -> None:
        origin = _origin(exc)
        if isinstance(exc, StoreUnavailableError):
            self._log.warning("outbox_redis_error", error=type(origin).__name__, retry_in_s=pause)
        else:
            self._log.error(
                "outbox_redis_error" if isinstance(exc, StoreError) else "outbox_loop_failed",
                error=type(origin).__name__,
                detail=str(origin)[:200],
                retry_in_s=pause,
            )

    async def drain(self, timeout_s: float) -> int:
        """Deliver everything due now (own pending entries, idle entries of dead consumers, new entries, and
        retries that fall due before the deadline), then return how many alerts were delivered.

        Returns early when nothing is left but retries due after ``timeout_s``; those stay pending for a later
        ``drain`` or ``run``. Sends still in flight at the deadline are cancelled (and redelivered later).
        Raises ``StoreError`` if Redis fails.
        """
        before = self._delivered
        deadline = self._clock.monotonic() + timeout_s
        self._restart()
        more_new = True
        try:
            await self.ensure_group()
            while (now := self._clock.monotonic()) < deadline:
                self._held.changed.clear()
                self._start_due()
                if self._held.room() and not self._held.ready_waiting(now):
                    if self._pel_cursor is not None:
                        await self._read_own()
                        continue
                    if now >= self._next_claim:
                        await self._autoclaim()
                        continue
                    if more_new:
                        room = self._held.room()
                        more_new = await self._read_new(room, None) >= room
                        continue
                next_due = self._held.next_due()
                if not self._held.sending and (next_due is None or next_due > deadline):
                    break
                await self._held.idle(self._held.wake_at(now, deadline) - now)
        except StoreError as exc:
            raise StoreError(f"outbox delivery to {self.sink.name}: {exc}") from exc
        finally:
            await self._held.finish_sends(0.0)
        return self._delivered - before

    # -- one round of the daemon loop --------------------------------------------------------------------

    async def _tick(self, block_ms: int) -> None:
        self._held.changed.clear()
        now = self._clock.monotonic()
        if now >= self._next_refresh:
            await self._refresh_held()
            self._next_refresh = now + self._refresh_every
        self._start_due()
        if self._held.room() and not self._held.ready_waiting(now):
            if self._pel_cursor is not None:
                await self._read_own()
            elif now >= self._next_claim:
                await self._autoclaim()
            else:
                wait_ms = block_ms
                if (next_due := self._held.next_due()) is not None:  # wake up in time for the next retry
                    wait_ms = max(1, min(block_ms, int((next_due - now) * 1000) + 1))
                await self._read_new(self._held.room(), wait_ms)
            return
        await self._held.idle(self._held.wake_at(now, now + block_ms / 1000) - now)

    def _restart(self) -> None:
        # Re-read our pending list and sweep for abandoned entries at every start; held entries keep their timers.
        self._pel_cursor = "0"
        self._claim_cursor = "0-0"
        self._next_claim = 0.0
        self._next_refresh = 0.0

    # -- reading -----------------------------------------------------------------------------------------

    async def _read_own(self) -> None:
        assert self._pel_cursor is not None
        entries = await self._outbox.read(self._pel_cursor, self._held.room())
        if not entries:
            self._pel_cursor = None
            return
        self._pel_cursor = entries[-1].entry_id
        for entry in entries:
            self._take(entry)

    async def _autoclaim(self) -> None:
        claim = await self._outbox.claim_idle(self._claim_idle_ms, self._claim_cursor, self._held.room())
        self._claim_cursor = claim.cursor
        if self._claim_cursor == "0-0":
            self._next_claim = self._clock.monotonic() + self._claim_every
        if claim.vanished:
            self._pel_cursor = "0"  # claimed but deleted meanwhile: a re-read of our pending list acknowledges them
        claimed = sum(self._take(entry) for entry in claim.entries)
        if claimed:
            self._log.info("outbox_entries_claimed", count=claimed)

    async def _read_new(self, count: int, block_ms: int | None) -> int:
        entries = await self._outbox.read(">", count, block_ms)
        for entry in entries:
            self._take(entry)
        return len(entries)

    def _take(self, stored: OutboxEntry) -> bool:
        """Hold a read entry and queue it, deciding at once what needs no sending."""
        if stored.entry_id in self._held:
            return False
        entry = HeldEntry(stored)
        if stored.missing:
            entry.outcome = "missing"  # deleted from the stream while pending
        elif stored.only_sink is not None and stored.only_sink != self._group:
            entry.outcome = "skipped"  # a dead-letter retry meant for another sink
        else:
            try:
                alert = json.loads(stored.alert)
            except ValueError:
                alert = None
            if not isinstance(alert, dict) or "id" not in alert:
                entry.outcome, entry.reason = "dead", "malformed outbox entry: alert is not a JSON object with an id"
            else:
                entry.alert = alert
                if not self._route.allows(alert):
                    entry.outcome = "skipped"
        self._held.hold(entry)
        return True

    async def _refresh_held(self) -> None:
        """Re-claim what we hold so it never looks idle to other replicas; drop what another one finished."""
        ids = self._held.ids()
        if ids:
            self._held.drop_unless(ids, still_pending=await self._outbox.keep(ids))

    # -- delivering --------------------------------------------------------------------------------------

    def _start_due(self) -> None:
        self._held.start_due(self._deliver, name=f"deliver-{self._group}")

    async def _deliver(self, entry: HeldEntry) -> None:
        log = self._log.bind(alert=entry.stored.alert_id)
        try:
            if entry.outcome is None:
                await self._attempt(entry, log)
            if entry.outcome is not None:
                await self._commit(entry, log)
                self._held.drop(entry.entry_id)
        except StoreUnavailableError as exc:
            log.warning("outbox_redis_error", error=type(_origin(exc)).__name__, retry_in_s=_REDIS_BACKOFF_S[0])
            self._held.schedule(entry, _REDIS_BACKOFF_S[0])
        except Exception as exc:  # e.g. Redis answered an error; never leave the entry without a timer
            log.error("outbox_delivery_failed", error=type(_origin(exc)).__name__, retry_in_s=_REDIS_BACKOFF_S[1])
            self._held.schedule(entry, _REDIS_BACKOFF_S[1])
        except asyncio.CancelledError:
            # Stopped mid-send: the entry stays pending in Redis and is re-read on the next start.
            self._held.drop(entry.entry_id)
            raise

    async def _attempt(self, entry: HeldEntry, log: Any) -> None:
        """Send once; sets ``entry.outcome`` when the entry is finished, else schedules the next try."""
        if self._disabled is not None:
            entry.outcome, entry.reason = "dead", self._disabled
            return
        previous = entry.reason
        entry.attempts = await self._outbox.count_attempt(entry.entry_id)
        if entry.attempts > self._max_attempts:  # the last try ended with the process (or max_attempts shrank)
            entry.attempts -= 1
            entry.outcome, entry.reason = "dead", f"gave up after {entry.attempts} attempts: {previous or 'unknown'}"
            return
        retry_after: float | None = None
        try:
            await self.sink.send(entry.alert)
        except PermanentDeliveryError as exc:
            entry.outcome, entry.reason = "dead", exc.reason
            if exc.disable_sink and self._disabled is None:
                self._disabled = f"sink disabled until restart by an earlier refusal: {exc.reason}"
                log.warning("sink_disabled", reason=exc.reason)
            return
        except DeliveryError as exc:
            entry.reason, retry_after = exc.reason, exc.retry_after
        except Exception as exc:
            # A sink bug costs this alert a retry, never the deliverer. Only the type is logged: a message could
            # carry a webhook URL.
            entry.reason = f"unexpected {type(exc).__name__} in sink"
        else:
            entry.outcome = "delivered"
            return
        if entry.attempts >= self._max_attempts:
            entry.outcome, entry.reason = "dead", f"gave up after {entry.attempts} attempts: {entry.reason}"
            return
        delay = retry_delay(
            entry.attempts, base_s=self._base_delay, cap_s=self._max_delay, retry_after=retry_after, rng=self._rng
        )
        log.info("alert_retry_scheduled", attempt=entry.attempts, delay_s=round(delay, 3), reason=entry.reason)
        self._observer.alert_failed(self._group)
        self._held.schedule(entry, delay)

    async def _commit(self, entry: HeldEntry, log: Any) -> None:
        """Acknowledge (and for a dead letter, record) the entry in one transaction."""
        if entry.outcome == "dead":
            await self._outbox.dead_letter(
                entry.stored, reason=entry.reason, attempts=entry.attempts, time=utc_iso(self._clock.now())
            )
        else:
            await self._outbox.ack(entry.entry_id)
        if entry.outcome == "delivered":
            self._delivered += 1
            log.info("alert_delivered", attempts=entry.attempts)
            self._observer.alert_delivered(self._group, self._since_enqueued(entry.stored))
        elif entry.outcome == "dead":
            log.warning("alert_dead_lettered", reason=entry.reason, attempts=entry.attempts)
            self._observer.alert_dead_lettered(self._group)
        elif entry.outcome == "missing":
            log.warning("outbox_entry_missing", entry=entry.entry_id)
        else:
            log.debug("alert_skipped")

    def _since_enqueued(self, stored: OutboxEntry) -> float | None:
        """Seconds since the entry was added, in the same atomic step that claimed the article: the detection
        latency from processing to the sink's 2xx."""
        enqueued = stored.enqueued_s
        return None if enqueued is None else max(0.0, self._clock.now().timestamp() - enqueued)
