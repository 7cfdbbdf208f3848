"""Microsoft Teams messages: an Adaptive Card (1.4) posted to a Teams Workflows webhook URL.

Workflows ("Post to a channel when a webhook request is received") take a ``message`` whose attachment is the
card. ``TextBlock`` text is Markdown in Teams, so text from a payload (titles, summaries, source names) goes into
``RichTextBlock`` text runs instead, which are never parsed: a headline cannot become a link or a mention, and
needs no escaping. Only strings built here go into ``TextBlock``/``FactSet``, and the English entity names
(``Who``/``Where`` facts) stripped to letters, digits and plain punctuation first. Teams refuses messages over about
28 KB, so the card is kept under ``MAX_BYTES``: sources are dropped first, then the summary is shortened.
"""

from __future__ import annotations

import json
import re
from typing import Any

from monitor.delivery.sinks.view import AlertView, beside, clip, is_rtl

__all__ = ["CARD_VERSION", "MAX_BYTES", "teams_payload"]

CARD_VERSION = "1.4"
MAX_BYTES = 24_000
TITLE_LIMIT = 300
SUMMARY_LIMIT = 2000
MAX_SOURCES = 10
_NOT_PLAIN = re.compile(r"[^\w\s.,'()/&-]|_")
_COLOUR = {1: "Good", 2: "Good", 3: "Warning", 4: "Attention", 5: "Attention"}


def _plain(text: str) -> str:
    """A name fit for a ``FactSet`` value, whose text Teams reads as Markdown: only letters, digits, spaces and
    ``. , ' ( ) / & -``, so no emphasis, link or list can be formed from it."""
    return clip(_NOT_PLAIN.sub("", text), 500)


def _run(text: str, **style: Any) -> dict[str, Any]:
    return {"type": "TextRun", "text": text, **style}


def _rich(*inlines: dict[str, Any], **style: Any) -> dict[str, Any]:
    return {"type": "RichTextBlock", "inlines": list(inlines), **style}


def _directed(block: dict[str, Any], text: str) -> dict[str, Any]:
    """``block`` in a right-to-left ``Container`` when ``text`` reads right to left: the one way a card states a
    direction (``rtl``, Adaptive Cards 1.5; hosts that predate it ignore the property and show the text, in its own
    block, left-aligned)."""
    return {"type": "Container", "rtl": True, "items": [block]} if is_rtl(text) else block


def _source(link: Any) -> dict[str, Any]:
    title = _run(clip(link.title, 200))
    if link.url:
        title["selectAction"] = {"type": "Action.OpenUrl", "url": link.url}
        title["color"] = "Accent"
    inlines = [title]
    if link.source:
        inlines.append(_run(f" — {link.source}", isSubtle=True))
    return _rich(*inlines, spacing="Small")


def _card(view: AlertView, *, sources: int, summary_limit: int) -> dict[str, Any]:
    body: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "text": f"{view.label} · {view.type_label}",
            "weight": "Bolder",
            "size": "Small",
            "color": _COLOUR[view.severity],
            "wrap": True,
        },
        _directed(_rich(_run(clip(view.title, TITLE_LIMIT), weight="Bolder", size="Large")), view.title),
    ]
    if view.summary and summary_limit > 0:
        body.append(_directed(_rich(_run(clip(view.summary, summary_limit))), view.summary))
    facts = [{"title": "Severity", "value": f"{view.severity}/5 ({view.severity_name})"}]
    facts.extend({"title": label, "value": _plain(text)} for label, text in view.names)
    if view.escalation_level is not None:
        facts.append({"title": "Escalation level", "value": str(view.escalation_level)})
    if view.first_seen:
        facts.append({"title": "First seen", "value": view.first_seen})
    if view.is_update and view.updated:
        facts.append({"title": "Updated", "value": view.updated})
    body.append({"type": "FactSet", "facts": facts})
    if view.links and sources:
        body.append({"type": "TextBlock", "text": "Sources", "weight": "Bolder", "wrap": True})
        body.extend(_source(link) for link in view.links[:sources])
        if len(view.links) > sources:
            body.append(_rich(_run(f"…and {len(view.links) - sources} more", isSubtle=True)))
    if view.changes:
        body.append(_rich(_run(clip("What changed: " + "; ".join(view.changes), 1000), isSubtle=True)))
    if view.evidence:
        quoted = ", ".join(f"“{e}”" for e in view.evidence[:10])
        body.append(_rich(_run(clip(f"Evidence: {quoted}", 1000), isSubtle=True)))
    body.append(_rich(_run(f"Alert {clip(view.id, 200)}", isSubtle=True, size="Small")))
    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": CARD_VERSION,
        "msteams": {"width": "Full"},
        "fallbackText": clip(
            "\n".join([beside(f"{view.label} · {view.type_label}", view.title), *(f"{k}: {v}" for k, v in view.names)]),
            1000,
        ),
        "body": body,
    }
    if view.lead_url:
        card["actions"] = [{"type": "Action.OpenUrl", "title": "Open the article", "url": view.lead_url}]
    return {
        "type": "message",
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}
        ],
    }


def _size(message: dict[str, Any]) -> int:
    return len(json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


def teams_payload(alert: dict[str, Any]) -> dict[str, Any]:
    """The JSON body for a Teams Workflows webhook, at most ``MAX_BYTES`` of UTF-8 JSON."""
    view = AlertView.of(alert)
    sources, summary_limit = MAX_SOURCES, SUMMARY_LIMIT
    message = _card(view, sources=sources, summary_limit=summary_limit)
    while _size(message) > MAX_BYTES and (sources or summary_limit):
        if sources:
            sources -= 1
        else:
            summary_limit = summary_limit // 2 if summary_limit > 50 else 0
        message = _card(view, sources=sources, summary_limit=summary_limit)
    return message
