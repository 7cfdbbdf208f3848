"""Compiling one ``detection`` block (of a rule or a filter): its named selections and the condition over them.

Checks each selection against the pack's entities (unknown ids, types and affiliations), its regexes against
RE2 and its keywords against normalisation, and the condition against the selections (missing, unused,
only negated), adding every problem found to the shared list.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import re2
from pydantic import ValidationError

from monitor.config.yamlsrc import Located
from monitor.core.errors import Problem
from monitor.detection.condition import Node, names, negative_names, parse_condition
from monitor.detection.rulefile.model import Entity, Selection
from monitor.detection.rulefile.schema import SelectionSpec, problem_at, pydantic_problems
from monitor.detection.text import normalize

__all__ = ["DetectionCompiler"]

_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False

Loc = tuple[str | int, ...]


class DetectionCompiler:
    """Turns ``detection`` mappings into selections and a condition, reporting every problem into ``problems``."""

    def __init__(self, entities: dict[str, Entity], problems: list[Problem]) -> None:
        self.entities = entities
        self.problems = problems
        self._types = {e.type for e in entities.values()}
        self._affiliations = {e.affiliation for e in entities.values()}

    def compile(
        self, detection: dict[str, Any], doc: Located, owner: str, also_used: Iterable[str] = ()
    ) -> tuple[dict[str, Selection], Node | None]:
        """The selections that compiled and the condition (``None`` when missing or malformed).

        ``also_used``: selections used outside the condition (severity modifiers, actions), so not unused.
        """
        selections: dict[str, Selection] = {}
        condition: Node | None = None
        if "condition" not in detection:
            self._report(doc, ("detection",), f"{owner}: detection has no condition")
        for name, body in detection.items():
            loc: Loc = ("detection", name)
            if name == "condition":
                condition = self._condition(body, doc, loc, owner)
            elif (selection := self._named_selection(name, body, doc, loc, owner)) is not None:
                selections[name] = selection
        if condition is not None:
            self._check_condition_names(condition, selections, detection, doc, owner, set(also_used))
        return selections, condition

    def _report(self, doc: Located, loc: Loc, message: str) -> None:
        self.problems.append(problem_at(doc, loc, message))

    def _condition(self, body: Any, doc: Located, loc: Loc, owner: str) -> Node | None:
        if not isinstance(body, str):
            self._report(doc, loc, f"{owner}: condition must be text")
            return None
        try:
            return parse_condition(body)
        except ValueError as exc:
            self._report(doc, loc, f"{owner}: {exc}")
            return None

    def _named_selection(self, name: str, body: Any, doc: Located, loc: Loc, owner: str) -> Selection | None:
        if not str(name).isidentifier():
            self._report(doc, loc, f"{owner}: selection name {name!r} must be an identifier")
            return None
        try:
            spec = SelectionSpec.model_validate(body)
        except ValidationError as exc:
            self.problems.extend(pydantic_problems(doc, exc, loc))
            return None
        return self._selection(name, spec, doc, loc, owner)

    def _check_condition_names(
        self,
        condition: Node,
        selections: dict[str, Selection],
        detection: dict[str, Any],
        doc: Located,
        owner: str,
        also_used: set[str],
    ) -> None:
        used = names(condition)
        for missing in sorted(used - selections.keys()):
            if missing in detection:
                continue  # the selection itself was invalid and already reported
            self._report(doc, ("detection", "condition"), f"{owner}: condition names missing selection {missing!r}")
        for unused in sorted(selections.keys() - used - also_used):
            self._report(doc, ("detection", unused), f"{owner}: selection {unused!r} is not used by the condition")
        if not used - negative_names(condition):
            self._report(
                doc, ("detection", "condition"), f"{owner}: condition needs at least one selection that is not negated"
            )

    def _selection(self, name: str, spec: SelectionSpec, doc: Located, loc: Loc, owner: str) -> Selection:
        refs = self._entity_refs(spec, doc, loc, owner)
        self._check_patterns(spec, doc, loc, owner)
        if not (spec.keywords or refs or spec.regex):
            self._report(doc, loc, f"{owner}: selection {name!r} is empty")
        fields = frozenset(spec.fields) if spec.fields is not None else None
        languages = frozenset(spec.languages) if spec.languages is not None else None
        return Selection(name, tuple(spec.keywords), frozenset(refs), tuple(spec.regex), fields, spec.min, languages)

    def _entity_refs(self, spec: SelectionSpec, doc: Located, loc: Loc, owner: str) -> set[str]:
        """The entities a selection names, directly or through ``entity_types`` and ``affiliations``."""
        refs: set[str] = set()
        for i, ref in enumerate(spec.entities):
            if ref not in self.entities:
                self._report(doc, (*loc, "entities", i), f"{owner}: unknown entity {ref!r}")
            refs.add(ref)
        for i, kind in enumerate(spec.entity_types):
            if kind not in self._types:
                self._report(doc, (*loc, "entity_types", i), f"{owner}: no entity has type {kind!r}")
        for i, aff in enumerate(spec.affiliations):
            if aff not in self._affiliations:
                self._report(doc, (*loc, "affiliations", i), f"{owner}: no entity has affiliation {aff!r}")
        if spec.entity_types or spec.affiliations:
            for entity in self.entities.values():
                type_ok = not spec.entity_types or entity.type in spec.entity_types
                aff_ok = not spec.affiliations or entity.affiliation in spec.affiliations
                if type_ok and aff_ok:
                    refs.add(entity.id)
        return refs

    def _check_patterns(self, spec: SelectionSpec, doc: Located, loc: Loc, owner: str) -> None:
        """Regexes must compile under RE2; keywords must keep a letter or digit once normalised."""
        for i, pattern in enumerate(spec.regex):
            try:
                re2.compile(pattern, _RE2_OPTIONS)
            except re2.error as exc:
                self._report(doc, (*loc, "regex", i), f"{owner}: bad regex {pattern!r}: {exc}")
        for i, keyword in enumerate(spec.keywords):
            if not normalize(keyword).strip(" |"):
                self._report(doc, (*loc, "keywords", i), f"{owner}: keyword {keyword!r} has no letters or digits")
