"""The console sink: a short block per alert that a person watching the terminal can take in at a glance.

Text from the payload is written in logical order, as it came: a terminal that implements the bidi algorithm
(VTE, Konsole, mlterm...) shows Arabic and Persian right to left, and none is ever reordered here (that would
mirror it everywhere else: in a log file, a pager, a copy and paste). The headline has a line of its own, and bidi
embedding, override and isolate controls are removed, so that an open one cannot reorder the lines after it. Under
the headline, "who:" and "where:" name the event's actors and places in English (``entity_labels``).
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

from monitor.delivery.sinks.view import STATUS_LABELS, AlertView, event_type_label, one_line

__all__ = ["ConsoleSink", "render_alert"]

_MAX_EVIDENCE = 5


def _sources(alert: dict[str, Any]) -> list[str]:
    names: list[str] = []
    for article in alert.get("articles") or []:
        source = article.get("source") if isinstance(article, dict) else None
        if source and source not in names:
            names.append(one_line(source))
    return names


def render_alert(alert: dict[str, Any]) -> str:
    """The text block for one alert (newline-terminated). Tolerates missing fields: ``escalation`` alerts have
    no articles or evidence."""
    kind = alert.get("kind", "event")
    severity = alert.get("severity", "?")
    if kind == "escalation":
        head = f"[ESCALATION level {alert.get('escalation_level', '?')}] severity {severity}/5"
    elif kind == "feed":
        head = f"[FEED {one_line(alert.get('state') or 'notice').upper()}] {one_line(alert.get('feed'))}".rstrip()
        return f"{head}\n  {one_line(alert.get('title'))}\n  {one_line(alert.get('summary'))}\n\n"
    else:
        event_type = one_line(alert.get("event_type"))
        # The type in English, and its id (what routing keys and the rules name) beside it.
        head = f"[ALERT severity {severity}/5] " + (
            f"{event_type_label(event_type)} ({event_type})" if event_type else "unknown event"
        )
        revision = alert.get("revision")
        if isinstance(revision, int) and revision > 1:
            head += f" (update, revision {revision})"
        if alert.get("status") in STATUS_LABELS:
            head += f" [{STATUS_LABELS[alert['status']]}]"
    lines = [head, f"  {one_line(alert.get('title')) or '(no title)'}"]
    # The actors and places in English, each on a line that starts with an English word (so, left to right).
    lines.extend(f"  {label.lower()}: {text}" for label, text in AlertView.of(alert).names)
    sources = _sources(alert)
    if sources:
        lines.append(f"  sources: {', '.join(sources)}")
    evidence = [one_line(e) for e in alert.get("evidence") or []][:_MAX_EVIDENCE]
    if evidence:
        lines.append("  evidence: " + ", ".join(f'"{e}"' for e in evidence))
    articles = alert.get("articles") or []
    if articles and isinstance(articles[0], dict) and articles[0].get("url"):
        lines.append(f"  {one_line(articles[0]['url'])}")
    lines.append(f"  id: {one_line(alert.get('id', '?'))}")
    return "\n".join(lines) + "\n\n"


class ConsoleSink:
    """Writes ``render_alert`` blocks to a text stream (standard output unless told otherwise)."""

    def __init__(self, name: str = "console", stream: TextIO | None = None, *, min_severity: int | None = None) -> None:
        self.name = name
        self.min_severity = min_severity
        self._stream = stream if stream is not None else sys.stdout

    async def send(self, alert: dict[str, Any]) -> None:
        """Print the alert; one ``write`` per block, so concurrent deliveries never interleave lines."""
        self._stream.write(render_alert(alert))
        self._stream.flush()

    async def close(self) -> None:
        """The stream belongs to the caller; only flush it."""
        self._stream.flush()
