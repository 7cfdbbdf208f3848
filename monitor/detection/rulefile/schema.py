"""What each kind of rule-pack document must look like, and sorting a pack's documents by kind.

Every schema violation becomes a ``Problem`` at the ``path:line`` of the offending key; checks that need the
whole pack (unknown entities, duplicate ids, unused selections) are ``compile``'s.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from monitor.config.yamlsrc import Located
from monitor.core.errors import Problem

__all__ = [
    "LANGUAGE_CODES",
    "AliasFile",
    "AliasSpec",
    "Documents",
    "EntityFile",
    "EntitySpec",
    "ExampleSpec",
    "ExamplesSpec",
    "FilterFile",
    "FilterSpec",
    "RuleSpec",
    "SelectionSpec",
    "SeveritySpec",
    "problem_at",
    "pydantic_problems",
]

_ID = r"^[a-z0-9][a-z0-9_.-]*$"
Field_ = Literal["title", "summary", "content"]
#: Languages a rule or selection may be restricted to (``detection.language``).
Language = Literal["en", "ar", "fa", "ckb"]
LANGUAGE_CODES = ("en", "ar", "fa", "ckb")


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
    #: The places this one lies in (a base in its province or city): reports naming either may be about one
    #: happening, so events compare them as shared (``monitor.events.joining.salient_entities``).
    within: list[str] = Field(default_factory=list)
    #: The English name alerts show for it ("Ain al-Asad air base"); without one, its first name when that is
    #: written in Latin letters (``compile.display_label``).
    label: str | None = None

    @field_validator("label")
    @classmethod
    def _label(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("a label must not be empty")
        return " ".join(value.split()) if value is not None else None


class EntityFile(_Strict):
    entities: list[EntitySpec]


class AliasSpec(_Strict):
    """More names for entities defined elsewhere, in one language: the gazetteer in a language of its own file,
    so that the entities keep one id across languages."""

    language: Language
    names: dict[str, list[str]] = Field(default_factory=dict)
    ambiguous: dict[str, list[str]] = Field(default_factory=dict)
    context: dict[str, list[str]] = Field(default_factory=dict)


class AliasFile(_Strict):
    aliases: AliasSpec


class SelectionSpec(_Strict):
    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)

    keywords: list[str] = Field(default_factory=list)
    entities: list[str] = Field(default_factory=list)
    entity_types: list[str] = Field(default_factory=list)
    affiliations: list[str] = Field(default_factory=list)
    regex: list[str] = Field(default_factory=list)
    fields: list[Field_] | None = None
    min: int = Field(1, ge=1, le=20, description="distinct phrases needed")
    #: Hits count only in articles in these languages.
    languages: list[Language] | None = Field(None, min_length=1)


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
    #: Who acts on whom in the events this rule detects: ``us_acts`` (a US strike) or ``us_targeted`` (an attack
    #: on US forces, its embassy or people). When rules of both directions fire, the headline's own direction
    #: (``monitor.detection.roles``) picks between them, whatever verb each rule matched.
    direction: Literal["us_acts", "us_targeted"] | None = None
    #: The rule fires only on articles in these languages (``detection.language`` tells an article's).
    languages: list[Language] | None = Field(None, min_length=1)
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


def problem_at(doc: Located, loc: tuple[str | int, ...], message: str) -> Problem:
    """A problem at the line of ``loc`` (or of its deepest known prefix) in ``doc``."""
    return Problem(doc.path, doc.line(loc), message)


def pydantic_problems(doc: Located, exc: ValidationError, prefix: tuple[str | int, ...] = ()) -> list[Problem]:
    out = []
    for err in exc.errors():
        loc = (*prefix, *err["loc"])
        where = ".".join(str(p) for p in loc) or "(document)"
        message = "unknown field" if err["type"] == "extra_forbidden" else err["msg"].removeprefix("Value error, ")
        out.append(Problem(doc.path, doc.line(loc), f"{where}: {message}"))
    return out


@dataclass
class Documents:
    """A pack's documents that passed their schema, by kind, and every problem found so far."""

    problems: list[Problem] = field(default_factory=list)
    entities: list[tuple[EntitySpec, Located, int]] = field(default_factory=list)  # (spec, document, index)
    aliases: list[tuple[AliasSpec, Located]] = field(default_factory=list)
    rules: list[tuple[RuleSpec, Located]] = field(default_factory=list)
    filters: list[tuple[FilterSpec, Located]] = field(default_factory=list)
    #: Detections of rules that failed their schema: still compiled, so one run shows every problem.
    orphan_detections: list[tuple[dict[str, Any], Located, str]] = field(default_factory=list)

    def add(self, doc: Located) -> None:
        """Validate one YAML document against the schema of its kind and file it, or record why not."""
        data = doc.data
        self.problems.extend(doc.problems)
        if not isinstance(data, dict):
            self.problems.append(problem_at(doc, (), "a rule document must be a mapping"))
            return
        try:
            if "entities" in data:
                spec = EntityFile.model_validate(data)
                self.entities.extend((e, doc, i) for i, e in enumerate(spec.entities))
            elif "aliases" in data:
                self.aliases.append((AliasFile.model_validate(data).aliases, doc))
            elif "filter" in data:
                self.filters.append((FilterFile.model_validate(data).filter, doc))
            elif "detection" in data or "id" in data:
                self._add_rule(doc, data)
            else:
                self.problems.append(problem_at(doc, (), "not a rule (no 'detection'), entity list or filter"))
        except ValidationError as exc:
            self.problems.extend(pydantic_problems(doc, exc))

    def _add_rule(self, doc: Located, data: dict[str, Any]) -> None:
        try:
            self.rules.append((RuleSpec.model_validate(data), doc))
        except ValidationError:
            if isinstance(data.get("detection"), dict):
                self.orphan_detections.append((data["detection"], doc, str(data.get("id", "rule"))))
            raise
