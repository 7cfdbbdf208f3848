"""Alert payloads per the webhook contract, built purely (no I/O, no clock) and golden-tested."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from monitor.core.clock import utc_iso
from monitor.detection.rulefile import Entity
from monitor.events.cluster import EventState
from monitor.events.escalation import Reading

__all__ = [
    "MAX_ARTICLES",
    "SUMMARY_LIMIT",
    "alert_id",
    "entity_labels",
    "escalation_alert",
    "event_alert",
    "feed_notice",
]

SUMMARY_LIMIT = 600
MAX_ARTICLES = 20


def alert_id(event_id: str, revision: int) -> str:
    """Stable across retries and replicas: the same event revision always has the same id."""
    return f"{event_id}.r{revision}"


def _shorten(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0]
    return cut + "…"


def _iso(value: str | None) -> str | None:
    return utc_iso(datetime.fromisoformat(value)) if value else None


def entity_labels(ids: list[str], gazetteer: Mapping[str, Entity]) -> list[dict[str, str]]:
    """``{"id", "label", "type"}`` for each of ``ids`` that the gazetteer gives an English display label, in order:
    what lets every format name the event's actors and places in English whatever its headline's language."""
    out = []
    for entity_id in ids:
        entity = gazetteer.get(entity_id)
        if entity is not None and entity.label:
            out.append({"id": entity_id, "label": entity.label, "type": entity.type})
    return out


def event_alert(
    event: EventState,
    *,
    escalation_level: int,
    changes: list[str] | None = None,
    gazetteer: Mapping[str, Entity] | None = None,
) -> dict[str, Any]:
    """The ``kind: event`` body for an event's current revision (revision 1 is the new-event alert).

    ``changes`` (an extension of the contract) says why a revision was sent. Articles are listed newest first,
    at most ``MAX_ARTICLES``. With the rule pack's ``gazetteer``, ``entity_labels`` (an extension) names the
    entities in English.
    """
    body: dict[str, Any] = {
        "id": alert_id(event.id, event.revision),
        "kind": "event",
        "event_id": event.id,
        "revision": event.revision,
        "event_type": event.event_type,
        "severity": event.severity,
        "title": event.title,
        "summary": _shorten(event.summary, SUMMARY_LIMIT),
        "escalation_level": escalation_level,
        "first_seen": _iso(event.first_seen),
        "first_published": _iso(event.first_published or event.first_seen),
        "updated": _iso(event.updated),
        "entities": list(event.entities),
        "evidence": list(event.evidence),
        "articles": [
            {"url": s.url, "title": s.title, "source": s.feed, "published": _iso(s.published)}
            for s in reversed(event.sources[-MAX_ARTICLES:])
        ],
        # Extensions: claimed / reported / confirmed / denied, and the languages its reports came in.
        "status": event.status,
        "languages": list(event.languages),
    }
    if gazetteer is not None:
        body["entity_labels"] = entity_labels(event.entities, gazetteer)
    if event.revision > 1:  # so that a receiver can find the message or record it shows and replace it
        body["previous_id"] = alert_id(event.id, event.revision - 1)
    if changes:
        body["changes"] = list(changes)
    return body


def escalation_alert(*, previous: int, reading: Reading, trigger: EventState | None, now: datetime) -> dict[str, Any]:
    """The ``kind: escalation`` body for a change of the escalation level."""
    direction = "rose" if reading.level > previous else "fell"
    stamp = utc_iso(now)
    return {
        "id": f"esc_{int(now.timestamp())}_{previous}_{reading.level}",
        "kind": "escalation",
        "event_id": trigger.id if trigger else None,
        "revision": 1,
        "event_type": None,
        "severity": reading.level,
        "title": f"Escalation level {direction} from {previous} to {reading.level}",
        "summary": (
            f"Index {reading.score:g}; {reading.events_7d} events in the past 7 days against a weekly average of "
            f"{reading.weekly_average:g} over the 4 weeks before (surge x{reading.surge:g})."
            + (f" Latest: {trigger.title}" if trigger else "")
        ),
        "escalation_level": reading.level,
        "previous_level": previous,
        "score": reading.score,
        "surge": reading.surge,
        "first_seen": stamp,
        "updated": stamp,
        "entities": list(trigger.entities) if trigger else [],
        "evidence": [],
        "articles": [
            {"url": s.url, "title": s.title, "source": s.feed, "published": _iso(s.published)}
            for s in (trigger.sources[:1] if trigger else [])
        ],
    }


def feed_notice(
    *, feed: str, url_origin: str, down: bool, consecutive_errors: int, reason: str, now: datetime
) -> dict[str, Any]:
    """The ``kind: feed`` body: an operator notice that a feed keeps failing, or has recovered."""
    stamp = utc_iso(now)
    state = "down" if down else "recovered"
    title = f"Feed {feed} has failed {consecutive_errors} times in a row" if down else f"Feed {feed} has recovered"
    return {
        "id": f"feed_{feed}_{state}_{int(now.timestamp())}",
        "kind": "feed",
        "event_id": None,
        "revision": 1,
        "event_type": None,
        "severity": 2,
        "title": title,
        "summary": f"{url_origin}: {reason}" if down else f"{url_origin} answers again.",
        "escalation_level": None,
        "first_seen": stamp,
        "updated": stamp,
        "entities": [],
        "evidence": [],
        "articles": [],
        "feed": feed,
        "state": state,
    }
