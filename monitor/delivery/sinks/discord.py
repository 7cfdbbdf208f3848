"""Discord webhook messages: one embed coloured by severity, and a short ``content`` line for notifications.

``allowed_mentions: {"parse": []}`` is always sent, so ``@everyone``, ``@here``, role or user mentions that an
article carries never ping anyone. Payload text is also Markdown-escaped, so a headline cannot turn into a masked
link (``[bbc.co.uk](https://elsewhere)``) or a mention display. Limits
(https://discord.com/developers/docs/resources/message#embed-object-embed-limits): title 256, description 4,096,
25 fields, field name 256 and value 1,024, footer 2,048, and 6,000 characters over all of an embed's text;
``content`` 2,000.
"""

from __future__ import annotations

import re
from typing import Any

from monitor.delivery.sinks.view import AlertView, beside, clip

__all__ = [
    "CONTENT_LIMIT",
    "DESCRIPTION_LIMIT",
    "EMBED_TOTAL_LIMIT",
    "FIELD_LIMIT",
    "MAX_FIELDS",
    "TITLE_LIMIT",
    "discord_payload",
    "embed_size",
]

TITLE_LIMIT = 256
DESCRIPTION_LIMIT = 4096
FIELD_LIMIT = 1024
MAX_FIELDS = 25
EMBED_TOTAL_LIMIT = 6000
CONTENT_LIMIT = 2000
_MARK = {1: "⚪", 2: "🟢", 3: "🟡", 4: "🟠", 5: "🔴"}
# Discord's Markdown accepts a backslash before any ASCII punctuation; these are the ones that mean something
# anywhere in a line (emphasis, spoilers, code, quotes, link brackets, mentions and timestamps)...
_SPECIAL = re.compile(r"([\\*_~`|>\[\]<@])")
# ...and these only at the start of one (headings, subtext, lists).
_LINE_START = re.compile(r"(?m)^(\s*)([#-])")


def escape(text: str) -> str:
    """Markdown-inert text: every meaningful character backslash-escaped (a link needs its brackets, so
    ``[a](b)`` becomes ``\\[a\\](b)``, which shows as typed)."""
    return _LINE_START.sub(r"\1\\\2", _SPECIAL.sub(r"\\\1", text))


def _fit_lines(lines: list[str], limit: int, total: int) -> str:
    """Whole lines up to ``limit`` characters, then "…and N more" (never half a link)."""
    kept: list[str] = []
    used = 0
    for line in lines:
        if used + len(line) + 1 > limit - 20:
            break
        kept.append(line)
        used += len(line) + 1
    if len(kept) < total:
        kept.append(f"…and {total - len(kept)} more")
    return "\n".join(kept)


def embed_size(embed: dict[str, Any]) -> int:
    """The characters Discord counts against the 6,000 limit."""
    size = len(embed.get("title", "")) + len(embed.get("description", ""))
    size += sum(len(f["name"]) + len(f["value"]) for f in embed.get("fields", []))
    size += len(embed.get("footer", {}).get("text", ""))
    return size + len(embed.get("author", {}).get("name", ""))


def _fields(view: AlertView) -> list[dict[str, Any]]:
    fields = [
        {"name": "Severity", "value": f"{view.severity}/5 ({view.severity_name})", "inline": True},
        {"name": "Type", "value": escape(view.type_label), "inline": True},
    ]
    if view.escalation_level is not None:
        fields.append({"name": "Escalation level", "value": str(view.escalation_level), "inline": True})
    # The actors and places in English, whatever the headline's language.
    fields.extend(
        {"name": label, "value": clip(text, FIELD_LIMIT, escape), "inline": False} for label, text in view.names
    )
    if view.links:
        lines = []
        for link in view.links:
            title = clip(link.title, 200, escape)
            text = f"[{title}]({link.url})" if link.url else title
            lines.append(text + (f" · {escape(link.source)}" if link.source else ""))
        fields.append({"name": "Sources", "value": _fit_lines(lines, FIELD_LIMIT, len(lines)), "inline": False})
    if view.changes:
        fields.append({"name": "What changed", "value": clip("; ".join(view.changes), FIELD_LIMIT, escape)})
    if view.evidence:
        quoted = ", ".join(f"“{e}”" for e in view.evidence[:10])
        fields.append({"name": "Evidence", "value": clip(quoted, FIELD_LIMIT, escape), "inline": False})
    return fields[:MAX_FIELDS]


def discord_payload(alert: dict[str, Any]) -> dict[str, Any]:
    """The JSON body for a Discord webhook (``POST https://discord.com/api/webhooks/ID/TOKEN``)."""
    view = AlertView.of(alert)
    embed: dict[str, Any] = {
        "title": clip(view.title, TITLE_LIMIT, escape),
        "color": int(view.colour[1:], 16),
        "fields": _fields(view),
        "footer": {"text": clip(f"{view.label} · alert {view.id}", 2048)},
    }
    if view.lead_url:
        embed["url"] = view.lead_url
    if view.updated:
        embed["timestamp"] = view.updated
    if view.summary:
        # The description gets what the other parts leave of the 6,000 characters.
        room = min(DESCRIPTION_LIMIT, EMBED_TOTAL_LIMIT - embed_size(embed))
        if room > 1:
            embed["description"] = clip(view.summary, room, escape)
    return {
        "content": _content(view),
        "allowed_mentions": {"parse": []},
        "embeds": [embed],
    }


def _content(view: AlertView) -> str:
    """The message line a notification shows (embeds alone show as "sent an embed" there); a right-to-left headline
    on a line of its own (see ``beside``)."""
    head = f"{_MARK[view.severity]} **{escape(view.label)}** · {escape(view.type_label)}"
    return beside(head, clip(view.title, CONTENT_LIMIT - len(head) - 2, escape))
