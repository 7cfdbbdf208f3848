"""Events: clusters of articles about one real-world happening. Pure decisions, no Redis, no clock.

An article joins an event when they are of one family (a strike and the killing it caused are one story), the
article falls within the family's time window of the event, and their salient entities and text agree enough;
otherwise it starts a new event. Joining may make the event worth a revision alert: severity rose, official
confirmation arrived, the casualty figure changed, or it reached another threshold of independent outlets (wire
copies, i.e. near-duplicate texts, count once).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timedelta

import numpy as np

from monitor.core.models import Article, Match
from monitor.detection.language import article_language
from monitor.events.facts import (
    casualty_count,
    event_status,
    is_follow_up,
    official_confirmation,
    revised_status,
    status_change,
)
from monitor.events.similarity import estimate_jaccard

__all__ = [
    "CLOSENESS",
    "FAMILIES",
    "RELATED",
    "RELATED_MARGIN",
    "EventPolicy",
    "EventState",
    "Source",
    "add_article",
    "casualty_count",
    "event_time",
    "family_of",
    "is_follow_up",
    "join_score",
    "joinable_families",
    "new_event",
    "official_confirmation",
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
WIRE_COPY_SIMILARITY = 0.6
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
FOLLOW_UP_REACH = timedelta(days=4)
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
MAX_SOURCES = 50


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


def salient_entities(entities: Iterable[str], types: Mapping[str, str]) -> frozenset[str]:
    """The entities that tell events apart: people, militias, bases, specific places."""
    return frozenset(e for e in entities if types.get(e, "other") not in GENERIC_TYPES)


@dataclass
class Source:
    url: str
    title: str
    feed: str
    published: str | None
    seen: str
    independent: bool


_SOURCE_FIELDS = tuple(f.name for f in fields(Source))


@dataclass
class EventState:
    """What Redis keeps of one event (as JSON); ``signature`` is the MinHash of its first article."""

    id: str
    family: str
    event_type: str
    severity: int
    revision: int
    first_seen: str
    updated: str
    title: str
    summary: str
    entities: list[str]
    salient: list[str]
    evidence: list[str]
    sources: list[Source]
    confirmed: bool
    casualties: int | None
    signature: list[int]
    alerted_outlets: int = 1
    signatures: list[list[int]] = field(default_factory=list)  # of independent sources, to spot wire copies
    #: Event time: when it happened, by its articles' plausible publication times (see ``event_time``). Events
    #: stored before these fields existed have None, and are timed by ``first_seen``/``updated`` instead.
    first_published: str | None = None
    last_published: str | None = None
    #: The salient entities its articles' headlines and leads name (what they are about, not what they mention).
    focus: list[str] = field(default_factory=list)
    #: One of ``facts.STATUSES``, and the languages of its articles in order of first appearance.
    status: str = "reported"
    languages: list[str] = field(default_factory=list)

    @property
    def span(self) -> tuple[datetime, datetime]:
        """The event's first and latest event time."""
        first = datetime.fromisoformat(self.first_published or self.first_seen)
        return first, datetime.fromisoformat(self.last_published or self.updated)

    @property
    def independent_outlets(self) -> int:
        return sum(1 for s in self.sources if s.independent)

    def to_json(self) -> str:
        # Not asdict(self): it deep-copies every signature (up to 50 lists of ints) only to serialise them.
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["sources"] = [{name: getattr(s, name) for name in _SOURCE_FIELDS} for s in self.sources]
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | bytes) -> EventState:
        data = json.loads(raw)
        data["sources"] = [Source(**s) for s in data["sources"]]
        return cls(**data)


@dataclass(frozen=True)
class EventPolicy:
    """Tunables (from the ``events`` config section)."""

    window: timedelta = timedelta(hours=72)
    windows: Mapping[str, timedelta] = field(default_factory=dict)  # per family
    join_threshold: float = 2.0
    revise_on_severity: bool = True
    revise_on_confirmation: bool = True
    revise_on_casualties: bool = True
    outlet_thresholds: Sequence[int] = (3, 10)

    def window_for(self, family: str) -> timedelta:
        return self.windows.get(family, self.window)


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


def _source(article: Article, now: datetime, independent: bool) -> Source:
    return Source(
        url=article.url,
        title=article.title,
        feed=article.feed,
        published=article.published.isoformat() if article.published else None,
        seen=now.isoformat(),
        independent=independent,
    )


def new_event(
    event_id: str,
    article: Article,
    match: Match,
    *,
    salient: frozenset[str],
    signature: np.ndarray,
    now: datetime,
    at: datetime | None = None,
    focus: frozenset[str] = frozenset(),
) -> EventState:
    """A new event opened by ``article`` (read at ``now``, its event time ``at``, by default ``now``)."""
    assert match.event_type is not None
    text = f"{article.title}\n{article.summary}\n{article.content}"
    return EventState(
        id=event_id,
        family=family_of(match.event_type),
        event_type=match.event_type,
        severity=match.severity,
        revision=1,
        first_seen=now.isoformat(),
        updated=now.isoformat(),
        title=article.title,
        summary=article.summary or article.content[:600],
        entities=list(match.entities),
        salient=sorted(salient),
        evidence=_evidence(match),
        sources=[_source(article, now, True)],
        confirmed=official_confirmation(text),
        casualties=casualty_count(text),
        signature=[int(v) for v in signature],
        signatures=[[int(v) for v in signature]],
        first_published=(at or now).isoformat(),
        last_published=(at or now).isoformat(),
        focus=sorted(focus),
        status=event_status(text),
        languages=[lang] if (lang := article_language(article)) else [],
    )


def _evidence(match: Match) -> list[str]:
    seen: list[str] = []
    for item in match.evidence:
        if item.phrase not in seen:
            seen.append(item.phrase)
    return seen[:20]


def add_article(
    event: EventState,
    article: Article,
    match: Match,
    *,
    salient: frozenset[str],
    signature: np.ndarray,
    now: datetime,
    policy: EventPolicy,
    at: datetime | None = None,
    focus: frozenset[str] = frozenset(),
) -> tuple[EventState, list[str]]:
    """The event with the article (read at ``now``, its event time ``at``, by default ``now``) added, and the
    reasons it deserves a revision alert (empty: none)."""
    assert match.event_type is not None
    text = f"{article.title}\n{article.summary}\n{article.content}"
    copy = any(
        estimate_jaccard(signature, np.asarray(s, dtype=np.uint32)) >= WIRE_COPY_SIMILARITY for s in event.signatures
    )
    reasons: list[str] = []
    severity, event_type = event.severity, event.event_type
    if match.severity > event.severity:
        if policy.revise_on_severity:
            reasons.append(f"severity {event.severity} -> {match.severity}")
        severity = match.severity
        if family_of(match.event_type) == event.family and match.event_type != event.event_type:
            # a graver report of the same family names the event anew; one of a related family joins it as it is
            event_type = match.event_type
            reasons.append(f"type: {event.event_type} -> {event_type}")
    confirmed = event.confirmed
    if not confirmed and official_confirmation(text):
        confirmed = True
        if policy.revise_on_confirmation:
            reasons.append("officially confirmed")
    casualties, reason = _casualties(event.casualties, casualty_count(text), policy)
    reasons += reason
    status = revised_status(event.status, text)
    if change := status_change(event.status, status, revise_on_confirmation=policy.revise_on_confirmation):
        reasons.append(change)
    first, last = event.span
    when = at or now
    updated = replace(
        event,
        event_type=event_type,
        severity=severity,
        updated=now.isoformat(),
        entities=list(dict.fromkeys([*event.entities, *match.entities])),
        salient=sorted(set(event.salient) | salient),
        sources=[*event.sources, _source(article, now, not copy)][:MAX_SOURCES],
        confirmed=confirmed,
        casualties=casualties,
        signatures=event.signatures if copy else [*event.signatures, [int(v) for v in signature]][:MAX_SOURCES],
        first_published=min(first, when).isoformat(),
        last_published=max(last, when).isoformat(),
        focus=sorted(set(event.focus) | focus),
        status=status,
        languages=list(dict.fromkeys([*event.languages, *filter(None, [article_language(article)])])),
    )
    outlets = updated.independent_outlets
    if any(event.alerted_outlets < t <= outlets for t in policy.outlet_thresholds):
        reasons.append(f"reported by {outlets} independent outlets")
        updated.alerted_outlets = outlets
    if reasons:
        updated.revision += 1
    return updated, reasons


def _casualties(known: int | None, figure: int | None, policy: EventPolicy) -> tuple[int | None, list[str]]:
    """The event's casualty figure after an article reporting ``figure``, and the revision reason it gives."""
    if figure is None or figure == known or (known is not None and figure < known):
        return known, []
    if not policy.revise_on_casualties:
        return figure, []
    return figure, [f"casualties reported: {figure}" if known is None else f"casualties {known} -> {figure}"]
