"""Which alerts a sink gets: its routing keys read from the config, decided on the alert payload alone (pure).

A sink with no routing keys gets every alert. Each key narrows what it gets:

- ``min_severity``: alerts of at least this severity (every kind of alert);
- ``event_types``: events of these types;
- ``entities`` and ``places``: events naming at least one of these entity ids (the two lists are one filter:
  ``places`` reads better for bases and towns, ``places: [ain_al_asad, harir]``);
- ``languages``: events reported in at least one of these languages (an event whose payload names no language
  is not held back);
- ``revisions``: ``all`` (default), ``none`` (only an event's first alert) or ``major``: a revision only when it
  changed the event type, its status (claimed, confirmed, denied, retracted), raised its severity or raised the
  casualty figure.

Escalation-level changes and feed notices are not about one event: only ``min_severity`` applies to them.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["PLACE_TYPES", "Revisions", "Route", "is_major_change", "route_problems"]

#: The entity types ``places`` may name (the rule pack's towns, provinces and bases).
PLACE_TYPES = frozenset({"place", "base"})

Revisions = Literal["all", "major", "none"]

_SEVERITY = re.compile(r"^severity (\d+) -> (\d+)$")
_MAJOR_PREFIXES = ("type:", "status", "casualties", "officially confirmed", "denied", "retracted")


def is_major_change(change: str) -> bool:
    """A revision reason that ``revisions: major`` passes: a type change, a status change (confirmation, denial,
    retraction), a severity rise or a casualty figure reported or raised (the event only revises on a rise)."""
    text = change.strip().lower()
    severity = _SEVERITY.match(text)
    if severity:
        return int(severity.group(2)) > int(severity.group(1))
    return text.startswith(_MAJOR_PREFIXES)


def _strings(value: Any) -> set[str]:
    if isinstance(value, str):
        return {value}
    return {v for v in value if isinstance(v, str)} if isinstance(value, list) else set()


def _set(values: Any) -> frozenset[str] | None:
    return frozenset(values) if values else None


@dataclass(frozen=True, slots=True)
class Route:
    """One sink's routing keys (None: that key does not filter)."""

    min_severity: int | None = None
    event_types: frozenset[str] | None = None
    entities: frozenset[str] | None = None
    languages: frozenset[str] | None = None
    revisions: Revisions = "all"

    @classmethod
    def of(cls, entry: Any) -> Route:
        """The route of a sink's config entry (any object with the routing keys as attributes)."""
        named = set(getattr(entry, "entities", None) or ()) | set(getattr(entry, "places", None) or ())
        return cls(
            min_severity=getattr(entry, "min_severity", None),
            event_types=_set(getattr(entry, "event_types", None)),
            entities=_set(named),
            languages=_set(getattr(entry, "languages", None)),
            revisions=getattr(entry, "revisions", "all") or "all",
        )

    def allows(self, alert: dict[str, Any]) -> bool:
        """Whether the sink gets ``alert``."""
        return not self.refusals(alert)

    def refusals(self, alert: dict[str, Any]) -> list[str]:
        """Why the sink does not get ``alert`` (empty: it does)."""
        return [reason for ok, reason in self.explain(alert) if not ok]

    def explain(self, alert: dict[str, Any]) -> list[tuple[bool, str]]:
        """Every key that applies to ``alert``, each with whether it passes and why."""
        checks: list[tuple[bool, str]] = []
        severity = alert.get("severity")
        if self.min_severity is not None:
            ok = isinstance(severity, int) and severity >= self.min_severity
            checks.append((ok, f"severity {severity} {'>=' if ok else '<'} min_severity {self.min_severity}"))
        if alert.get("kind") != "event":
            return checks
        if self.event_types is not None:
            kind = alert.get("event_type")
            ok = kind in self.event_types
            checks.append((ok, f"event type {kind} {'in' if ok else 'not in'} event_types"))
        if self.entities is not None:
            shared = sorted(_strings(alert.get("entities")) & self.entities)
            why = f"names {', '.join(shared)}" if shared else "names none of entities/places"
            checks.append((bool(shared), why))
        if self.languages is not None:
            checks.append(self._languages(alert))
        if self.revisions != "all":
            checks.append(self._revision(alert))
        return checks

    def _languages(self, alert: dict[str, Any]) -> tuple[bool, str]:
        assert self.languages is not None
        spoken = _strings(alert.get("languages")) | _strings(alert.get("lang"))
        if not spoken:
            return True, "no language given (not held back)"
        shared = sorted(spoken & self.languages)
        return bool(shared), f"languages {', '.join(sorted(spoken))} " + ("match" if shared else "not in languages")

    def _revision(self, alert: dict[str, Any]) -> tuple[bool, str]:
        revision = alert.get("revision")
        if not isinstance(revision, int) or revision <= 1:
            return True, "first alert of the event"
        if self.revisions == "none":
            return False, f"revision {revision} and revisions: none"
        major = [c for c in _strings(alert.get("changes")) if is_major_change(c)]
        if major:
            return True, f"revision {revision} is major ({'; '.join(sorted(major))})"
        return False, f"revision {revision} is minor and revisions: major"


def route_problems(
    entry: Any, event_types: Collection[str], entity_types: Mapping[str, str]
) -> list[tuple[str, int, str]]:
    """``(key, index, reason)`` for every routing value of a sink entry that the rule pack does not know: an event
    type no rule detects, an entity id not in the gazetteer, a place that is not a place or base. Such a value
    would silently route nothing."""
    problems: list[tuple[str, int, str]] = []
    for i, kind in enumerate(getattr(entry, "event_types", None) or ()):
        if kind not in event_types:
            problems.append(("event_types", i, f"unknown event type {kind!r} (known: {', '.join(event_types)})"))
    for i, entity in enumerate(getattr(entry, "entities", None) or ()):
        if entity not in entity_types:
            problems.append(("entities", i, f"unknown entity id {entity!r}"))
    for i, place in enumerate(getattr(entry, "places", None) or ()):
        if place not in entity_types:
            problems.append(("places", i, f"unknown entity id {place!r}"))
        elif entity_types[place] not in PLACE_TYPES:
            problems.append(("places", i, f"{place!r} is a {entity_types[place]}, not a place or base"))
    return problems
