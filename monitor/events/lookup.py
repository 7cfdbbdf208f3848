"""Which stored events a report is compared with: the families whose recent events are looked up beside the
events that share its entities or its wording, and how far back in event time."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta

from monitor.events.days import day_start
from monitor.events.joining import CLOSE_IN_TIME, FOLLOW_UP_REACH, RELATED

__all__ = ["family_lookup", "looked_up"]


def looked_up(families: Sequence[str], day: date | None) -> tuple[str, ...]:
    """The families whose recent events a report's candidates include: its own, and those related to the first
    when it names its happening by a day (``best_event`` lets it join such an event of that day)."""
    extra = RELATED.get(families[0], frozenset()) if day is not None else frozenset()
    return (*families, *sorted(extra - set(families)))


def family_lookup(
    follow_up: timedelta, dead: bool = False, *, told: date | None = None, at: datetime | None = None
) -> timedelta:
    """How far from a report's event time the events of its families are looked up whatever they name: a day, or
    the whole reach of a late toll or a report on the dead, since those often name nothing specific ("50 troops
    diagnosed after Iran's missile attack", "Pentagon identifies two killed in Iraq") to look their event up by;
    or back to the day it names (``told``, for a report timed ``at``: "after Wednesday's request", on a Sunday)."""
    close = max(follow_up, CLOSE_IN_TIME) if follow_up > FOLLOW_UP_REACH or dead else CLOSE_IN_TIME
    return close if told is None or at is None else max(close, at - day_start(told) + CLOSE_IN_TIME)
