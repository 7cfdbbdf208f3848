"""Events: two happenings of one family, close in time and told in alike words, stay two when what tells them apart
is named: the base a handover gives up, who moves its people out (real Redis)."""

from __future__ import annotations

import redis.asyncio as aioredis

from monitor.processing.processor import Processor
from tests.test_events import FakeClock, article, clock, events_of, processor

__all__ = ["clock", "processor"]  # the fixtures this module shares with test_events


async def _first_alerts_of_two_reports(
    redis: aioredis.Redis,
    processor: Processor,
    clock: FakeClock,
    first: tuple[str, str],
    second: tuple[str, str],
    *,
    hours: float,
) -> tuple[set[str], int]:
    """The types alerted and the number of events opened by two reports (headline, lead) ``hours`` apart."""
    await processor.process([article("r1", *first)])
    clock.advance(hours=hours)
    await processor.process([article("r2", *second, at=clock.now())])
    alerts = await events_of(redis)
    return {a["event_type"] for a in alerts}, len({a["event_id"] for a in alerts if a["revision"] == 1})


async def test_handovers_of_two_bases_days_apart_are_two_events(
    redis: aioredis.Redis, processor: Processor, clock: FakeClock
) -> None:
    """Handovers come base by base, days apart, told in the same stock words; each names its base (here K1 by its
    short name, in a story set in Iraq), so the second does not join the first."""
    lead = "The handover is part of the planned consolidation of coalition troops in Iraq, the coalition said."
    types, events = await _first_alerts_of_two_reports(
        redis,
        processor,
        clock,
        ("Coalition hands over Qayyarah air base to Iraqi forces", lead),
        ("Coalition hands over K1 to Iraqi forces", lead),
        hours=72,
    )
    assert (types, events) == ({"iraq_expels_or_ends_us_presence"}, 2)


async def test_firms_and_the_mission_moving_staff_out_the_same_week_are_two_events(
    redis: aioredis.Redis, processor: Processor, clock: FakeClock
) -> None:
    """Firms fly their staff out and the US mission thins its own in the same crisis: two moves, two events."""
    types, events = await _first_alerts_of_two_reports(
        redis,
        processor,
        clock,
        (
            "Chevron pulls some expatriate staff out of Erbil as fighting nears",
            "The company is moving foreign employees out of the Kurdistan region of Iraq as a precaution.",
        ),
        (
            "US moves part of its consulate staff out of Erbil",
            "Some staff of the US consulate in Erbil are being relocated as fighting nears, the State Department said.",
        ),
        hours=60,
    )
    assert (types, events) == ({"us_personnel_evacuation_or_advisory"}, 2)
