"""Whether an article belongs to an event: the families that may share one, when a report happened, what tells
events apart, and the score that decides. Pure: no Redis, no clock.

An article joins an event when they are of one family (a strike and the killing it caused are one story), or of a
related family that its rules also fired for, the article falls within the family's time window of the event,
and their salient entities and text agree enough (``join_score``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np

from monitor.core.models import Article
from monitor.events.similarity import estimate_jaccard

if TYPE_CHECKING:
    from monitor.events.cluster import EventPolicy, EventState

__all__ = [
    "CLOSENESS",
    "CLOSE_IN_TIME",
    "EARLY_SLACK",
    "FAMILIES",
    "FOLLOW_UP_REACH",
    "GENERIC_TYPES",
    "RELATED",
    "RELATED_MARGIN",
    "event_time",
    "family_of",
    "join_score",
    "joinable_families",
    "salient_entities",
]

#: Event types that are one story when they coincide: the strike that killed a commander is the killing.
FAMILIES = {"high_value_target_killed": "us_strike_in_iraq"}
#: Families whose reports may be about one happening seen from another side: an Iranian missile attack on a base
#: is also an attack on US forces, rockets at the embassy compound hit where US forces guard it, a threatened
#: embassy closure is reported as a drawdown of its staff. An article may join an event of a related family when
#: it fired that family's rule too; the event keeps its type. A US strike and the attack it answers are never
#: related: one side acting and the other acting back are two events.
RELATED = {
    "attack_on_us_forces_in_iraq": frozenset({"iran_retaliation_or_threat", "us_embassy_or_diplomatic_incident"}),
    "iran_retaliation_or_threat": frozenset({"attack_on_us_forces_in_iraq"}),
    "us_embassy_or_diplomatic_incident": frozenset(
        {"attack_on_us_forces_in_iraq", "us_personnel_evacuation_or_advisory"}
    ),
    "us_personnel_evacuation_or_advisory": frozenset({"us_embassy_or_diplomatic_incident"}),
}
#: What joining an event of a related family (not the article's own) must clear beyond the join threshold.
RELATED_MARGIN = 1.0
#: Entity types too general to tell two events apart (every story names the US and Iraq).
GENERIC_TYPES = frozenset({"country", "state_actor", "military_unit", "other"})
#: How much a shared entity of each type says "same event".
ENTITY_WEIGHT = {"person": 3.0, "base": 2.0, "militia": 1.0, "place": 1.0, "organisation": 1.0}
#: How near in event time a report must be to an event's reports to count as close, per family (default a day:
#: a vote, a threat or an advisory is reported over a day; rocket attacks come several a day, so half of one).
CLOSE_IN_TIME = timedelta(hours=24)
CLOSENESS = {"attack_on_us_forces_in_iraq": timedelta(hours=12)}
#: What being close in time says per family (default 2.0, enough to join with nothing against it): militias often
#: attack several bases on one day, so for attacks it only helps.
PROXIMITY_WEIGHT = {"attack_on_us_forces_in_iraq": 1.0}
#: Families where two distinct events within one window are rare (a parliament vote, a drawdown, an advisory).
SPARSE_FAMILIES = frozenset({"iraq_expels_or_ends_us_presence", "us_personnel_evacuation_or_advisory"})
#: How much longer than its family's window an event stays open to follow-ups about what it is about.
FOLLOW_UP_REACH = timedelta(days=14)
#: Per family, the kinds of entity of which two different ones mean two different events.
VETOES = {
    "us_strike_in_iraq": ("base", "person"),
    "attack_on_us_forces_in_iraq": ("base", "person"),
    "us_embassy_or_diplomatic_incident": ("base",),
}
#: How far a publication time may lie ahead of the clock and still be believed (feeds' clocks drift a little).
FUTURE_TOLERANCE = timedelta(minutes=10)
#: Slack before an event's first report within which an article still counts as about it.
EARLY_SLACK = timedelta(hours=6)


def family_of(event_type: str) -> str:
    return FAMILIES.get(event_type, event_type)


def joinable_families(event_type: str, fired_types: Iterable[str]) -> tuple[str, ...]:
    """The families whose events an article typed ``event_type`` may join: its own first, then those related to it
    that its other fired rules also name."""
    own = family_of(event_type)
    related = RELATED.get(own, frozenset())
    others = dict.fromkeys(family_of(t) for t in fired_types if family_of(t) in related and family_of(t) != own)
    return (own, *others)


def event_time(article: Article, now: datetime, max_age: timedelta | None) -> datetime:
    """When the article's story happened, as far as the monitor can tell: its publication time when that is
    plausible (not ahead of ``now`` by more than a few minutes, and within ``max_age`` when there is one), else
    the time it was read. Clustering by this time makes a backlog read at once form the events it formed live."""
    published = article.published
    if published is None or published > now + FUTURE_TOLERANCE:
        return now
    if max_age is not None and published < now - max_age:
        return now
    return published


def salient_entities(
    entities: Iterable[str], types: Mapping[str, str], within: Mapping[str, tuple[str, ...]] | None = None
) -> frozenset[str]:
    """The entities that tell events apart: people, militias, bases, specific places. With ``within`` (the
    gazetteer's "lies in"), the places they lie in too, so that "a base in Anbar" and "Ain al-Asad" share
    something, as do "Baghdad airport" and "Baghdad"."""
    own = {e for e in entities if types.get(e, "other") not in GENERIC_TYPES}
    if within:
        todo = list(own)
        while todo:
            for parent in within.get(todo.pop(), ()):
                if parent not in own and types.get(parent, "other") not in GENERIC_TYPES:
                    own.add(parent)
                    todo.append(parent)
    return frozenset(own)


def join_score(
    event: EventState,
    *,
    family: str,
    salient: frozenset[str],
    signature: np.ndarray,
    at: datetime,
    types: Mapping[str, str],
    policy: EventPolicy,
    focus: frozenset[str] | None = None,
    follow_up: bool = False,
) -> float:
    """How strongly an article belongs to ``event``; 0 when it cannot (other family, outside the window).
    ``follow_up``: the article reports on an earlier happening (names the dead, mourns, condemns) rather than a
    new one, so it may join an event that shares what its headline and lead are about days later."""
    if event.family != family:
        return 0.0
    first, last = event.span
    # The event with the article added must still fit in the family's window (from either side, so that the order
    # in which reports are read does not matter), with some slack for a report timed just before the first one.
    reach = policy.window_for(family) + EARLY_SLACK
    if follow_up and (focus or salient) & set(event.focus or event.salient):
        reach += FOLLOW_UP_REACH
    if max(last, at) - min(first, at) > reach:
        return 0.0
    shared = salient & set(event.salient)
    score = sum(ENTITY_WEIGHT.get(types.get(e, ""), 0.5) for e in shared)
    # Two different bases or two different people named: two different attacks or killings, however alike the
    # wording (wires reuse stock sentences for every rocket attack). Threats, votes and advisories name bases and
    # people as examples or speakers, so there the names do not tell events apart.
    # What the headlines and leads are about decides, not a base named in passing further down.
    about, theirs_about = (salient if focus is None else focus), (event.focus or event.salient)
    for kind in VETOES.get(family, ()):
        mine = {e for e in about if types.get(e) == kind}
        theirs = {e for e in theirs_about if types.get(e) == kind}
        if mine and theirs and not mine & theirs:
            return 0.0
    if abs(at - min(max(at, first), last)) <= CLOSENESS.get(family, CLOSE_IN_TIME):
        # Reports hours apart in one family are usually about the same thing; all the more in families where two
        # distinct events on one day are rare (a vote, a threat, an advisory), unlike rocket attacks.
        score += PROXIMITY_WEIGHT.get(family, 2.0)
        if not salient:
            score += 1.0  # and an article that names nothing specific has nothing that contradicts it
    elif family in SPARSE_FAMILIES:
        score += 1.0  # two votes or two advisories within one window are rare: the window itself says something
    similarity = estimate_jaccard(signature, np.asarray(event.signature, dtype=np.uint32))
    score += 6.0 * similarity  # a shared wire text alone is enough; a loose resemblance only helps
    return score
