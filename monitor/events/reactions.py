"""Reports that answer a killing rather than report a happening of their own: vows of revenge, warnings of
escalation, the dead mourned. They are often typed by their own verb (a threat), and belong to the killing when they
name the person it killed, in its first days. Pure: no Redis, no clock."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from monitor.events.cluster import EventState

__all__ = [
    "IRAN",
    "KILLING",
    "LATE_REACTION_TIME",
    "REACTION_FAMILIES",
    "REACTION_TIME",
    "answers_killing_late",
    "reacts_to_killing",
]

KILLING = "high_value_target_killed"
IRAN = "iran_retaliation_or_threat"
#: Families whose reports about a killing are often typed by their own verb: a vow of revenge or a warning of
#: escalation reads as a threat. They may join the killing by the person it killed. (Not attacks: rockets on a base
#: "a day after the killing of X" are an attack of their own.)
REACTION_FAMILIES = frozenset({IRAN})
#: How soon after a killing's first report such a reaction must come: the day of the killing. Later ones (a
#: parliament vote, Iran's missiles days after) are events of their own.
REACTION_TIME = timedelta(hours=24)
#: The same for a report on the killing itself (``joining.follow_up_reach``: the dead mourned and buried, revenge
#: vowed at the funeral): the days of mourning.
LATE_REACTION_TIME = timedelta(days=7)


def reacts_to_killing(
    event: EventState,
    *,
    family: str,
    focus: frozenset[str],
    theirs: set[str],
    at: datetime,
    types: Mapping[str, str],
    follow_up: timedelta = timedelta(0),
) -> bool:
    """Whether a report typed as a threat is about a killing: its headline and lead name a person the
    killing's reports are about (``theirs``), no base the killing's reports do not name (rockets on a base "after"
    the killing are an attack of their own), and it came on the day of the killing (in its days of mourning, when
    its headline reports on the killing: ``follow_up``)."""
    if event.event_type != KILLING or family not in REACTION_FAMILIES:
        return False
    if not any(types.get(e) == "person" for e in focus & theirs):
        return False
    if any(types.get(e) == "base" for e in focus - theirs):
        return False
    return abs(at - event.span[0]) <= _reaction_time(follow_up)


def answers_killing_late(event: EventState, *, family: str, at: datetime, follow_up: timedelta) -> bool:
    """Whether a threat that names a killing (``joining.joinable_families``) came too long after it to be its
    reaction: after its day, or after its days of mourning for a report on it ("millions mourn X as Iran vows
    revenge")."""
    late = abs(at - event.span[0]) > _reaction_time(follow_up)
    return family in REACTION_FAMILIES and event.event_type == KILLING and late


def _reaction_time(follow_up: timedelta) -> timedelta:
    return LATE_REACTION_TIME if follow_up else REACTION_TIME
