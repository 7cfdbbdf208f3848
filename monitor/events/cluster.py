"""Events: clusters of articles about one real-world happening. Pure decisions, no Redis, no clock.

An article joins an event when they are of one family (a strike and the killing it caused are one story), the
article falls within the family's time window of the event, and their salient entities and text agree enough;
otherwise it starts a new event. Joining may make the event worth a revision alert: severity rose, official
confirmation arrived, the casualty figure changed, or it reached another threshold of independent outlets (wire
copies, i.e. near-duplicate texts, count once).

An event known only from a group's claim (status ``claimed``) alerts one severity step below what its reports give
(``claim_severity``): a militia's channel claims more than happens. Its severity rises back, in a revision, when an
official confirms it; a denial leaves it where it was.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timedelta

import numpy as np

from monitor.core.models import Article, Match
from monitor.detection.language import article_language
from monitor.events.facts import (
    casualty_count,
    event_status,
    is_follow_up,
    looks_back,
    official_confirmation,
    revised_status,
    status_change,
)
from monitor.events.joining import SPECIALIZES, SPECIALIZING_TIME, family_of
from monitor.events.similarity import estimate_jaccard

__all__ = [
    "EventPolicy",
    "EventState",
    "Source",
    "add_article",
    "casualty_count",
    "claim_severity",
    "is_follow_up",
    "lent_names",
    "new_event",
    "official_confirmation",
]

WIRE_COPY_SIMILARITY = 0.6
MAX_SOURCES = 50


@dataclass
class Source:
    url: str
    title: str
    feed: str
    published: str | None
    seen: str
    independent: bool
    language: str | None = None  # the feed's or the article's declared language, when known (the dashboard's count)


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
    #: The severity its reports give, before an unconfirmed claim's step down (``claim_severity``); None in events
    #: stored before it existed, whose ``severity`` is it.
    report_severity: int | None = None
    #: The kinds of weapon its first report to name any names in its headline or lead (``Match.weapons``): not
    #: those of every report, or a report of two attacks ("drones follow rockets") would open it to both.
    weapons: list[str] = field(default_factory=list)

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


def claim_severity(report: int, status: str) -> int:
    """The severity an event alerts at: one step below its reports' (not below 1) while only a claim says it
    happened."""
    return max(1, report - 1) if status == "claimed" else report


def _source(article: Article, now: datetime, independent: bool) -> Source:
    return Source(
        url=article.url,
        title=article.title,
        feed=article.feed,
        published=article.published.isoformat() if article.published else None,
        seen=now.isoformat(),
        independent=independent,
        language=article.language,
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
    status = event_status(text)
    return EventState(
        id=event_id,
        family=family_of(match.event_type),
        event_type=match.event_type,
        severity=claim_severity(match.severity, status),
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
        status=status,
        languages=[lang] if (lang := article_language(article)) else [],
        report_severity=match.severity,
        weapons=sorted(match.weapons),
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
    reasons it deserves a revision alert (empty: none); ``salient`` and ``focus`` are what it lends (``lent_names``)."""
    text = f"{article.title}\n{article.summary}\n{article.content}"
    copy = any(
        estimate_jaccard(signature, np.asarray(s, dtype=np.uint32)) >= WIRE_COPY_SIMILARITY for s in event.signatures
    )
    report, event_type, reasons = _graver(event, match, at or now)
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
    severity = _severity(event, report, status)
    if severity > event.severity and policy.revise_on_severity:
        reasons.insert(0, f"severity {event.severity} -> {severity}")
    (first, last), when = event.span, at or now
    updated = replace(
        event,
        event_type=event_type,
        family=family_of(event_type),
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
        report_severity=report,
        weapons=event.weapons or sorted(match.weapons),
    )
    outlets = updated.independent_outlets
    if any(event.alerted_outlets < t <= outlets for t in policy.outlet_thresholds):
        reasons.append(f"reported by {outlets} independent outlets")
        updated.alerted_outlets = outlets
    if reasons:
        updated.revision += 1
    return updated, reasons


def lent_names(
    title: str, salient: frozenset[str], focus: frozenset[str], types: Mapping[str, str]
) -> tuple[frozenset[str], frozenset[str]]:
    """The salient and focus entities a report joining an event lends it to be known by: its own, or none when it
    is a round-up, tally or look-back (``facts.looks_back``) whose headline and lead name two bases or more ("Iraq
    Week: a roadside bomb at Mosul Dam and a drone at Ain al-Asad"), or every attack it names would then look like
    that event. (One attack on two bases, told as news, keeps both.)"""
    if sum(1 for e in focus if types.get(e) == "base") > 1 and looks_back(title):
        return frozenset(), frozenset()
    return salient, focus


def _report_severity(event: EventState) -> int:
    return event.report_severity if event.report_severity is not None else event.severity


def _severity(event: EventState, report: int, status: str) -> int:
    """The event's severity after an article: ``claim_severity``, except that a denial keeps a claim's step down
    (a denial is no confirmation)."""
    if status == "denied" and event.severity < _report_severity(event):
        return max(1, report - 1)
    return claim_severity(report, status)


def _graver(event: EventState, match: Match, at: datetime) -> tuple[int, str, list[str]]:
    """The severity the event's reports give after a report of ``match`` (event time ``at``), its type, and the
    revision reason that gives: a graver report of the same family, or one naming the actor of the event's family
    more precisely (``SPECIALIZES``) within ``SPECIALIZING_TIME`` of its first report, names the event anew; one of
    another related family joins it as it is."""
    assert match.event_type is not None
    known = _report_severity(event)
    if match.severity <= known:
        return known, event.event_type, []
    renames = family_of(match.event_type) == event.family and match.event_type != event.event_type
    specializes = SPECIALIZES.get(match.event_type) == event.family and at - event.span[0] <= SPECIALIZING_TIME
    if renames or specializes:
        return match.severity, match.event_type, [f"type: {event.event_type} -> {match.event_type}"]
    return match.severity, event.event_type, []


def _casualties(known: int | None, figure: int | None, policy: EventPolicy) -> tuple[int | None, list[str]]:
    """The event's casualty figure after an article reporting ``figure``, and the revision reason it gives."""
    if figure is None or figure == known or (known is not None and figure < known):
        return known, []
    if not policy.revise_on_casualties:
        return figure, []
    return figure, [f"casualties reported: {figure}" if known is None else f"casualties {known} -> {figure}"]
