"""Slack incoming-webhook messages: Block Kit blocks with a plain ``text`` fallback (notifications, old clients).

Slack parses ``&``, ``<`` and ``>`` as control characters in every text object (``<!channel>``, ``<@U123>``,
``<url|label>``), so all text from a payload is escaped; only the links built here use the angle brackets.
Limits (https://api.slack.com/reference/block-kit/blocks): a header's text 150 characters, a section's 3,000, a
context element's 3,000, at most 50 blocks in a message.
"""

from __future__ import annotations

from typing import Any

from monitor.delivery.sinks.view import AlertView, beside, clip

__all__ = ["HEADER_LIMIT", "MAX_BLOCKS", "SECTION_LIMIT", "slack_payload"]

HEADER_LIMIT = 150
SECTION_LIMIT = 3000
MAX_BLOCKS = 50
MAX_SOURCES = 10
_MARK = {1: "⚪", 2: "🟢", 3: "🟡", 4: "🟠", 5: "🔴"}


def escape(text: str) -> str:
    """Slack's three control characters as entities; nothing else needs escaping."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _mrkdwn(text: str) -> dict[str, str]:
    return {"type": "mrkdwn", "text": text}


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [_mrkdwn(clip(text, SECTION_LIMIT, escape))]}


def _sources(view: AlertView) -> str | None:
    """A bulleted list of linked sources that fits one section; whole lines only, never half a link."""
    if not view.links:
        return None
    lines = ["*Sources*"]
    used = len(lines[0])
    shown = 0
    for link in view.links[:MAX_SOURCES]:
        title = clip(link.title, 200, escape)
        text = f"<{escape(link.url)}|{title}>" if link.url else title
        line = f"• {text}" + (f" — {escape(link.source)}" if link.source else "")
        if used + len(line) + 1 > SECTION_LIMIT - 40:  # room for the "and N more" line
            break
        lines.append(line)
        used += len(line) + 1
        shown += 1
    if shown < len(view.links):
        lines.append(f"_…and {len(view.links) - shown} more_")
    return "\n".join(lines)


def _plain_names(view: AlertView) -> list[str]:
    return [f"{label}: {text}" for label, text in view.names]


def slack_payload(alert: dict[str, Any]) -> dict[str, Any]:
    """The JSON body for a Slack incoming webhook (or a Slack-compatible one: Mattermost, Rocket.Chat)."""
    view = AlertView.of(alert)
    facts = [f"{_MARK[view.severity]} *{escape(view.label)}*", escape(view.type_label)]
    if view.kind == "event" and view.escalation_level is not None:
        facts.append(f"escalation level {view.escalation_level}")
    if view.sources:
        facts.append("sources: " + escape(", ".join(view.sources)))
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": clip(view.title, HEADER_LIMIT, escape)}},
        {"type": "context", "elements": [_mrkdwn(clip(" · ".join(facts), SECTION_LIMIT))]},
    ]
    if view.names:
        # In English under the original headline, whatever its language; each line starts with an English word.
        names = "\n".join(f"*{label}:* {escape(text)}" for label, text in view.names)
        blocks.append({"type": "section", "text": _mrkdwn(clip(names, SECTION_LIMIT))})
    if view.summary:
        blocks.append({"type": "section", "text": _mrkdwn(clip(view.summary, SECTION_LIMIT, escape))})
    sources = _sources(view)
    if sources:
        blocks.append({"type": "section", "text": _mrkdwn(sources)})
    if view.changes:
        blocks.append(_context("What changed: " + "; ".join(view.changes)))
    if view.evidence:
        blocks.append(_context("Evidence: " + ", ".join(f"“{e}”" for e in view.evidence[:10])))
    stamp = f" · updated {view.updated}" if view.updated else ""
    blocks.append(_context(f"Alert {view.id}{stamp}"))
    # A right-to-left headline goes on a line of its own (see ``beside``); the header block is one already.
    fallback = "\n".join([beside(f"{view.label} · {view.type_label}", view.title), *_plain_names(view)])
    return {"text": clip(fallback, SECTION_LIMIT, escape), "blocks": blocks[:MAX_BLOCKS]}
