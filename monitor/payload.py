"""Alert payloads per the webhook contract, built purely (no I/O, no clock) and golden-tested."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from monitor.clock import utc_iso
from monitor.models import Article, Match

__all__ = ["SUMMARY_LIMIT", "alert_id", "event_payload"]

SUMMARY_LIMIT = 600


def alert_id(event_id: str, revision: int) -> str:
    """Stable across retries and replicas: the same event revision always has the same id."""
    return f"{event_id}.r{revision}"


def _shorten(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0]
    return cut + "…"


def event_payload(
    *,
    event_id: str,
    revision: int,
    match: Match,
    articles: Sequence[Article],
    first_seen: datetime,
    updated: datetime,
    escalation_level: int,
) -> dict[str, Any]:
    """The ``kind: event`` body. ``articles[0]`` is the lead article whose title heads the alert."""
    lead = articles[0]
    evidence: list[str] = []
    for item in match.evidence:
        if item.phrase not in evidence:
            evidence.append(item.phrase)
    return {
        "id": alert_id(event_id, revision),
        "kind": "event",
        "event_id": event_id,
        "revision": revision,
        "event_type": match.event_type,
        "severity": match.severity,
        "title": lead.title,
        "summary": _shorten(lead.summary or lead.content, SUMMARY_LIMIT),
        "escalation_level": escalation_level,
        "first_seen": utc_iso(first_seen),
        "updated": utc_iso(updated),
        "entities": list(match.entities),
        "evidence": evidence[:20],
        "articles": [
            {
                "url": a.url,
                "title": a.title,
                "source": a.feed,
                "published": utc_iso(a.published) if a.published else None,
            }
            for a in articles
        ],
    }
