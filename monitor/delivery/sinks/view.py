"""What every rendered alert shows, read once from the payload: the common ground of the chat and e-mail formats.

Pure: no I/O, no clock. Alert payloads come from Redis and, through the articles, from anyone who can publish a
feed, so nothing here trusts them: missing or mistyped fields get defaults, and links are kept only when they are
plain ``http``/``https`` URLs (``javascript:``, ``data:`` and the like are dropped, never rendered).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

from monitor.delivery.routing import PLACE_TYPES

__all__ = [
    "MAX_NAMES",
    "SEVERITY_COLOURS",
    "SEVERITY_NAMES",
    "STATUS_LABELS",
    "AlertView",
    "Link",
    "beside",
    "clip",
    "event_type_label",
    "is_rtl",
    "one_line",
    "safe_url",
]

SEVERITY_NAMES = {1: "informational", 2: "low", 3: "medium", 4: "high", 5: "critical"}
#: One colour per severity (and escalation level), shared by Discord embeds, e-mail badges and the digest chart.
#: Dark enough for white text on them (contrast at least 4.5:1), as e-mail badges need.
SEVERITY_COLOURS = {1: "#15803d", 2: "#4d7c0f", 3: "#a16207", 4: "#c2410c", 5: "#b91c1c"}

#: Readable names of the shipped pack's event types; other types are spelled out from their id.
_TYPE_LABELS = {
    "us_strike_in_iraq": "US strike in Iraq",
    "attack_on_us_forces_in_iraq": "Attack on US forces in Iraq",
    "high_value_target_killed": "High-value target killed",
    "iraq_expels_or_ends_us_presence": "Iraq moves to end the US presence",
    "iran_retaliation_or_threat": "Iranian retaliation or threat",
    "us_embassy_or_diplomatic_incident": "US embassy or diplomatic incident",
    "us_personnel_evacuation_or_advisory": "US evacuation or travel advisory",
}
#: What an event's ``status`` says, in plain words (absent: a plain report, nothing is said).
STATUS_LABELS = {
    "claimed": "Claimed, not confirmed",
    "confirmed": "Confirmed",
    "denied": "Officially denied",
    "retracted": "Retracted by its source",
}
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
# Bidi embeddings, overrides and isolates (U+202A-202E, U+2066-2069): in a headline they can make it display as
# something it does not say ("\u202etxt.exe"), and one left open reorders everything after it in a message.
_BIDI_CONTROL = re.compile(r"[\u202a-\u202e\u2066-\u2069]+")
_RTL_CLASSES = frozenset({"R", "AL"})
_SPACES = re.compile(r"\s+")
_STAMP = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9:.]+(Z|[+-][0-9:]+)?")
_MAX_URL = 2000
#: How many English entity names a "Who" or "Where" line shows, and how long each may be.
MAX_NAMES = 8
_NAME_LIMIT = 80
# Characters a URL may carry as they are; anything else (spaces, quotes, <, >, |, parentheses, backslash...) is
# percent-encoded, so a link survives every format's link syntax (Slack's <url|text>, Markdown's [text](url)).
_URL_SAFE = "/:?#[]@!$&*+,;=%~-._"


def safe_url(value: object) -> str | None:
    """``value`` as a link target if it is an absolute ``http(s)`` URL with a host, else None."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text or len(text) > _MAX_URL or _CONTROL.search(text):
        return None
    try:
        parts = urlsplit(text)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return quote(text, safe=_URL_SAFE)


def one_line(value: object) -> str:
    """Text on one line: control characters (CR, LF, NUL, ...) and runs of white space become one space; bidi
    embedding, override and isolate controls are removed."""
    text = value if isinstance(value, str) else "" if value is None else str(value)
    if not text.isascii():
        text = _BIDI_CONTROL.sub("", text)
    return _SPACES.sub(" ", _CONTROL.sub(" ", text)).strip()


def is_rtl(text: str) -> bool:
    """Whether ``text`` reads right to left: its first strong character is Hebrew or Arabic-script (Arabic, Persian,
    Sorani...), the rule HTML's ``dir="auto"`` and the Unicode bidi algorithm use for a paragraph."""
    if text.isascii():
        return False
    for char in text:
        kind = unicodedata.bidirectional(char)
        if kind in _RTL_CLASSES:
            return True
        if kind == "L":
            return False
    return False


def beside(label: str, text: str, sep: str = ": ", indent: str = "") -> str:
    """``label`` then ``text`` on one line, or, when ``text`` reads right to left, on a line of its own.

    Chat clients (Slack, Discord, Teams' fallback text) lay a message line out left to right whatever it holds, and
    give no way to mark a direction in text; what they do honour is a line break. A right-to-left headline on its
    own line is laid out as a paragraph of its own, so the English label and its punctuation are never reordered
    with it, and no invisible bidi control has to be added to the message.
    """
    if is_rtl(text):
        return f"{label.rstrip()}\n{indent}{text}"
    return f"{label}{sep}{text}"


def clip(text: str, limit: int, escape: Callable[[str], str] | None = None) -> str:
    """``escape(text)`` cut to at most ``limit`` characters, ending in "…" when cut.

    Cuts the raw text, never the escaped one, so an entity (``&amp;``) or an escape (``\\*``) is never split, and
    the limit holds for what is sent.
    """
    esc = escape or (lambda s: s)
    whole = esc(text)
    if len(whole) <= limit:
        return whole
    out: list[str] = []
    used = 0
    for char in text:
        piece = esc(char)
        if used + len(piece) > limit - 1:
            break
        out.append(piece)
        used += len(piece)
    return "".join(out).rstrip() + "…"


def event_type_label(event_type: object) -> str:
    """``us_strike_in_iraq`` -> "US strike in Iraq"; unknown ids are spelled out ("new_type" -> "New type")."""
    if not isinstance(event_type, str) or not event_type:
        return "Unclassified event"
    if event_type in _TYPE_LABELS:
        return _TYPE_LABELS[event_type]
    words = one_line(event_type.replace("_", " "))
    return words[:1].upper() + words[1:]


@dataclass(frozen=True, slots=True)
class Link:
    """One source article: a title, its (checked) URL or None, and the feed it came from."""

    title: str
    url: str | None
    source: str
    published: str | None


def _int(value: Any, default: int, low: int = 1, high: int = 5) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        return default
    return min(high, max(low, value))


def _stamp(value: Any) -> str | None:
    """An ISO-8601 time as the payload gives it, or None: nothing else gets into a "when" slot."""
    return value if isinstance(value, str) and _STAMP.fullmatch(value) else None


def _texts(value: Any) -> list[str]:
    if not isinstance(value, list):
        return []
    return [line for line in (one_line(v) for v in value if isinstance(v, str | int | float)) if line]


def _links(value: Any) -> list[Link]:
    links: list[Link] = []
    seen: set[str] = set()
    for item in value if isinstance(value, list) else []:
        if not isinstance(item, dict):
            continue
        url = safe_url(item.get("url"))
        key = url or one_line(item.get("title"))
        if key in seen:
            continue
        seen.add(key)
        links.append(
            Link(
                title=one_line(item.get("title")) or url or "(untitled article)",
                url=url,
                source=one_line(item.get("source")),
                published=_stamp(item.get("published")),
            )
        )
    return links


def _names(value: Any) -> tuple[list[str], list[str]]:
    """The English names of the payload's ``entity_labels``, split into who (actors, targets) and where (places and
    bases); entities of type ``other`` (the gazetteer's helpers) are not shown."""
    who: list[str] = []
    where: list[str] = []
    for item in value if isinstance(value, list) else []:
        if not isinstance(item, dict) or item.get("type") == "other":
            continue
        name = clip(one_line(item.get("label")), _NAME_LIMIT)
        side = where if item.get("type") in PLACE_TYPES else who
        if name and name not in side:
            side.append(name)
    return who, where


@dataclass(frozen=True, slots=True)
class AlertView:
    """The fields a person reads, cleaned: one-line title, bounded severity, checked links."""

    id: str
    kind: str
    event_id: str
    revision: int
    event_type: str | None
    type_label: str
    severity: int
    title: str
    summary: str
    escalation_level: int | None
    previous_level: int | None
    first_seen: str | None
    updated: str | None
    entities: list[str]
    evidence: list[str]
    changes: list[str]
    links: list[Link]
    status: str | None = None
    #: The English names of the event's actors and targets, and of its places (``entity_labels``).
    who: list[str] = field(default_factory=list)
    where: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, alert: dict[str, Any]) -> AlertView:
        kind = "escalation" if alert.get("kind") == "escalation" else "event"
        event_type = alert.get("event_type") if isinstance(alert.get("event_type"), str) else None
        level = alert.get("escalation_level")
        previous = alert.get("previous_level")
        summary = alert.get("summary")
        who, where = _names(alert.get("entity_labels"))
        return cls(
            id=one_line(alert.get("id")) or "?",
            kind=kind,
            event_id=one_line(alert.get("event_id")),
            revision=_int(alert.get("revision"), 1, 1, 1_000_000),
            event_type=event_type,
            type_label=(
                "Escalation level change"
                if kind == "escalation"
                else "Feed health"
                if alert.get("kind") == "feed"
                else event_type_label(event_type)
            ),
            severity=_int(alert.get("severity"), 3),
            title=one_line(alert.get("title")) or "(no title)",
            # Paragraphs are kept, other control characters are not.
            summary="\n".join(one_line(p) for p in str(summary).splitlines()).strip() if summary else "",
            escalation_level=_int(level, 1) if isinstance(level, int) else None,
            previous_level=_int(previous, 1) if isinstance(previous, int) else None,
            first_seen=_stamp(alert.get("first_seen")),
            updated=_stamp(alert.get("updated")),
            entities=_texts(alert.get("entities")),
            evidence=_texts(alert.get("evidence")),
            changes=_texts(alert.get("changes")),
            links=_links(alert.get("articles")),
            status=alert.get("status") if alert.get("status") in STATUS_LABELS else None,
            who=who,
            where=where,
        )

    @property
    def severity_name(self) -> str:
        return SEVERITY_NAMES[self.severity]

    @property
    def colour(self) -> str:
        """``#rrggbb`` of the severity."""
        return SEVERITY_COLOURS[self.severity]

    @property
    def is_update(self) -> bool:
        return self.kind == "event" and self.revision > 1

    @property
    def lead_url(self) -> str | None:
        """The first source with a usable link: what a headline links to."""
        return next((link.url for link in self.links if link.url), None)

    @property
    def label(self) -> str:
        """The short prefix of every rendering: "Severity 4/5 (high)", "Update 2 · Severity ...", "Escalation"."""
        if self.kind == "escalation":
            level = self.escalation_level or self.severity
            if self.previous_level is not None:
                return f"Escalation level {self.previous_level} → {level}"
            return f"Escalation level {level}"
        head = f"Severity {self.severity}/5 ({self.severity_name})"
        if self.status is not None:
            head += f" · {STATUS_LABELS[self.status]}"
        return f"Update {self.revision} · {head}" if self.is_update else head

    @property
    def names(self) -> list[tuple[str, str]]:
        """The English lines under the headline, as (label, text): "Who" and "Where" when the payload names them (at
        most ``MAX_NAMES`` each, then "and N more"). Every format shows them, so an Arabic, Persian or Sorani headline
        comes with its actors and places in English."""
        lines = []
        for label, names in (("Who", self.who), ("Where", self.where)):
            if names:
                more = f" and {len(names) - MAX_NAMES} more" if len(names) > MAX_NAMES else ""
                lines.append((label, ", ".join(names[:MAX_NAMES]) + more))
        return lines

    @property
    def sources(self) -> list[str]:
        """Distinct feed names, in order."""
        names: list[str] = []
        for link in self.links:
            if link.source and link.source not in names:
                names.append(link.source)
        return names
