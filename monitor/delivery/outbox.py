"""Delivery from the outbox stream to the sinks: at least once to every sink, or a dead letter with the reason.

Every alert is one entry of the outbox stream (fields ``alert``: the payload JSON, ``id``: the alert id, and
optionally ``only_sink``, see ``monitor.storage.deadletters``).
Each sink reads the stream through its own consumer group (the
group is the sink's name), driven by one ``Deliverer``; replicas of the monitor share a group, each as its own
consumer, so an alert goes to each sink once per group however many replicas run.

An entry stays in the group's pending list until the sink accepted it (XACK after success) or it was
dead-lettered, so nothing is lost if the process dies mid-delivery: on restart a deliverer first re-delivers its
own pending entries, and entries of a consumer that vanished are taken over (XAUTOCLAIM) once idle for
``claim_idle_s``. A deliverer keeps the entries it holds from looking idle by re-claiming them every
``claim_idle_s / 3`` seconds, so a long retry backoff is not mistaken for a dead consumer.

Failed attempts are retried with exponential backoff and full jitter, waiting at least a ``Retry-After`` the
sink was given, and never longer than ``max_retry_delay_s`` (which also caps ``Retry-After``). Each entry has
its own timer, so one failing alert never holds back newer ones. Attempt counts live in Redis (a restart does
not reset them); the timers only in memory (a restarted deliverer retries its pending entries at once).
Memory is bounded: a deliverer holds at most ``max_held`` entries (in flight or waiting for a retry) and reads
no new entries while it is full, so a sink that is down for days costs nothing but stream length.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import heapq
import itertools
import json
import random
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
import structlog
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from monitor.core.clock import Clock, utc_iso
from monitor.core.errors import DeliveryError, PermanentDeliveryError, StoreError
from monitor.core.observe import NULL_OBSERVER, Observer
from monitor.delivery.sinks import Sink
from monitor.storage.deadletters import DEAD_MAXLEN
from monitor.storage.keys import Keys

__all__ = ["REDIS_ERRORS", "Deliverer", "ensure_group", "retry_delay", "trim_delivered"]

#: Errors that mean "Redis is unreachable or restarting": survivable, retried after a pause.
REDIS_ERRORS = (RedisConnectionError, RedisTimeoutError)
_REDIS_BACKOFF_S = (0.5, 30.0)
_EntryFields = dict[bytes, bytes]

# Atomic, so no XADD can fall between the check and the creation. A stream that does not exist yet, or that no
# group has read yet, is read from its start: everything in it is still undelivered (the first run of a fresh
# install may enqueue before every group exists). A sink added to a stream other sinks already consume starts
# at '$', so it does not receive the whole history.
_ENSURE_GROUP = """
local start = '0'
if redis.call('EXISTS', KEYS[1]) == 1 then
  local groups = redis.call('XINFO', 'GROUPS', KEYS[1])
  for _, group in ipairs(groups) do
    for i = 1, #group, 2 do
      if group[i] == 'name' and group[i + 1] == ARGV[1] then return false end
    end
  end
  if #groups > 0 then start = '$' end
end
redis.call('XGROUP', 'CREATE', KEYS[1], ARGV[1], start, 'MKSTREAM')
return start
"""


async def ensure_group(redis: aioredis.Redis, keys: Keys, group: str) -> str | None:
    """Create ``group`` on the outbox unless it exists; returns the start id used (``0`` or ``$``), or None.

    Call it for every sink before anything is enqueued (the composition root does so at start-up): a group that
    is created while others already exist starts at ``$`` and never sees entries added before it.
    """
    created = await redis.eval(_ENSURE_GROUP, 1, keys.outbox, group)
    return created.decode() if isinstance(created, bytes) else created or None


def retry_delay(attempts: int, *, base_s: float, cap_s: float, retry_after: float | None, rng: random.Random) -> float:
    """Seconds until the next try after ``attempts`` failed ones: full jitter over ``base_s * 2**(attempts-1)``,
    at least ``retry_after`` when the sink gave one, and never more than ``cap_s``."""
    ceiling = min(cap_s, base_s * 2.0 ** min(attempts - 1, 60))
    delay = rng.uniform(0.0, ceiling)
    if retry_after is not None:
        delay = max(delay, min(retry_after, cap_s))
    return delay


@dataclass(slots=True)
class _Entry:
    """One outbox entry this deliverer holds. ``outcome`` is set once decided; committing it to Redis may need
    retries of its own (Redis down) that must not re-send the alert."""

    entry_id: str
    alert_id: str
    raw: bytes
    alert: dict[str, Any] = field(default_factory=dict)
    due: float = 0.0
    attempts: int = 0
    outcome: str | None = None  # delivered | skipped | missing | dead
    reason: str = ""


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else value


class Deliverer:
    """Delivers the outbox to one sink. Run one per sink, each as its own task, so sinks never wait on each other.

    ``block_ms`` is how long one read waits for new entries; keep it well below the Redis client's socket
    timeout. ``concurrency`` bounds simultaneous sends to the sink, ``max_held`` the entries held in memory.
    A sink with a ``min_severity`` attribute (the built-in ones have it) is not sent alerts below that severity:
    they are acknowledged unsent. The consumer name must be stable across restarts of one replica (e.g. the host
    name) and unique among replicas.
    """

    def __init__(
        self,
        redis: aioredis.Redis,
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
    ) -> None:
        if block_ms < 1 or concurrency < 1 or max_held < concurrency or max_attempts < 1:
            raise ValueError("need block_ms >= 1, concurrency >= 1, max_held >= concurrency, max_attempts >= 1")
        self.sink = sink
        self.consumer = consumer
        self._redis = redis
        self._keys = keys
        self._group = sink.name
        self._clock = clock
        self._max_attempts = max_attempts
        self._max_delay = max_retry_delay_s
        self._base_delay = base_delay_s
        self._claim_idle_ms = max(1, int(claim_idle_s * 1000))
        self._claim_every = claim_idle_s / 2
        self._refresh_every = claim_idle_s / 3
        self._block_ms = block_ms
        self._concurrency = concurrency
        self._max_held = max_held
        self._grace = shutdown_grace_s
        self._rng = rng or random.Random()
        self._observer = observer
        self._min_severity: int | None = getattr(sink, "min_severity", None)
        self._log = structlog.get_logger(__name__).bind(sink=sink.name)

        self._held: dict[str, _Entry] = {}
        self._queue: list[tuple[float, int, str]] = []  # heap of (due, tie-breaker, entry id)
        self._seq = itertools.count()
        self._sending: dict[str, asyncio.Task[None]] = {}
        self._changed = asyncio.Event()
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
        """Create this sink's consumer group if needed; see the module-level ``ensure_group``."""
        start = await ensure_group(self._redis, self._keys, self._group)
        if start is not None:
            self._log.info("outbox_group_created", start=start)
        return start

    # -- the two drivers ---------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until ``stop`` is set. Survives Redis restarts; in-flight sends get ``shutdown_grace_s``."""
        self._restart()
        watcher = asyncio.create_task(self._wake_on(stop))
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
                except Exception as exc:
                    if isinstance(exc, ResponseError) and "NOGROUP" in str(exc):
                        # The stream or group vanished (Redis lost its data, or someone deleted it): recreate.
                        self._log.warning("outbox_group_missing")
                        group_ready = False
                        self._pel_cursor = "0"
                        continue
                    # Redis restarting (or full, or read-only during a failover) must not end delivery; nor may
                    # a bug hit by one entry. Back off, then resume where the pending list says we were.
                    if isinstance(exc, REDIS_ERRORS):
                        self._log.warning("outbox_redis_error", error=type(exc).__name__, retry_in_s=pause)
                    else:
                        self._log.error(
                            "outbox_redis_error" if isinstance(exc, RedisError) else "outbox_loop_failed",
                            error=type(exc).__name__,
                            detail=str(exc)[:200],
                            retry_in_s=pause,
                        )
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
            await self._finish_sends(grace)

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
                self._changed.clear()
                self._start_due()
                if self._room() and not self._ready_waiting(now):
                    if self._pel_cursor is not None:
                        await self._read_own()
                        continue
                    if now >= self._next_claim:
                        await self._autoclaim()
                        continue
                    if more_new:
                        room = self._room()
                        more_new = await self._read_new(room, None) >= room
                        continue
                next_due = self._queue[0][0] if self._queue else None
                if not self._sending and (next_due is None or next_due > deadline):
                    break
                await self._idle(self._wake_at(now, deadline) - now)
        except (*REDIS_ERRORS, ResponseError) as exc:
            raise StoreError(f"outbox delivery to {self.sink.name}: {type(exc).__name__}: {exc}") from exc
        finally:
            await self._finish_sends(0.0)
        return self._delivered - before

    # -- one round of the daemon loop --------------------------------------------------------------------

    async def _tick(self, block_ms: int) -> None:
        self._changed.clear()
        now = self._clock.monotonic()
        if now >= self._next_refresh:
            await self._refresh_held()
            self._next_refresh = now + self._refresh_every
        self._start_due()
        if self._room() and not self._ready_waiting(now):
            if self._pel_cursor is not None:
                await self._read_own()
            elif now >= self._next_claim:
                await self._autoclaim()
            else:
                wait_ms = block_ms
                if self._queue:  # wake up in time for the next retry
                    wait_ms = max(1, min(block_ms, int((self._queue[0][0] - now) * 1000) + 1))
                await self._read_new(self._room(), wait_ms)
            return
        await self._idle(self._wake_at(now, now + block_ms / 1000) - now)

    def _restart(self) -> None:
        # Re-read our own pending list and sweep for abandoned entries at every start; held entries keep their
        # timers (a read of an entry we already hold is ignored).
        self._pel_cursor = "0"
        self._claim_cursor = "0-0"
        self._next_claim = 0.0
        self._next_refresh = 0.0

    async def _wake_on(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self._changed.set()

    async def _idle(self, seconds: float) -> None:
        if seconds > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), seconds)

    def _wake_at(self, now: float, latest: float) -> float:
        """When to look again: the next retry timer, unless it is already due and only waits for a send slot,
        which a finishing send signals through ``_changed``."""
        if self._queue and now < self._queue[0][0] < latest:
            return self._queue[0][0]
        return latest

    def _room(self) -> int:
        return max(0, self._max_held - len(self._held))

    def _ready_waiting(self, now: float) -> bool:
        """Due entries wait for a free send slot: wait for a send to finish rather than read more."""
        return bool(self._queue) and self._queue[0][0] <= now and len(self._sending) >= self._concurrency

    # -- reading -----------------------------------------------------------------------------------------

    async def _xreadgroup(self, stream_id: str, count: int, block_ms: int | None) -> list[tuple[Any, Any]]:
        # Typed loosely on purpose: the reply's shape depends on the client's protocol and parser settings.
        reply: Any = await self._redis.xreadgroup(
            self._group, self.consumer, {self._keys.outbox: stream_id}, count=count, block=block_ms
        )
        if not reply:
            return []
        streams = reply.values() if isinstance(reply, dict) else (entries for _, entries in reply)
        return [entry for entries in streams for entry in entries]

    async def _read_own(self) -> None:
        assert self._pel_cursor is not None
        entries = await self._xreadgroup(self._pel_cursor, self._room(), None)
        if not entries:
            self._pel_cursor = None
            return
        self._pel_cursor = _text(entries[-1][0])
        for entry_id, fields in entries:
            self._take(_text(entry_id), fields)

    async def _autoclaim(self) -> None:
        reply = await self._redis.xautoclaim(
            self._keys.outbox,
            self._group,
            self.consumer,
            self._claim_idle_ms,
            start_id=self._claim_cursor,
            count=self._room(),
        )
        self._claim_cursor = _text(reply[0])
        if self._claim_cursor == "0-0":
            self._next_claim = self._clock.monotonic() + self._claim_every
        claimed = 0
        for entry_id, fields in reply[1]:
            if entry_id is None:
                # Redis 6.2 claims entries deleted from the stream without naming them; they are now in our own
                # pending list, where a re-read finds (and acknowledges) them.
                self._pel_cursor = "0"
                continue
            claimed += self._take(_text(entry_id), fields)
        if claimed:
            self._log.info("outbox_entries_claimed", count=claimed)

    async def _read_new(self, count: int, block_ms: int | None) -> int:
        entries = await self._xreadgroup(">", count, block_ms)
        for entry_id, fields in entries:
            self._take(_text(entry_id), fields)
        return len(entries)

    def _take(self, entry_id: str, fields: _EntryFields | None) -> bool:
        """Hold a read entry and queue it, deciding at once what needs no sending."""
        if entry_id in self._held:
            return False
        fields = fields or {}
        entry = _Entry(entry_id, _text(fields.get(b"id", b"?")), fields.get(b"alert", b""))
        only = fields.get(b"only_sink")
        if not fields:
            entry.outcome = "missing"  # deleted from the stream while pending
        elif only is not None and _text(only) != self._group:
            entry.outcome = "skipped"  # a dead-letter retry meant for another sink
        else:
            try:
                alert = json.loads(entry.raw)
            except ValueError:
                alert = None
            if not isinstance(alert, dict) or "id" not in alert:
                entry.outcome, entry.reason = "dead", "malformed outbox entry: alert is not a JSON object with an id"
            else:
                entry.alert = alert
                severity = alert.get("severity")
                if self._min_severity is not None and isinstance(severity, int) and severity < self._min_severity:
                    entry.outcome = "skipped"
        self._held[entry_id] = entry
        self._schedule(entry, 0.0)
        return True

    async def _refresh_held(self) -> None:
        """Re-claim what we hold so it never looks idle to other replicas; drop what another one finished."""
        ids: list[Any] = list(self._held)
        if not ids:
            return
        kept: Any = await self._redis.xclaim(self._keys.outbox, self._group, self.consumer, 0, ids, justid=True)
        still_pending = {_text(i) for i in kept}
        for entry_id in ids:
            if entry_id not in still_pending and entry_id not in self._sending:
                self._held.pop(entry_id, None)

    # -- delivering --------------------------------------------------------------------------------------

    def _schedule(self, entry: _Entry, delay: float) -> None:
        entry.due = self._clock.monotonic() + delay
        heapq.heappush(self._queue, (entry.due, next(self._seq), entry.entry_id))
        self._changed.set()

    def _start_due(self) -> None:
        now = self._clock.monotonic()
        while self._queue and self._queue[0][0] <= now and len(self._sending) < self._concurrency:
            due, _, entry_id = heapq.heappop(self._queue)
            entry = self._held.get(entry_id)
            if entry is None or entry.due != due or entry_id in self._sending:
                continue  # a stale timer of an entry dropped or rescheduled since
            task = asyncio.create_task(self._deliver(entry), name=f"deliver-{self._group}-{entry_id}")
            self._sending[entry_id] = task
            task.add_done_callback(functools.partial(self._sent, entry_id))

    def _sent(self, entry_id: str, _task: asyncio.Task[None]) -> None:
        self._sending.pop(entry_id, None)
        self._changed.set()

    async def _deliver(self, entry: _Entry) -> None:
        log = self._log.bind(alert=entry.alert_id)
        try:
            if entry.outcome is None:
                await self._attempt(entry, log)
            if entry.outcome is not None:
                await self._commit(entry, log)
                self._held.pop(entry.entry_id, None)
        except REDIS_ERRORS as exc:
            log.warning("outbox_redis_error", error=type(exc).__name__, retry_in_s=_REDIS_BACKOFF_S[0])
            self._schedule(entry, _REDIS_BACKOFF_S[0])
        except Exception as exc:  # e.g. a ResponseError; never leave the entry without a timer
            log.error("outbox_delivery_failed", error=type(exc).__name__, retry_in_s=_REDIS_BACKOFF_S[1])
            self._schedule(entry, _REDIS_BACKOFF_S[1])
        except asyncio.CancelledError:
            # Stopped mid-send: the entry stays pending in Redis and is re-read on the next start.
            self._held.pop(entry.entry_id, None)
            raise

    async def _attempt(self, entry: _Entry, log: Any) -> None:
        """Send once; sets ``entry.outcome`` when the entry is finished, else schedules the next try."""
        if self._disabled is not None:
            entry.outcome, entry.reason = "dead", self._disabled
            return
        previous = entry.reason
        entry.attempts = int(await self._redis.hincrby(self._keys.attempts(self._group), entry.entry_id, 1))
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
        self._schedule(entry, delay)

    async def _commit(self, entry: _Entry, log: Any) -> None:
        """Acknowledge (and for a dead letter, record) the entry in one transaction."""
        async with self._redis.pipeline(transaction=True) as pipe:
            if entry.outcome == "dead":
                pipe.xadd(
                    self._keys.dead,
                    {
                        b"sink": self._group,
                        b"id": entry.alert_id,
                        b"alert": entry.raw,
                        b"reason": entry.reason,
                        b"attempts": str(entry.attempts),
                        b"time": utc_iso(self._clock.now()),
                        b"entry": entry.entry_id,
                    },
                    maxlen=DEAD_MAXLEN,
                    approximate=True,
                )
            pipe.xack(self._keys.outbox, self._group, entry.entry_id)
            pipe.hdel(self._keys.attempts(self._group), entry.entry_id)
            await pipe.execute()
        if entry.outcome == "delivered":
            self._delivered += 1
            log.info("alert_delivered", attempts=entry.attempts)
            self._observer.alert_delivered(self._group, self._since_enqueued(entry.entry_id))
        elif entry.outcome == "dead":
            log.warning("alert_dead_lettered", reason=entry.reason, attempts=entry.attempts)
            self._observer.alert_dead_lettered(self._group)
        elif entry.outcome == "missing":
            log.warning("outbox_entry_missing", entry=entry.entry_id)
        else:
            log.debug("alert_skipped")

    def _since_enqueued(self, entry_id: str) -> float | None:
        """Seconds since the entry was added: its id is Redis's clock in ms at XADD, which ran in the same atomic
        step that claimed the article, so this is the detection latency from processing to the sink's 2xx."""
        try:
            enqueued_ms = int(entry_id.split("-", 1)[0])
        except ValueError:
            return None
        return max(0.0, self._clock.now().timestamp() - enqueued_ms / 1000)

    async def _finish_sends(self, grace: float) -> None:
        tasks = list(self._sending.values())
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=grace) if grace > 0 else (set(), set(tasks))
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)


# Removes the entries every group has finished with: those older than the oldest entry any group still holds
# (pending) or has not read yet (after its last-delivered id). Atomic, so no group can move in between.
_TRIM_DELIVERED = """
local function older(a, b)
  local ams, aseq = string.match(a, '(%d+)-(%d+)')
  local bms, bseq = string.match(b, '(%d+)-(%d+)')
  ams, aseq, bms, bseq = tonumber(ams), tonumber(aseq), tonumber(bms), tonumber(bseq)
  return ams < bms or (ams == bms and aseq < bseq)
end
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local groups = redis.call('XINFO', 'GROUPS', KEYS[1])
if #groups == 0 then return 0 end
local floor = nil
for _, group in ipairs(groups) do
  local info = {}
  for i = 1, #group, 2 do info[group[i]] = group[i + 1] end
  local keep = info['last-delivered-id']
  if tonumber(info['pending']) > 0 then
    local summary = redis.call('XPENDING', KEYS[1], info['name'])
    if older(summary[2], keep) then keep = summary[2] end
  end
  if floor == nil or older(keep, floor) then floor = keep end
end
return redis.call('XTRIM', KEYS[1], 'MINID', floor)
"""


async def trim_delivered(redis: aioredis.Redis, keys: Keys) -> int:
    """Drop outbox entries that every sink's group has delivered or dead-lettered; returns how many went.

    Undelivered entries (pending, or not yet read by some group) are never trimmed.
    """
    return int(await redis.eval(_TRIM_DELIVERED, 1, keys.outbox))
