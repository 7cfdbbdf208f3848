"""How far back a report reaches: whether it tells of an earlier happening (its dead named, mourned, condemned;
injuries diagnosed weeks later; a briefing, or a lead naming the happening by its day) and so may join an event
longer after it than a new report, whether it tallies attacks, and whether it falls within an event's reach. Pure:
headlines, leads and event times only."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

from monitor.core.models import Article
from monitor.events.days import local_day, told_day
from monitor.events.facts import (
    is_follow_up,
    is_late_toll,
    is_tally,
    leads_back,
    reports_dead,
    reports_killing,
)

if TYPE_CHECKING:
    from monitor.events.cluster import EventPolicy, EventState

__all__ = [
    "DAY_SLACK",
    "EARLY_SLACK",
    "FOLLOW_UP_REACH",
    "LATE_TOLL_REACH",
    "follow_up_of",
    "follow_up_reach",
    "in_reach",
    "on_day",
]

#: How much longer than its family's window an event stays open to follow-ups about what it is about.
FOLLOW_UP_REACH = timedelta(days=14)
#: The same for injuries diagnosed weeks after a blast (brain injuries counted for a month and more).
LATE_TOLL_REACH = timedelta(days=60)
#: Slack before an event's first report within which an article still counts as about it.
EARLY_SLACK = timedelta(hours=6)
#: How far a day a follow-up names may lie from its event's days (a night's attack is dated either way).
DAY_SLACK = timedelta(days=1)


def follow_up_reach(title: str) -> timedelta:
    """How much longer than its family's window an event stays open to a report with this headline: not at all
    for a new happening, ``FOLLOW_UP_REACH`` for a report on an earlier one (its dead named, mourned, condemned),
    ``LATE_TOLL_REACH`` for injuries diagnosed weeks later."""
    if not is_follow_up(title):
        return timedelta(0)
    return LATE_TOLL_REACH if is_late_toll(title) else FOLLOW_UP_REACH


def follow_up_of(
    title: str, aftermath: bool = False, report: Article | None = None
) -> tuple[timedelta, bool, bool, date | None]:
    """``follow_up_reach`` of a headline (at least ``FOLLOW_UP_REACH`` for one that reports what followed an
    earlier happening: ``Match.aftermath``, or whose ``report``'s lead names it by an earlier day:
    ``facts.leads_back``); whether it tells of people killed (a follow-up naming, identifying, mourning the dead,
    or news of a soldier killed): such a report belongs to an event that killed someone, not to a later one that
    did not; whether it is a tally of attacks (``facts.is_tally``), which reports the latest; and the earlier day it
    names its happening by (``days.told_day``)."""
    said = follow_up_reach(title)
    lead = (report.summary or report.content) if report is not None else ""
    earlier = aftermath or (not said and leads_back(lead, report.published if report else None))
    reach = max(said, FOLLOW_UP_REACH if earlier else timedelta(0))
    day = told_day(title, lead, report.published) if report is not None else None
    return reach, reports_dead(title) if reach else reports_killing(title), is_tally(title), day


def in_reach(
    event: EventState, *, family: str, at: datetime, policy: EventPolicy, named: frozenset[str],
    follow_up: timedelta, killed: bool, day: date | None,
) -> tuple[bool, bool]:  # fmt: skip
    """Whether an article at ``at`` keeps ``event`` within its family's window (from either side, so that the order
    in which reports are read does not matter; with slack for a report timed just before the first one), stretched
    by ``follow_up`` for a look back at what the event is about (``named``) or at its dead; and whether ``day`` is
    one of the event's days: a report naming its happening so ("after Wednesday's request") is about it, window or
    not. A look back naming a day far from the event's ("concussions after the Jan. 8 attack on Al Asad") is about
    another happening, however alike the place and the weapon; news of the dead still goes to the event that killed."""
    first, last = event.span
    on_its_day = day is not None and on_day(event, day)
    other_day = day is not None and not on_day(event, day, slack=DAY_SLACK)
    looks_here = follow_up > FOLLOW_UP_REACH or bool(follow_up and named & set(event.focus or event.salient))
    stretch = follow_up if killed or (looks_here and not other_day) else timedelta(0)
    reach = policy.window_for(family) + EARLY_SLACK + stretch
    return max(last, at) - min(first, at) <= reach or on_its_day, on_its_day


def on_day(event: EventState, day: date, slack: timedelta = timedelta(0)) -> bool:
    """Whether ``day`` is one of the days ``event``'s reports tell of (or within ``slack`` of them)."""
    first, last = event.span
    return local_day(first) - slack <= day <= local_day(last) + slack
