"""What the pages and the JSON show, made from what storage read: pure functions, no I/O, no clock of their own."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from monitor.events.cluster import EventState
from monitor.storage.dashboard import IndexSample, LeadRecord
from monitor.storage.deadletters import DeadAlert

__all__ = [
    "chart_data",
    "dead_view",
    "event_detail",
    "event_row",
    "first_reporter",
    "hhmm",
    "scoreboard",
]


def _time(value: str | None) -> datetime | None:
    if not value:
        return None
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def hhmm(value: datetime | str | None) -> str:
    """A time as the pages print it: ``2026-01-03 14:05 UTC``."""
    moment = _time(value) if isinstance(value, str) or value is None else value
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if moment else "—"


def first_reporter(event: EventState) -> tuple[str | None, float | None]:
    """The outlet (feed) that reported the event first and its lead in minutes over the next outlet (None when only
    one outlet reported it). Publication time where the feed gave one, else when the monitor saw it."""
    earliest: dict[str, datetime] = {}
    for source in event.sources:
        at = _time(source.published) or _time(source.seen)
        if at is not None and (source.feed not in earliest or at < earliest[source.feed]):
            earliest[source.feed] = at
    ranked = sorted(earliest.items(), key=lambda item: item[1])
    if not ranked:
        return None, None
    if len(ranked) == 1:
        return ranked[0][0], None
    return ranked[0][0], round((ranked[1][1] - ranked[0][1]).total_seconds() / 60, 1)


def event_row(event: EventState, now: datetime, window: timedelta) -> dict[str, Any]:
    """One event as the tables and ``/api/events`` list it."""
    updated = _time(event.updated) or now
    languages = {s.language.split("-")[0].lower() for s in event.sources if s.language}
    return {
        "id": event.id,
        "title": event.title,
        "event_type": event.event_type,
        "severity": event.severity,
        "status": "open" if now - updated <= window else "closed",
        "revision": event.revision,
        "sources": len(event.sources),
        "outlets": len({s.feed for s in event.sources}),
        "languages": len(languages) or None,
        "first_published": event.first_published or event.first_seen,
        "first_seen": event.first_seen,
        "updated": event.updated,
        "confirmed": event.confirmed,
        "casualties": event.casualties,
    }


def event_detail(
    event: EventState, revisions: Sequence[dict[str, Any]], now: datetime, window: timedelta
) -> dict[str, Any]:
    """The event page: its row, each revision with what changed, each article, and who reported first."""
    timeline = sorted(revisions, key=lambda r: int(r.get("revision") or 0))
    articles = sorted(
        (
            {
                "title": s.title,
                "url": s.url if s.url.startswith(("http://", "https://")) else "",
                "source": s.feed,
                "published": s.published,
                "seen": s.seen,
                "language": s.language,
            }
            for s in event.sources
        ),
        key=lambda a: str(a["published"] or a["seen"]),
    )
    first, lead = first_reporter(event)
    return {
        **event_row(event, now, window),
        "summary": event.summary,
        "entities": list(event.entities),
        "evidence": list(event.evidence),
        "revisions": timeline,
        "articles": articles,
        "first_reporter": first,
        "lead_minutes": lead,
    }


def chart_data(
    samples: Sequence[IndexSample], events: Sequence[EventState], thresholds: Sequence[float]
) -> dict[str, Any]:
    """The overview chart as uPlot takes it: aligned columns over one time axis (seconds). The index and the level
    have a value at each sample; each event adds a time with a marker at the index read last before it."""
    points: dict[int, dict[str, Any]] = {}
    for sample in samples:
        points.setdefault(int(sample.at.timestamp()), {}).update(index=sample.score, level=sample.level)
    for event in events:
        at = _time(event.first_seen)
        if at is not None:
            points.setdefault(int(at.timestamp()), {}).setdefault("events", []).append(event)
    xs = sorted(points)
    index: list[float | None] = []
    level: list[int | None] = []
    markers: list[float | None] = []
    labels: list[str | None] = []
    last = 0.0
    for x in xs:
        point = points[x]
        index.append(point.get("index"))
        level.append(point.get("level"))
        last = point.get("index", last)
        found = point.get("events", [])
        markers.append(last if found else None)
        labels.append("; ".join(f"{e.event_type} (sev {e.severity}): {e.title}" for e in found) or None)
    return {
        "x": xs,
        "index": index,
        "level": level,
        "markers": markers,
        "labels": labels,
        "thresholds": list(thresholds),
    }


def scoreboard(records: Sequence[LeadRecord]) -> list[dict[str, Any]]:
    """Per feed: how often it reported an event first, and its median lead over the next outlet; best first."""
    rows = [
        {
            "feed": r.feed,
            "first": r.first,
            "median_lead_minutes": round(statistics.median(r.leads_min), 1) if r.leads_min else None,
        }
        for r in records
    ]
    return sorted(rows, key=lambda r: (-r["first"], r["feed"]))


def dead_view(dead: DeadAlert) -> dict[str, Any]:
    return {
        "dead_id": dead.dead_id,
        "sink": dead.sink,
        "alert_id": dead.alert_id,
        "title": str(dead.alert.get("title", "")),
        "reason": dead.reason,
        "attempts": dead.attempts,
        "time": dead.time,
    }
