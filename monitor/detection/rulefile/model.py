"""The compiled rule pack: typed, validated entities, rules and filters, as the matcher and the tools use them.

Plain frozen dataclasses; nothing here reads files or checks anything (``schema`` and ``compile`` do that).
"""

from __future__ import annotations

from dataclasses import dataclass

from monitor.detection.condition import Node

__all__ = [
    "ENTITY_TYPES",
    "FIELDS",
    "LEVELS",
    "Entity",
    "Example",
    "Filter",
    "Rule",
    "RuleSet",
    "Selection",
    "SeverityModifier",
]

FIELDS = ("title", "summary", "content")
ENTITY_TYPES = (
    "person",
    "militia",
    "state_actor",
    "military_unit",
    "place",
    "base",
    "organisation",
    "country",
    "other",
)
LEVELS = {"informational": 1, "low": 2, "medium": 3, "high": 4, "critical": 5}


@dataclass(frozen=True, slots=True)
class Entity:
    id: str
    type: str
    affiliation: str | None
    names: tuple[str, ...]
    ambiguous: tuple[str, ...]
    context: tuple[str, ...]
    within: tuple[str, ...] = ()  # the places it lies in (ids)
    label: str | None = None  # its English display name; None when it has none in Latin letters


@dataclass(frozen=True, slots=True)
class Selection:
    name: str
    keywords: tuple[str, ...]
    entities: frozenset[str]
    regex: tuple[str, ...]
    fields: frozenset[str] | None
    min: int
    languages: frozenset[str] | None = None  # hits count only in articles in these languages


@dataclass(frozen=True, slots=True)
class SeverityModifier:
    when: Node
    add: int
    reason: str


@dataclass(frozen=True, slots=True)
class Example:
    title: str
    summary: str
    text: str
    event_type: str | None


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    title: str
    status: str
    event_type: str
    level: int
    selections: dict[str, Selection]
    condition: Node
    negative: frozenset[str]
    severity: tuple[SeverityModifier, ...]
    examples_match: tuple[Example, ...]
    action: tuple[str, ...]
    supersedes: tuple[str, ...]
    examples_no_match: tuple[Example, ...]
    path: str
    line: int | None
    direction: str | None = None  # "us_acts", "us_targeted" or None (see the rule schema)
    languages: frozenset[str] | None = None  # fires only on articles in these languages; None: any


@dataclass(frozen=True, slots=True)
class Filter:
    title: str
    rules: frozenset[str]
    selections: dict[str, Selection]
    condition: Node
    path: str


@dataclass(frozen=True, slots=True)
class RuleSet:
    entities: dict[str, Entity]
    rules: tuple[Rule, ...]
    filters: tuple[Filter, ...]
    files: tuple[str, ...]

    @property
    def event_types(self) -> list[str]:
        return sorted({r.event_type for r in self.rules})
