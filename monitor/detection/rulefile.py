"""Rule and entity files: schema, loading and validation.

A rule pack is a set of YAML files (folders are read recursively, ``*.yaml``/``*.yml`` in name order). Each YAML
document is one of:

* an entity gazetteer — a mapping with ``entities:``, a list of entities with their aliases;
* an event rule — Sigma-style: ``id``, ``title``, ``status``, ``description``, ``references``, ``tags``,
  ``level``, ``detection`` (named selections and a ``condition``), ``severity`` modifiers,
  ``falsepositives`` and ``examples``;
* a site-local filter — ``filter:`` with ``rules`` (ids, or ``*``), its own selections and a ``condition``
  that, when it holds, suppresses those rules, so a site can tune the pack without forking it.

Every problem in every file is collected with its ``path:line`` before loading gives up.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import re2
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from monitor.config.yamlsrc import Located, load_yaml_documents
from monitor.core.errors import ConfigError, Problem, RuleError
from monitor.detection.condition import Node, names, negative_names, parse_condition
from monitor.detection.text import normalize

__all__ = [
    "ENTITY_TYPES",
    "FIELDS",
    "Entity",
    "Example",
    "Filter",
    "Rule",
    "RuleSet",
    "Selection",
    "SeverityModifier",
    "load_rules",
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
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False
_ID = r"^[a-z0-9][a-z0-9_.-]*$"
Field_ = Literal["title", "summary", "content"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class EntitySpec(_Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    type: Literal[
        "person", "militia", "state_actor", "military_unit", "place", "base", "organisation", "country", "other"
    ]
    affiliation: str | None = Field(None, pattern=r"^[a-z][a-z0-9_]*$")
    description: str | None = None
    names: list[str] = Field(min_length=1)
    #: Names too ambiguous on their own (``PMF``, ``Hashd``): they count only when an entity listed in
    #: ``context`` is also named in the article.
    ambiguous: list[str] = Field(default_factory=list)
    context: list[str] = Field(default_factory=list)


class EntityFile(_Strict):
    entities: list[EntitySpec]


class SelectionSpec(_Strict):
    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)

    keywords: list[str] = Field(default_factory=list)
    entities: list[str] = Field(default_factory=list)
    entity_types: list[str] = Field(default_factory=list)
    affiliations: list[str] = Field(default_factory=list)
    regex: list[str] = Field(default_factory=list)
    fields: list[Field_] | None = None
    min: int = Field(1, ge=1, le=20, description="distinct phrases needed")


class SeveritySpec(_Strict):
    when: str
    add: int = Field(ge=-4, le=4)
    reason: str


class ExampleSpec(_Strict):
    title: str
    summary: str = ""
    text: str = ""
    event_type: str | None = None


class ExamplesSpec(_Strict):
    match: list[ExampleSpec] = Field(default_factory=list)
    no_match: list[ExampleSpec] = Field(default_factory=list)


class RuleSpec(_Strict):
    title: str = Field(min_length=3)
    id: str = Field(pattern=_ID)
    status: Literal["stable", "test", "experimental"] = "stable"
    description: str
    references: list[str] = Field(default_factory=list)
    author: str | None = None
    date: str | None = None
    modified: str | None = None
    tags: list[str] = Field(min_length=1)
    level: int | Literal["informational", "low", "medium", "high", "critical"]
    detection: dict[str, Any]
    severity: list[SeveritySpec] = Field(default_factory=list)
    falsepositives: list[str] = Field(min_length=1)
    #: Selections that carry the event's verb ("strike", "killed"). When several rules fire on one headline,
    #: the one whose action comes first in it names the story: English headlines lead with the main event.
    action: list[str] = Field(default_factory=list)
    #: Rules this one is a special case of: when both fire on the headline, this one names the story
    #: (a commander killed by a US strike is a killing before it is a strike).
    supersedes: list[str] = Field(default_factory=list)
    examples: ExamplesSpec = Field(default_factory=ExamplesSpec)

    @field_validator("description")
    @classmethod
    def _detects(cls, value: str) -> str:
        if not value.startswith("Detects"):
            raise ValueError("should start with 'Detects' and say what the rule detects")
        return value

    @field_validator("level")
    @classmethod
    def _level(cls, value: int | str) -> int | str:
        if isinstance(value, int) and not 1 <= value <= 5:
            raise ValueError("must be 1 to 5 or informational/low/medium/high/critical")
        return value


class FilterSpec(_Strict):
    title: str | None = None
    rules: list[str] = Field(min_length=1)
    detection: dict[str, Any]


class FilterFile(_Strict):
    filter: FilterSpec


@dataclass(frozen=True, slots=True)
class Entity:
    id: str
    type: str
    affiliation: str | None
    names: tuple[str, ...]
    ambiguous: tuple[str, ...]
    context: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Selection:
    name: str
    keywords: tuple[str, ...]
    entities: frozenset[str]
    regex: tuple[str, ...]
    fields: frozenset[str] | None
    min: int


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


def _rule_files(paths: Iterable[Path]) -> tuple[list[Path], list[Problem]]:
    files: list[Path] = []
    problems: list[Problem] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
            if not found:
                problems.append(Problem(str(path), None, "no rule files (*.yaml) in this folder"))
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            problems.append(Problem(str(path), None, "rule path does not exist"))
    return files, problems


def _pydantic_problems(doc: Located, exc: ValidationError, prefix: tuple[str | int, ...] = ()) -> list[Problem]:
    out = []
    for err in exc.errors():
        loc = (*prefix, *err["loc"])
        where = ".".join(str(p) for p in loc) or "(document)"
        message = "unknown field" if err["type"] == "extra_forbidden" else err["msg"].removeprefix("Value error, ")
        out.append(Problem(doc.path, doc.line(loc), f"{where}: {message}"))
    return out


class _Compiler:
    """Turns validated documents into a ``RuleSet``, collecting every cross-reference problem."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.entity_specs: list[tuple[EntitySpec, Located, int]] = []
        self.rule_specs: list[tuple[RuleSpec, Located]] = []
        self.filter_specs: list[tuple[FilterSpec, Located]] = []
        # Detections of documents that failed schema checks elsewhere: still checked, so one run shows all.
        self.orphan_detections: list[tuple[dict[str, Any], Located, str]] = []

    def add_document(self, doc: Located) -> None:
        data = doc.data
        self.problems.extend(doc.problems)
        if not isinstance(data, dict):
            self.problems.append(Problem(doc.path, doc.line(()), "a rule document must be a mapping"))
            return
        try:
            if "entities" in data:
                spec = EntityFile.model_validate(data)
                self.entity_specs.extend((e, doc, i) for i, e in enumerate(spec.entities))
            elif "filter" in data:
                self.filter_specs.append((FilterFile.model_validate(data).filter, doc))
            elif "detection" in data or "id" in data:
                try:
                    self.rule_specs.append((RuleSpec.model_validate(data), doc))
                except ValidationError:
                    if isinstance(data.get("detection"), dict):
                        self.orphan_detections.append((data["detection"], doc, str(data.get("id", "rule"))))
                    raise
            else:
                self.problems.append(
                    Problem(doc.path, doc.line(()), "not a rule (no 'detection'), entity list or filter")
                )
        except ValidationError as exc:
            self.problems.extend(_pydantic_problems(doc, exc))

    def entities(self) -> dict[str, Entity]:
        out: dict[str, Entity] = {}
        alias_owner: dict[str, str] = {}
        for spec, doc, i in self.entity_specs:
            line = doc.line(("entities", i))
            if spec.id in out:
                self.problems.append(Problem(doc.path, line, f"duplicate entity id {spec.id!r}"))
                continue
            for name in (*spec.names, *spec.ambiguous):
                norm = normalize(name).strip()
                if not norm:
                    self.problems.append(Problem(doc.path, line, f"{spec.id}: name {name!r} has no letters"))
                elif alias_owner.get(norm, spec.id) != spec.id:
                    self.problems.append(
                        Problem(doc.path, line, f"{spec.id}: name {name!r} also names entity {alias_owner[norm]!r}")
                    )
                alias_owner.setdefault(norm, spec.id)
            if spec.ambiguous and not spec.context:
                self.problems.append(Problem(doc.path, line, f"{spec.id}: 'ambiguous' names need a 'context'"))
            out[spec.id] = Entity(
                spec.id, spec.type, spec.affiliation, tuple(spec.names), tuple(spec.ambiguous), tuple(spec.context)
            )
        for spec, doc, i in self.entity_specs:
            for ref in spec.context:
                if ref not in out:
                    self.problems.append(
                        Problem(
                            doc.path,
                            doc.line(("entities", i, "context")),
                            f"{spec.id}: context names unknown entity {ref!r}",
                        )
                    )
        return out

    def selections(
        self,
        detection: dict[str, Any],
        doc: Located,
        entities: dict[str, Entity],
        owner: str,
        also_used: Iterable[str] = (),
    ) -> tuple[dict[str, Selection], Node | None]:
        selections: dict[str, Selection] = {}
        condition: Node | None = None
        if "condition" not in detection:
            self.problems.append(Problem(doc.path, doc.line(("detection",)), f"{owner}: detection has no condition"))
        for name, body in detection.items():
            loc: tuple[str | int, ...] = ("detection", name)
            if name == "condition":
                if not isinstance(body, str):
                    self.problems.append(Problem(doc.path, doc.line(loc), f"{owner}: condition must be text"))
                    continue
                try:
                    condition = parse_condition(body)
                except ValueError as exc:
                    self.problems.append(Problem(doc.path, doc.line(loc), f"{owner}: {exc}"))
                continue
            if not str(name).isidentifier():
                self.problems.append(
                    Problem(doc.path, doc.line(loc), f"{owner}: selection name {name!r} must be an identifier")
                )
                continue
            try:
                spec = SelectionSpec.model_validate(body)
            except ValidationError as exc:
                self.problems.extend(_pydantic_problems(doc, exc, loc))
                continue
            selections[name] = self._selection(name, spec, doc, loc, entities, owner)
        if condition is not None:
            used = names(condition)
            for missing in sorted(used - selections.keys()):
                if missing in detection:
                    continue  # the selection itself was invalid and already reported
                self.problems.append(
                    Problem(
                        doc.path,
                        doc.line(("detection", "condition")),
                        f"{owner}: condition names missing selection {missing!r}",
                    )
                )
            for unused in sorted(selections.keys() - used - set(also_used)):
                self.problems.append(
                    Problem(
                        doc.path,
                        doc.line(("detection", unused)),
                        f"{owner}: selection {unused!r} is not used by the condition",
                    )
                )
            if not used - negative_names(condition):
                self.problems.append(
                    Problem(
                        doc.path,
                        doc.line(("detection", "condition")),
                        f"{owner}: condition needs at least one selection that is not negated",
                    )
                )
        return selections, condition

    def _selection(
        self,
        name: str,
        spec: SelectionSpec,
        doc: Located,
        loc: tuple[str | int, ...],
        entities: dict[str, Entity],
        owner: str,
    ) -> Selection:
        refs: set[str] = set()
        for i, ref in enumerate(spec.entities):
            if ref not in entities:
                self.problems.append(
                    Problem(doc.path, doc.line((*loc, "entities", i)), f"{owner}: unknown entity {ref!r}")
                )
            refs.add(ref)
        known_types = {e.type for e in entities.values()}
        known_affiliations = {e.affiliation for e in entities.values()}
        for i, kind in enumerate(spec.entity_types):
            if kind not in known_types:
                self.problems.append(
                    Problem(doc.path, doc.line((*loc, "entity_types", i)), f"{owner}: no entity has type {kind!r}")
                )
        for i, aff in enumerate(spec.affiliations):
            if aff not in known_affiliations:
                self.problems.append(
                    Problem(
                        doc.path, doc.line((*loc, "affiliations", i)), f"{owner}: no entity has affiliation {aff!r}"
                    )
                )
        if spec.entity_types or spec.affiliations:
            for entity in entities.values():
                type_ok = not spec.entity_types or entity.type in spec.entity_types
                aff_ok = not spec.affiliations or entity.affiliation in spec.affiliations
                if type_ok and aff_ok:
                    refs.add(entity.id)
        for i, pattern in enumerate(spec.regex):
            try:
                re2.compile(pattern, _RE2_OPTIONS)
            except re2.error as exc:
                self.problems.append(
                    Problem(doc.path, doc.line((*loc, "regex", i)), f"{owner}: bad regex {pattern!r}: {exc}")
                )
        for i, keyword in enumerate(spec.keywords):
            if not normalize(keyword).strip(" |"):
                self.problems.append(
                    Problem(
                        doc.path,
                        doc.line((*loc, "keywords", i)),
                        f"{owner}: keyword {keyword!r} has no letters or digits",
                    )
                )
        if not (spec.keywords or refs or spec.regex):
            self.problems.append(Problem(doc.path, doc.line(loc), f"{owner}: selection {name!r} is empty"))
        fields = frozenset(spec.fields) if spec.fields is not None else None
        return Selection(name, tuple(spec.keywords), frozenset(refs), tuple(spec.regex), fields, spec.min)

    def rules(self, entities: dict[str, Entity]) -> list[Rule]:
        out: list[Rule] = []
        seen: dict[str, str] = {}
        for spec, doc in self.rule_specs:
            line = doc.line(("id",))
            if spec.id in seen:
                self.problems.append(
                    Problem(doc.path, line, f"duplicate rule id {spec.id!r} (also in {seen[spec.id]})")
                )
                continue
            seen[spec.id] = f"{doc.path}:{line}"
            event_tags = [t.removeprefix("event.") for t in spec.tags if t.startswith("event.")]
            if len(event_tags) != 1:
                self.problems.append(
                    Problem(doc.path, doc.line(("tags",)), f"{spec.id}: needs exactly one tag 'event.<event type>'")
                )
                continue
            whens: list[tuple[int, Node, SeveritySpec]] = []
            for i, mod in enumerate(spec.severity):
                try:
                    whens.append((i, parse_condition(mod.when), mod))
                except ValueError as exc:
                    self.problems.append(Problem(doc.path, doc.line(("severity", i, "when")), f"{spec.id}: {exc}"))
            used_by_severity = set().union(*(names(w) for _, w, _ in whens)) if whens else set()
            used_by_severity |= set(spec.action)
            selections, condition = self.selections(spec.detection, doc, entities, spec.id, used_by_severity)
            modifiers = []
            for i, when, mod in whens:
                for missing in sorted(names(when) - selections.keys()):
                    self.problems.append(
                        Problem(
                            doc.path,
                            doc.line(("severity", i, "when")),
                            f"{spec.id}: severity names missing selection {missing!r}",
                        )
                    )
                modifiers.append(SeverityModifier(when, mod.add, mod.reason))
            for i, name in enumerate(spec.action):
                if name not in selections and name not in spec.detection:
                    self.problems.append(
                        Problem(
                            doc.path, doc.line(("action", i)), f"{spec.id}: action names missing selection {name!r}"
                        )
                    )
            if condition is None:
                continue
            level = spec.level if isinstance(spec.level, int) else LEVELS[spec.level]

            def examples(items: list[ExampleSpec]) -> tuple[Example, ...]:
                return tuple(Example(e.title, e.summary, e.text, e.event_type) for e in items)

            out.append(
                Rule(
                    id=spec.id,
                    title=spec.title,
                    status=spec.status,
                    event_type=event_tags[0],
                    level=level,
                    selections=selections,
                    condition=condition,
                    negative=frozenset(negative_names(condition)),
                    severity=tuple(modifiers),
                    examples_match=examples(spec.examples.match),
                    action=tuple(spec.action),
                    supersedes=tuple(spec.supersedes),
                    examples_no_match=examples(spec.examples.no_match),
                    path=doc.path,
                    line=line,
                )
            )
        ids = {r.id for r in out}
        for rule in out:
            for i, other in enumerate(rule.supersedes):
                if other not in ids:
                    spec_doc = next(d for sp, d in self.rule_specs if sp.id == rule.id)
                    self.problems.append(
                        Problem(
                            spec_doc.path,
                            spec_doc.line(("supersedes", i)),
                            f"{rule.id}: supersedes unknown rule {other!r}",
                        )
                    )
        return out

    def filters(self, entities: dict[str, Entity], rule_ids: set[str]) -> list[Filter]:
        out = []
        for spec, doc in self.filter_specs:
            owner = f"filter {spec.title or doc.path}"
            for i, rid in enumerate(spec.rules):
                if rid != "*" and rid not in rule_ids:
                    self.problems.append(
                        Problem(doc.path, doc.line(("filter", "rules", i)), f"{owner}: unknown rule {rid!r}")
                    )
            shifted = Located(
                doc.data.get("filter", {}), doc.path, {k[1:]: v for k, v in doc.lines.items() if k[:1] == ("filter",)}
            )
            selections, condition = self.selections(spec.detection, shifted, entities, owner)
            if condition is not None:
                out.append(Filter(spec.title or doc.path, frozenset(spec.rules), selections, condition, doc.path))
        return out


def load_rules(paths: Iterable[Path]) -> RuleSet:
    """Load and validate a rule pack; raises ``RuleError`` listing every problem as ``path:line: reason``."""
    files, problems = _rule_files(paths)
    compiler = _Compiler()
    compiler.problems.extend(problems)
    for path in files:
        try:
            docs = load_yaml_documents(path)
        except ConfigError as exc:
            compiler.problems.extend(exc.problems)
            continue
        for doc in docs:
            compiler.add_document(doc)
    entities = compiler.entities()
    for detection, doc, owner in compiler.orphan_detections:
        compiler.selections(detection, doc, entities, owner)
    rules = compiler.rules(entities)
    filters = compiler.filters(entities, {r.id for r in rules})
    if not rules and not compiler.problems:
        compiler.problems.append(Problem(", ".join(str(p) for p in paths), None, "the rule pack has no rules"))
    if compiler.problems:
        raise RuleError(compiler.problems)
    return RuleSet(entities, tuple(rules), tuple(filters), tuple(str(f) for f in files))
