"""Events: two happenings of one family, close in time and told in alike words, stay two when what tells them apart
is named: the base a handover gives up, who moves its people out (real Redis)."""

from __future__ import annotations

import redis.asyncio as aioredis

from monitor.processing.processor import Processor
from tests.test_events import FakeClock, article, clock, events_of, processor

__all__ = ["clock", "processor"]  # the fixtures this module shares with test_events


async def test_handovers_of_two_bases_days_apart_are_two_events(
    redis: aioredis.Redis, processor: Processor, clock: FakeClock
) -> None:
    """Handovers come base by base, days apart, told in the same stock words; each names its base (here K1 by its
    short name, in a story set in Iraq), so the second does not join the first."""
    lead = "The handover is part of the planned consolidation of coalition troops in Iraq, the coalition said."
    first = article("h1", "Coalition hands over Qayyarah air base to Iraqi forces", lead)
    clock.advance(hours=72)
    second = article("h2", "Coalition hands over K1 to Iraqi forces", lead, at=clock.now())
    await processor.process([first])
    await processor.process([second])
    alerts = await events_of(redis)
    assert {a["event_type"] for a in alerts} == {"iraq_expels_or_ends_us_presence"}
    assert len({a["event_id"] for a in alerts if a["revision"] == 1}) == 2


async def test_firms_and_the_mission_moving_staff_out_the_same_week_are_two_events(
    redis: aioredis.Redis, processor: Processor, clock: FakeClock
) -> None:
    """Firms fly their staff out and the US mission thins its own in the same crisis: two moves, two events."""
    firms = article(
        "m1",
        "Chevron pulls some expatriate staff out of Erbil as fighting nears",
        "The company is moving foreign employees out of the Kurdistan region of Iraq as a precaution.",
    )
    clock.advance(hours=60)
    mission = article(
        "m2",
        "US moves part of its consulate staff out of Erbil",
        "Some staff of the US consulate in Erbil are being relocated as fighting nears, the State Department said.",
        at=clock.now(),
    )
    await processor.process([firms])
    await processor.process([mission])
    alerts = await events_of(redis)
    assert {a["event_type"] for a in alerts} == {"us_personnel_evacuation_or_advisory"}
    assert len({a["event_id"] for a in alerts if a["revision"] == 1}) == 2
