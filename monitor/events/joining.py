"""Whether an article belongs to an event: the families that may share one, when a report happened, what tells
events apart, and the score that decides. Pure: no Redis, no clock.

An article joins an event when they are of one family (a strike and the killing it caused are one story), or of a
related family that its rules also fired for, the article falls within the family's time window of the event,
and their salient entities and text agree enough (``join_score``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np

from monitor.core.models import Article
from monitor.events.days import local_day
from monitor.events.facts import reports_dead, reports_nobody_killed, tells_of_deadly_attack
from monitor.events.lookback import (
    EARLY_SLACK,
    FOLLOW_UP_REACH,
    LATE_TOLL_REACH,
    follow_up_of,
    follow_up_reach,
    in_reach,
)
from monitor.events.reactions import IRAN, KILLING, REACTION_FAMILIES, answers_killing_late, reacts_to_killing
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
    "LATE_TOLL_REACH",
    "RELATED",
    "RELATED_MARGIN",
    "SPECIALIZES",
    "SPECIALIZING_TIME",
    "best_event",
    "crosses_to",
    "event_time",
    "family_of",
    "follow_up_of",
    "follow_up_reach",
    "join_score",
    "joinable_families",
    "salient_entities",
]

#: Event types that are one story when they coincide: the strike that killed a commander is the killing.
FAMILIES = {KILLING: "us_strike_in_iraq"}
#: Families whose reports may be about one happening seen from another side: an Iranian missile attack on a base
#: is also an attack on US forces, rockets at the embassy compound hit where US forces guard it, a threatened
#: embassy closure is reported as a drawdown of its staff, and a vote to expel the forces is reported through
#: Iran's praise of it, the attacks that preceded it or the staff it sends home; a firm pulling its people out of
#: a compound a rocket just hit reports that attack. An article may join an event of a related family when it
#: fired that family's rule too; the event keeps its type. A US strike and the attack it answers are never
#: related: one side acting and the other acting back are two events.
ATTACK, EMBASSY, EVACUATION, EXPEL = (
    "attack_on_us_forces_in_iraq",
    "us_embassy_or_diplomatic_incident",
    "us_personnel_evacuation_or_advisory",
    "iraq_expels_or_ends_us_presence",
)
_RELATED_PAIRS = (
    (ATTACK, IRAN),
    (ATTACK, EMBASSY),
    (EMBASSY, EVACUATION),
    (ATTACK, EVACUATION),
    *((EXPEL, other) for other in (ATTACK, IRAN, EMBASSY, EVACUATION)),
)
RELATED = {
    family: frozenset(b if a == family else a for a, b in _RELATED_PAIRS if family in (a, b))
    for family in dict.fromkeys(f for pair in _RELATED_PAIRS for f in pair)
}
#: A report typed as a key that joins an event of the value's family names its actor more precisely: when it is
#: graver than the event's reports, the event takes its type and family (rockets on Ain al-Asad that the next
#: reports attribute to Iran's missiles are Iran's strike). Otherwise an event keeps its first type.
SPECIALIZES = {IRAN: ATTACK}
#: How soon after an event's first report such a report must come: who fired is told within hours; a day later,
#: "after Iran's missiles, factions turn rockets on Taji" names Iran only as the background of another attack.
SPECIALIZING_TIME = timedelta(hours=3)
#: What joining an event of a related family (not the article's own) must clear beyond the join threshold.
RELATED_MARGIN = 1.0
#: Entity types too general to tell two events apart (every story names the US and Iraq).
GENERIC_TYPES = frozenset({"country", "state_actor", "military_unit", "other"})
#: What joining an event of an unrelated family must clear beyond the join threshold (see ``crosses_to``).
CROSS_MARGIN = 2.0
#: Kinds of entity that anchor a report to one happening whatever it is typed: a named base.
ANCHOR_KINDS = frozenset({"base"})
#: Families whose reports of one happening on one base may be typed either way: missiles, rockets and drones on a
#: base or the embassy. An advisory or a staff drawdown names the embassy too, but is an event of its own.
KINETIC_FAMILIES = frozenset({ATTACK, IRAN, EMBASSY})
#: How much a shared entity of each type says "same event".
ENTITY_WEIGHT = {"person": 3.0, "base": 2.0, "militia": 1.0, "place": 1.0, "organisation": 1.0}
#: How near in event time a report must be to an event's reports to count as close, per family (default a day:
#: a vote, a threat or an advisory is reported over a day; for rocket attacks, which come several a day, 18 hours:
#: a night's attack is still reported the next morning, often with the base named loosely, "a base in western Iraq").
CLOSE_IN_TIME = timedelta(hours=24)
CLOSENESS = {ATTACK: timedelta(hours=18)}
#: What being close in time says per family (default 2.0, enough to join with nothing against it): militias often
#: attack several bases on one day, so for attacks it only helps.
PROXIMITY_WEIGHT = {ATTACK: 1.0}
#: Families where two distinct events within one window are rare (a parliament vote, a drawdown, an advisory).
SPARSE_FAMILIES = frozenset({EXPEL, EVACUATION})
#: Per family, the kinds of entity of which two different ones mean two different events. For attacks that
#: includes places: rockets on a site in Basra and on one in Mosul the same day are two attacks, however alike the
#: wire's words. (Places are compared with the places they lie in, so "Anbar" and "Ain al-Asad" share one.)
VETOES = {
    "us_strike_in_iraq": ("base", "person"),
    ATTACK: ("base", "person", "place"),
    EMBASSY: ("base",),
    EXPEL: ("base",),
}
#: Families where reports naming different kinds of weapon (``Match.weapons``) are about different attacks:
#: "rockets" on Ain al-Asad one night and "drones" the next morning are two attacks, however alike the wording.
WEAPON_FAMILIES = frozenset({ATTACK, EMBASSY})
#: Families where who moves its people out tells two moves apart: firms fly their staff out and the US mission
#: thins its own in the same crisis, often the same week, as two events ("Chevron pulls expatriates from
#: Kurdistan", then "State moves part of the Erbil consulate's staff"). A report naming both is about both.
MOVERS = {EVACUATION: (frozenset({"us_companies"}), frozenset({"us_embassy_iraq"}))}
#: How far a publication time may lie ahead of the clock and still be believed (feeds' clocks drift a little).
FUTURE_TOLERANCE = timedelta(minutes=10)


def family_of(event_type: str) -> str:
    return FAMILIES.get(event_type, event_type)


def joinable_families(event_type: str, fired_types: Iterable[str]) -> tuple[str, ...]:
    """The families whose events an article typed ``event_type`` may join: its own first, then those related to it
    that its other fired rules also name (for a threat, also the killing's, when the killing rule fired for it)."""
    own = family_of(event_type)
    related = set(RELATED.get(own, frozenset()))
    if own in REACTION_FAMILIES:
        related.add(family_of(KILLING))  # a vow of revenge that names the killing it answers
    others = dict.fromkeys(family_of(t) for t in fired_types if family_of(t) in related and family_of(t) != own)
    return (own, *others)


def _apart(event: EventState, at: datetime) -> timedelta:
    """How far ``at`` lies from the nearest of the event's reports (zero within its span)."""
    first, last = event.span
    return abs(at - min(max(at, first), last))


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
    follow_up: timedelta = timedelta(0),
    weapons: frozenset[str] = frozenset(),
    dead: bool = False,
    tally: bool = False,
    day: date | None = None,
) -> float:
    """How strongly an article belongs to ``event``; 0 when it cannot (other family, outside the window).
    ``follow_up`` (``follow_up_reach``): the article reports on an earlier happening (names the dead, mourns,
    condemns) rather than a new one, so it may join an event that shares what its headline and lead are about that
    much later; a late toll (brain injuries diagnosed) may also join one it shares nothing specific with.
    ``weapons``: the kinds of weapon its headline and lead name (``WEAPON_FAMILIES``); ``dead``: it tells of people
    killed (``follow_up_of``), so it belongs to an event that reported deaths (as news, only an attack's: US and
    coalition troops are rarely killed in Iraq, while killings are many and told apart by whom they killed);
    ``tally``: it counts attacks (``facts.is_tally``), so it reports the latest within a day, whatever the regions
    it counts over; ``day``: the earlier day it names its happening by (``days.told_day``)."""
    killed = _killed_there(event, follow_up=follow_up, dead=dead)
    if event.family != family or killed is None:  # (None: the event's first report said nobody was killed)
        return 0.0
    within, on_its_day = in_reach(event, family=family, at=at, policy=policy, named=focus or salient,
                                   follow_up=follow_up, killed=killed, day=day)  # fmt: skip
    if not within:
        return 0.0
    shared = salient & set(event.salient)
    score = sum(ENTITY_WEIGHT.get(types.get(e, ""), 0.5) for e in shared)
    # Two different bases or two different people named: two different attacks or killings, however alike the
    # wording (wires reuse stock sentences for every rocket attack). Threats, votes and advisories name bases and
    # people as examples or speakers, so there the names do not tell events apart.
    # What the headlines and leads are about decides, not a base named in passing further down.
    # A tally's places are the regions it counts over ("attacks in Iraq and Syria"), not where the latest was.
    about = frozenset(e for e in (salient if focus is None else focus) if not (tally and types.get(e) == "place"))
    if _told_apart(event, family=family, about=about, salient=salient, types=types):
        return 0.0
    if family in WEAPON_FAMILIES and weapons and event.weapons and not weapons & set(event.weapons):
        return 0.0  # rockets one night, drones the next: two attacks
    score += _timing(event, family=family, at=at, about=about, follow_up=follow_up, weapons=weapons, killed=killed,
                     tally=tally, on_its_day=on_its_day)  # fmt: skip
    similarity = estimate_jaccard(signature, np.asarray(event.signature, dtype=np.uint32))
    score += 6.0 * similarity  # a shared wire text alone is enough; a loose resemblance only helps
    return score


def _timing(
    event: EventState,
    *,
    family: str,
    at: datetime,
    about: frozenset[str],
    follow_up: timedelta,
    weapons: frozenset[str],
    killed: bool,
    tally: bool,
    on_its_day: bool = False,
) -> float:
    """What a report's time says of its belonging to ``event`` (see ``join_score``): much when it came while the
    event was being reported, something when it looks back on the event from a little or much later."""
    apart = _apart(event, at)
    if apart <= CLOSENESS.get(family, CLOSE_IN_TIME):
        # Reports hours apart in one family are usually about the same thing; all the more in families where two
        # distinct events on one day are rare (a vote, a threat, an advisory), unlike rocket attacks.
        # And an article whose headline and lead name nothing specific has nothing that contradicts it (nor does an
        # event whose reports named nothing specific yet).
        return PROXIMITY_WEIGHT.get(family, 2.0) + (1.0 if not about or not (event.focus or event.salient) else 0.0)
    if (tally or (follow_up and not about)) and apart <= CLOSE_IN_TIME:
        # "23 attacks since October, latest at Al Asad": a tally reports the latest; "three hurt in Saturday's
        # rocket attack on the base": a look back that names nothing reports the day's event
        return 2.0
    if on_its_day:
        return 2.0  # "after Friday's call", published on Monday: the day it names is one of the event's
    if family in SPARSE_FAMILIES:
        return 1.0  # two votes or two advisories within one window are rare: the window itself says something
    if follow_up > FOLLOW_UP_REACH and event.weapons and (not weapons or weapons & set(event.weapons)):
        return 2.0  # injuries diagnosed weeks after a strike (by the weapon that struck, when it is named)
    if killed:
        return 2.0  # the dead named days later: the attack that killed them, not a later one
    # a look back at what the event was about ("factions offer a truce after the threat to shut the embassy")
    return 1.0 if follow_up and about & set(event.focus or event.salient) else 0.0


def _killed_there(event: EventState, *, follow_up: timedelta, dead: bool) -> bool | None:
    """For a report that tells of people killed (``dead``): whether ``event`` reported deaths too (the attack that
    killed them), or None when the event's first report said nobody was (another attack). As news rather than a
    follow-up, deaths tell only attacks apart (``WEAPON_FAMILIES``); False when the report tells of none."""
    if not dead or not (follow_up or event.family in WEAPON_FAMILIES):
        return False
    if not follow_up and reports_nobody_killed(event.title):
        return None
    # Or a report of its first day told of the dead ("Rockets kill two US troops"), the first having said less.
    first, told = event.span[0], f"{event.title}\n{event.summary}"
    return reports_dead(told, news_only=True) or any(
        tells_of_deadly_attack(s.title) and datetime.fromisoformat(s.published) - first <= CLOSE_IN_TIME
        for s in event.sources if s.published)  # fmt: skip


def _told_apart(
    event: EventState, *, family: str, about: frozenset[str], salient: frozenset[str], types: Mapping[str, str]
) -> bool:
    """Whether what a report's headline and lead are about (``about``) names another base or person than the
    event's (``VETOES``): two different attacks or killings, however alike the wording."""
    theirs_about = set(event.focus or event.salient)
    # Two people, unless each report names the other's elsewhere in its text, or both name the base where it
    # happened: two men killed in one strike, one report leading with each. (Bases named further down are often
    # earlier attacks' targets.)
    one_site = any(types.get(e) == "base" for e in about & theirs_about)
    if family in MOVERS and _other_mover(MOVERS[family], about, frozenset(theirs_about)):
        return True
    for kind in VETOES.get(family, ()):
        mine = {e for e in about if types.get(e) == kind}
        theirs = {e for e in theirs_about if types.get(e) == kind}
        named_elsewhere = kind == "person" and bool(mine & set(event.salient) or theirs & salient or one_site)
        if mine and theirs and not mine & theirs and not named_elsewhere:
            return True
    return False


def _other_mover(movers: tuple[frozenset[str], ...], mine: frozenset[str], theirs: frozenset[str]) -> bool:
    """Whether a report names one mover alone (``MOVERS``) and the event another alone."""
    own = [m for m in movers if m & mine]
    their = [m for m in movers if m & theirs]
    return len(own) == 1 and len(their) == 1 and own != their


def crosses_to(
    event: EventState,
    *,
    family: str,
    focus: frozenset[str],
    at: datetime,
    types: Mapping[str, str],
    follow_up: timedelta = timedelta(0),
) -> bool:
    """Whether an article of ``family`` may join ``event`` of a related family (``RELATED``) that its rules did
    not fire for.

    One happening is often typed two ways by the reports about it: missiles on a base read as an attack in one
    headline and as Iran's retaliation in the next. The event owns the type, so such a report may join it when what
    its headline and lead are about (``focus``) names the base the event is about, and it came while the event was
    being reported (within the closeness of the event's family). A person anchors only a killing's reactions in its
    first days (``reactions.reacts_to_killing``): a vote or a threat days "after the killing of X" is its own event.
    A follow-up (``follow_up_reach``: the dead named, injuries diagnosed) that names the base may join it as long as
    ``join_score`` lets a follow-up join, since it reports what already happened there."""
    theirs = set(event.focus or event.salient)
    if reacts_to_killing(event, family=family, focus=focus, theirs=theirs, at=at, types=types, follow_up=follow_up):
        return True
    if event.family not in RELATED.get(family, ()) or not {event.family, family} <= KINETIC_FAMILIES:
        return False
    shared = focus & theirs
    if not any(types.get(e) in ANCHOR_KINDS for e in shared):
        return False
    return bool(follow_up) or _apart(event, at) <= CLOSENESS.get(event.family, CLOSE_IN_TIME)


def best_event(
    candidates: Iterable[EventState],
    *,
    copy_of: str | None,
    families: Sequence[str],
    named: tuple[frozenset[str], frozenset[str]],
    signature: np.ndarray,
    at: datetime,
    types: Mapping[str, str],
    policy: EventPolicy,
    follow_up: timedelta = timedelta(0),
    weapons: frozenset[str] = frozenset(),
    dead: bool = False,
    tally: bool = False,
    day: date | None = None,
) -> EventState | None:
    """The event an article joins, if any: the best-scoring candidate of its own family (``families[0]``), else of
    a related family its rules also fired for (``families[1:]``, by ``RELATED_MARGIN``) or of another family that
    ``crosses_to`` allows (by ``CROSS_MARGIN``): a report of a troop cut whose body tells of that night's rockets
    on the embassy joins the cut. ``named``: the article's salient and focus entities; ``weapons``: the kinds of
    weapon its headline and lead name."""
    salient, focus = named
    scored = []
    for event in candidates:
        if event.family in families:
            if event.id == copy_of:
                return event  # an exact copy of an article already in this event
            if answers_killing_late(event, family=families[0], at=at, follow_up=follow_up):
                continue  # a threat days after a killing is an event of its own
            margin = 0.0 if event.family == families[0] else RELATED_MARGIN
        elif crosses_to(event, family=families[0], focus=focus or salient, at=at, types=types, follow_up=follow_up):
            # a follow-up naming the base reports on what happened there, whichever side its headline takes
            margin = RELATED_MARGIN if follow_up and event.family in RELATED.get(families[0], ()) else CROSS_MARGIN
        elif day is not None and event.family in RELATED.get(families[0], ()) and day == local_day(event.span[0]):
            # "Monday's drawdown: fewer Americans in Iraq", typed as the staff it moves, by the day the event happened
            margin = RELATED_MARGIN  # (not a later day it was reported on: "Thursday's call" after Wednesday's rockets)
        else:
            continue
        score = join_score(
            event, family=event.family, salient=salient, focus=focus, follow_up=follow_up, weapons=weapons, dead=dead,
            tally=tally, day=day, signature=signature, at=at, types=types, policy=policy,
        )  # fmt: skip
        if score >= policy.join_threshold + margin:
            # Its own family first; what crossing to another costs counts against it among the rest. Of two equally
            # good events, the one whose reports came nearest the article's time wins (then the later), by event
            # time: the time the monitor happened to read them says nothing about the story.
            # A tally of attacks reports the latest of those it may join; news of the dead, one that killed.
            rank = event.span[0].timestamp() if tally else score - margin
            killed = bool(_killed_there(event, follow_up=follow_up, dead=dead))
            scored.append((event.family == families[0], killed, rank, -_apart(event, at), event.span[0], event))
    if not scored:
        return None
    scored.sort(key=lambda s: (s[0], s[1], s[2], s[3], s[4], s[5].id), reverse=True)
    return scored[0][5]
