"""``monitor.delivery.held``: the entries a deliverer holds, their timers and their sends (no Redis involved)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from monitor.delivery.held import HeldEntries, HeldEntry
from monitor.storage.outbox import OutboxEntry


class ManualClock:
    """Monotonic time moves only when the test moves it."""

    def __init__(self) -> None:
        self.t = 100.0

    def now(self) -> datetime:
        return datetime(2024, 1, 4, tzinfo=UTC)

    def monotonic(self) -> float:
        return self.t


def entry(n: int) -> HeldEntry:
    return HeldEntry(OutboxEntry(f"{n}-0", f"a{n}", b"{}"))


def held(max_held: int = 3, concurrency: int = 2) -> tuple[HeldEntries, ManualClock]:
    clock = ManualClock()
    return HeldEntries(clock, max_held=max_held, concurrency=concurrency), clock


async def test_room_and_timers() -> None:
    entries, clock = held()
    assert entries.room() == 3 and entries.next_due() is None
    first, second = entry(1), entry(2)
    entries.hold(first)
    entries.hold(second)
    assert entries.room() == 1 and "1-0" in entries and entries.ids() == ["1-0", "2-0"]
    assert entries.changed.is_set()
    assert entries.next_due() == 100.0
    assert entries.wake_at(100.0, 110.0) == 110.0  # due already: only a change (a free slot) wakes it earlier
    clock.t = 99.0
    assert entries.wake_at(99.0, 110.0) == 100.0  # the next timer
    assert entries.wake_at(99.0, 100.0) == 100.0
    entries.drop("2-0")
    assert entries.room() == 2 and "2-0" not in entries


async def test_due_entries_are_sent_within_the_concurrency_and_stale_timers_are_skipped() -> None:
    entries, _ = held(max_held=5, concurrency=2)
    release = asyncio.Event()
    started: list[str] = []

    async def send(item: HeldEntry) -> None:
        started.append(item.entry_id)
        await release.wait()

    items = [entry(n) for n in range(4)]
    for item in items:
        entries.hold(item)
    entries.schedule(items[0], 60.0)  # its first timer is stale now, the new one not due yet
    entries.start_due(send, name="deliver-test")
    await asyncio.sleep(0)
    assert started == ["1-0", "2-0"] and entries.sending
    assert entries.ready_waiting(100.0)  # entry 3 is due but both slots are taken
    entries.changed.clear()
    release.set()
    await entries.idle(1.0)
    assert entries.changed.is_set()  # a finished send wakes the deliverer
    await asyncio.sleep(0)
    entries.start_due(send, name="deliver-test")
    await asyncio.sleep(0)
    assert started == ["1-0", "2-0", "3-0"] and entries.next_due() == 160.0
    await entries.finish_sends(1.0)
    assert not entries.sending


async def test_drop_unless_keeps_what_is_still_pending_or_being_sent() -> None:
    entries, _ = held(max_held=5, concurrency=1)
    never = asyncio.Event()

    async def send(item: HeldEntry) -> None:
        await never.wait()

    for n in range(3):
        entries.hold(entry(n))
    entries.start_due(send, name="deliver-test")  # 0-0 is being sent
    await asyncio.sleep(0)
    entries.drop_unless(["0-0", "1-0", "2-0"], still_pending={"2-0"})
    assert entries.ids() == ["0-0", "2-0"]
    await entries.finish_sends(0.0)  # cancels the hanging send
    assert not entries.sending


async def test_wake_on_stop() -> None:
    entries, _ = held()
    stop = asyncio.Event()
    watcher = asyncio.create_task(entries.wake_on(stop))
    await asyncio.sleep(0)
    assert not entries.changed.is_set()
    stop.set()
    await watcher
    assert entries.changed.is_set()
