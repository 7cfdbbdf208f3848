"""Telegram messages: HTML (``parse_mode: HTML``) with every value from the payload escaped.

Telegram's HTML accepts a few tags (``b``, ``i``, ``a href``, ...) and needs ``&``, ``<`` and ``>`` escaped in
text, and ``"`` too inside an attribute; only the tags built here are markup. A message holds at most 4,096
characters (https://core.telegram.org/bots/api#sendmessage); sources are dropped from the end until it fits.
"""

from __future__ import annotations

import html
from typing import Any

from monitor.delivery.sinks.view import AlertView, clip

__all__ = ["MESSAGE_LIMIT", "escape", "telegram_change_note", "telegram_text"]

MESSAGE_LIMIT = 4096
SUMMARY_LIMIT = 1200
MAX_SOURCES = 10
_MARK = {1: "⚪", 2: "🟢", 3: "🟡", 4: "🟠", 5: "🔴"}


def escape(text: str) -> str:
    """Text that Telegram's HTML parser shows as typed."""
    return html.escape(text, quote=False)


def _link(url: str, text: str) -> str:
    return f'<a href="{html.escape(url, quote=True)}">{text}</a>'


def _source_lines(view: AlertView, count: int) -> list[str]:
    lines = []
    for link in view.links[:count]:
        title = clip(link.title, 200, escape)
        line = "• " + (_link(link.url, title) if link.url else title)
        lines.append(line + (f" — {escape(link.source)}" if link.source else ""))
    if len(view.links) > count:
        lines.append(f"<i>…and {len(view.links) - count} more</i>")
    return lines


def _compose(view: AlertView, sources: int) -> str:
    title = clip(view.title, 300, escape)
    parts = [
        f"{_MARK[view.severity]} <b>{escape(view.label)}</b> · {escape(view.type_label)}",
        f"<b>{_link(view.lead_url, title) if view.lead_url else title}</b>",
    ]
    if view.names:  # the actors and places in English, whatever the headline's language
        parts.append("\n".join(f"<b>{label}:</b> {clip(text, 600, escape)}" for label, text in view.names))
    if view.summary:
        parts.append(clip(view.summary, SUMMARY_LIMIT, escape))
    if view.links and sources:
        parts.append("<b>Sources</b>\n" + "\n".join(_source_lines(view, sources)))
    if view.changes:
        parts.append("<i>What changed: " + clip("; ".join(view.changes), 600, escape) + "</i>")
    stamp = f" · updated {view.updated[11:16]} UTC" if view.is_update and view.updated else ""
    parts.append(f"<i>Alert {clip(view.id, 200, escape)}{stamp}</i>")
    return "\n\n".join(parts)


def telegram_text(alert: dict[str, Any]) -> str:
    """The ``text`` of a ``sendMessage`` / ``editMessageText`` in HTML parse mode, at most ``MESSAGE_LIMIT``."""
    view = AlertView.of(alert)
    sources = min(MAX_SOURCES, len(view.links))
    text = _compose(view, sources)
    while len(text) > MESSAGE_LIMIT and sources:
        sources -= 1
        text = _compose(view, sources)
    return text


def telegram_change_note(alert: dict[str, Any]) -> str:
    """The reply under an edited message: what the revision changed, in a line."""
    view = AlertView.of(alert)
    what = "; ".join(view.changes) or "new reports"
    return f"<b>{escape(view.label)}</b>: " + clip(what, 3000, escape)
