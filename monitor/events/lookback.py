"""How far back a report reaches: whether it tells of an earlier happening (its dead named, mourned, condemned;
injuries diagnosed weeks later; a briefing, or a lead naming the happening by its day) and so may join an event
longer after it than a new report, and whether it tallies attacks. Pure: headlines and leads only."""

from __future__ import annotations

from datetime import date, timedelta

from monitor.core.models import Article
from monitor.events.days import told_day
from monitor.events.facts import (
    is_follow_up,
    is_late_toll,
    is_tally,
    leads_back,
    reports_dead,
    reports_killing,
)

__all__ = ["FOLLOW_UP_REACH", "LATE_TOLL_REACH", "follow_up_of", "follow_up_reach"]

#: How much longer than its family's window an event stays open to follow-ups about what it is about.
FOLLOW_UP_REACH = timedelta(days=14)
#: The same for injuries diagnosed weeks after a blast (brain injuries counted for a month and more).
LATE_TOLL_REACH = timedelta(days=60)


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
