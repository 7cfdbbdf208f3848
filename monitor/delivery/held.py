"""The outbox entries one deliverer holds in memory, each with its own timer, and their sends in flight.

At most ``max_held`` entries are held (in flight or waiting for a retry) and at most ``concurrency`` are sent at
once. ``monitor.delivery.outbox`` decides what becomes of each entry and when it is due again; this module only
keeps the entries, their timers and the send tasks, and wakes the deliverer when a timer is set or a send ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import heapq
import itertools
from collections.abc import Callable, Collection, Coroutine
from dataclasses import dataclass, field
from typing import Any

from monitor.core.clock import Clock
from monitor.storage.outbox import OutboxEntry

__all__ = ["HeldEntries", "HeldEntry"]


@dataclass(slots=True)
class HeldEntry:
    """One outbox entry a deliverer holds. ``outcome`` is set once decided; committing it to Redis may need
    retries of its own (Redis down) that must not re-send the alert."""

    stored: OutboxEntry
    alert: dict[str, Any] = field(default_factory=dict)
    due: float = 0.0
    attempts: int = 0
    outcome: str | None = None  # delivered | skipped | missing | dead
    reason: str = ""

    @property
    def entry_id(self) -> str:
        return self.stored.entry_id


class HeldEntries:
    """The held entries by id, a heap of their timers, and the send task of each entry being sent."""

    def __init__(self, clock: Clock, *, max_held: int, concurrency: int) -> None:
        self._clock = clock
        self._max_held = max_held
        self._concurrency = concurrency
        self._held: dict[str, HeldEntry] = {}
        self._queue: list[tuple[float, int, str]] = []  # heap of (due, tie-breaker, entry id)
        self._seq = itertools.count()
        self._sending: dict[str, asyncio.Task[None]] = {}
        #: Set when a timer is set or a send ends (and by ``wake``); cleared by the deliverer before it looks.
        self.changed = asyncio.Event()

    def __contains__(self, entry_id: str) -> bool:
        return entry_id in self._held

    def ids(self) -> list[str]:
        return list(self._held)

    def room(self) -> int:
        """How many more entries may be held."""
        return max(0, self._max_held - len(self._held))

    def hold(self, entry: HeldEntry) -> None:
        """Hold a new entry, due at once."""
        self._held[entry.entry_id] = entry
        self.schedule(entry, 0.0)

    def drop(self, entry_id: str) -> None:
        """Forget an entry (its timer, if any, goes stale)."""
        self._held.pop(entry_id, None)

    def drop_unless(self, entry_ids: Collection[str], still_pending: Collection[str]) -> None:
        """Drop those of ``entry_ids`` not ``still_pending`` here (another replica finished them), unless being
        sent."""
        for entry_id in entry_ids:
            if entry_id not in still_pending and entry_id not in self._sending:
                self._held.pop(entry_id, None)

    def schedule(self, entry: HeldEntry, delay: float) -> None:
        """Make the entry due ``delay`` seconds from now (replacing its earlier timer)."""
        entry.due = self._clock.monotonic() + delay
        heapq.heappush(self._queue, (entry.due, next(self._seq), entry.entry_id))
        self.changed.set()

    def next_due(self) -> float | None:
        """When the earliest timer falls due (it may be a stale one: that only wakes the deliverer early)."""
        return self._queue[0][0] if self._queue else None

    @property
    def sending(self) -> bool:
        return bool(self._sending)

    def start_due(self, send: Callable[[HeldEntry], Coroutine[Any, Any, None]], name: str) -> None:
        """Start ``send`` for each due entry, as its own task named ``name-<entry id>``, while slots are free."""
        now = self._clock.monotonic()
        while self._queue and self._queue[0][0] <= now and len(self._sending) < self._concurrency:
            due, _, entry_id = heapq.heappop(self._queue)
            entry = self._held.get(entry_id)
            if entry is None or entry.due != due or entry_id in self._sending:
                continue  # a stale timer of an entry dropped or rescheduled since
            task = asyncio.create_task(send(entry), name=f"{name}-{entry_id}")
            self._sending[entry_id] = task
            task.add_done_callback(functools.partial(self._sent, entry_id))

    def _sent(self, entry_id: str, _task: asyncio.Task[None]) -> None:
        self._sending.pop(entry_id, None)
        self.changed.set()

    def ready_waiting(self, now: float) -> bool:
        """Due entries wait for a free send slot: wait for a send to finish rather than read more."""
        return bool(self._queue) and self._queue[0][0] <= now and len(self._sending) >= self._concurrency

    def wake_at(self, now: float, latest: float) -> float:
        """When to look again: the next retry timer, unless it is already due and only waits for a send slot,
        which a finishing send signals through ``changed``."""
        if self._queue and now < self._queue[0][0] < latest:
            return self._queue[0][0]
        return latest

    async def wake_on(self, stop: asyncio.Event) -> None:
        """Set ``changed`` once ``stop`` is set."""
        await stop.wait()
        self.changed.set()

    async def idle(self, seconds: float) -> None:
        """Wait up to ``seconds`` for ``changed``."""
        if seconds > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), seconds)

    async def finish_sends(self, grace: float) -> None:
        """Let sends in flight finish within ``grace`` seconds, then cancel the rest."""
        tasks = list(self._sending.values())
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=grace) if grace > 0 else (set(), set(tasks))
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
