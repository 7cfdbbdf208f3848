"""The escalation index: a decaying, severity-weighted score over recent events, mapped to levels 1-5 with
hysteresis, and a surge signal in ACLED's spirit (this week's events against the past four weeks' average).

Pure: it is given the events and the time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

__all__ = ["EscalationPolicy", "EventPoint", "Reading", "level_for", "read_index"]

#: How much each type of event weighs; killings and strikes weigh most.
TYPE_WEIGHT = {
    "high_value_target_killed": 1.5,
    "us_strike_in_iraq": 1.2,
    "attack_on_us_forces_in_iraq": 1.0,
    "us_embassy_or_diplomatic_incident": 1.2,
    "iran_retaliation_or_threat": 1.0,
    "iraq_expels_or_ends_us_presence": 0.8,
    "us_personnel_evacuation_or_advisory": 1.0,
}
SEVERITY_WEIGHT = {1: 0.25, 2: 0.5, 3: 1.0, 4: 2.0, 5: 4.0}


@dataclass(frozen=True)
class EventPoint:
    event_type: str
    severity: int
    first_seen: datetime
    event_id: str = ""


@dataclass(frozen=True)
class EscalationPolicy:
    half_life: timedelta = timedelta(hours=120)
    #: Score at which levels 2, 3, 4 and 5 begin; a level is left downwards only below ``hysteresis`` of its start.
    thresholds: tuple[float, float, float, float] = (1.5, 3.5, 6.0, 10.0)
    hysteresis: float = 0.75
    horizon: timedelta = timedelta(days=28)


@dataclass(frozen=True)
class Reading:
    score: float
    level: int
    events_7d: int
    weekly_average: float  # over the 28 days before this week
    surge: float  # events_7d / weekly_average (events_7d itself when there was nothing before)


def _score(points: Sequence[EventPoint], now: datetime, policy: EscalationPolicy) -> float:
    decay = math.log(2) / policy.half_life.total_seconds()
    total = 0.0
    for p in points:
        age = max(0.0, (now - p.first_seen).total_seconds())
        total += TYPE_WEIGHT.get(p.event_type, 1.0) * SEVERITY_WEIGHT.get(p.severity, 1.0) * math.exp(-decay * age)
    return total


def level_for(score: float, previous: int, policy: EscalationPolicy) -> int:
    """The level for ``score`` coming from ``previous``: up as soon as a threshold is reached, down only once the
    score falls clearly below the current level's start (so a level does not flap around a threshold)."""
    level = 1 + sum(1 for t in policy.thresholds if score >= t)
    if level >= previous:
        return level
    while previous > level and score < policy.thresholds[previous - 2] * policy.hysteresis:
        previous -= 1
    return max(previous, level)


def read_index(points: Sequence[EventPoint], now: datetime, previous: int, policy: EscalationPolicy) -> Reading:
    recent = [p for p in points if now - policy.horizon - timedelta(days=7) <= p.first_seen <= now]
    score = _score(recent, now, policy)
    week = sum(1 for p in recent if p.first_seen > now - timedelta(days=7))
    before = sum(
        1 for p in recent if now - timedelta(days=7) - policy.horizon < p.first_seen <= now - timedelta(days=7)
    )
    average = before / (policy.horizon.days / 7)
    surge = week / average if average else float(week)
    return Reading(round(score, 3), level_for(score, previous, policy), week, round(average, 2), round(surge, 2))
