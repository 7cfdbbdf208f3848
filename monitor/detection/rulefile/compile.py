"""Compiling a pack's validated documents into a ``RuleSet``, checking every cross-reference on the way.

Entity ids and names must be unique and contexts must name known entities; rule ids must be unique, each rule
needs exactly one ``event.<type>`` tag, and its severity modifiers, actions and ``supersedes`` must name
selections and rules that exist; filters must name known rules. Every problem is added to the documents'
list; the ``RuleSet`` returned is only meaningful when that list stayed empty.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping

from monitor.config.yamlsrc import Located
from monitor.core.errors import Problem
from monitor.detection.condition import Node, names, negative_names, parse_condition
from monitor.detection.rulefile.model import LEVELS, Entity, Example, Filter, Rule, RuleSet, Selection, SeverityModifier
from monitor.detection.rulefile.schema import Documents, EntitySpec, ExampleSpec, FilterSpec, RuleSpec, problem_at
from monitor.detection.rulefile.selections import DetectionCompiler
from monitor.detection.text import inflections, normalize

__all__ = ["base_towns", "compile_pack", "display_label", "is_latin", "unlabelled_entities"]

_Severity = tuple[int, Node, SeverityModifier]  # (index in the rule's ``severity`` list, parsed ``when``, modifier)


def compile_pack(documents: Documents, files: tuple[str, ...]) -> RuleSet:
    """The pack's entities, rules and filters; problems go to ``documents.problems``."""
    problems = documents.problems
    entities = compile_entities(with_base_forms(_with_aliases(documents, problems)), problems)
    detections = DetectionCompiler(entities, problems)
    for detection, doc, owner in documents.orphan_detections:
        detections.compile(detection, doc, owner)
    rules = _RuleCompiler(detections, problems).compile(documents.rules)
    filters = compile_filters(documents.filters, detections, {r.id for r in rules})
    return RuleSet(entities, tuple(rules), tuple(filters), files)


def _with_aliases(documents: Documents, problems: list[Problem]) -> list[tuple[EntitySpec, Located, int]]:
    """The entity specs with the names of the pack's alias files added; unknown ids are problems."""
    extra: dict[str, dict[str, list[str]]] = {}
    known = {spec.id for spec, _, _ in documents.entities}
    for alias, doc in documents.aliases:
        for kind in ("names", "ambiguous", "context"):
            for entity_id, values in getattr(alias, kind).items():
                if entity_id not in known:
                    problems.append(problem_at(doc, ("aliases", kind, entity_id), f"unknown entity {entity_id!r}"))
                    continue
                if kind != "context":  # a name's ``~`` stands for the suffixes of the file's language
                    values = [form for v in values for form in inflections(v, alias.language)]
                extra.setdefault(entity_id, {}).setdefault(kind, []).extend(values)
    out = []
    for spec, doc, i in documents.entities:
        more = extra.get(spec.id)
        if more:
            update = {kind: [*getattr(spec, kind), *values] for kind, values in more.items()}
            spec = spec.model_copy(update=update)
        out.append((spec, doc, i))
    return out


#: How reports call a base after its name: "Balad air base", "Balad airbase", "Balad base", "Taji airfield".
_BASE_WORDS = ("military base", "air base", "airbase", "airfield", "air field", "base")


def with_base_forms(specs: list[tuple[EntitySpec, Located, int]]) -> list[tuple[EntitySpec, Located, int]]:
    """The specs with every base's other common forms added: a base named "Balad Air Base" or "Camp Taji" is also
    "Balad base", "Balad airbase", "Taji air base"... (Latin names; a form that already names something is left
    to its owner.)"""
    taken = {normalize(n).strip() for spec, _, _ in specs for n in (*spec.names, *spec.ambiguous)}
    out = []
    for spec, doc, i in specs:
        if spec.type != "base":
            out.append((spec, doc, i))
            continue
        forms = []
        for head in sorted({h for n in spec.names if is_latin(n) and (h := _base_head(n))}):
            for word in _BASE_WORDS:
                key = normalize(f"{head} {word}").strip()
                if key not in taken:
                    taken.add(key)
                    forms.append(f"{head} {word}")
        out.append((spec.model_copy(update={"names": [*spec.names, *forms]}) if forms else spec, doc, i))
    return out


def base_towns(entities: Mapping[str, Entity]) -> dict[str, tuple[str, ...]]:
    """The bases each town stands for, named like it: rockets on "Balad" fell on Balad Air Base. (Not a town the
    base is recorded to lie in: "Erbil" names the city, Erbil air base is one place in it.)"""
    heads: dict[str, set[str]] = {}
    for entity in entities.values():
        if entity.type == "base":
            for name in entity.names:
                if is_latin(name) and (head := _base_head(name)):
                    heads.setdefault(normalize(head).strip(), set()).add(entity.id)
    out: dict[str, tuple[str, ...]] = {}
    for entity in entities.values():
        if entity.type != "place":
            continue
        bases = {
            b for n in entity.names for b in heads.get(normalize(n).strip(), ()) if entity.id not in entities[b].within
        }
        if bases:
            out[entity.id] = tuple(sorted(bases))
    return out


def _base_head(name: str) -> str | None:
    """What names the base itself in ``name`` ("Balad" in "Balad Air Base", "Taji" in "Camp Taji"), if it is
    written with a base word."""
    low = name.lower()
    if low.startswith("camp ") and len(name) > 8:
        return name[5:]
    for word in (*_BASE_WORDS, "camp"):
        if low.endswith(" " + word) and len(name) - len(word) > 3:
            head = name[: -len(word) - 1]
            return head.removesuffix(" military").removesuffix(" air")  # "K1 military airbase": "K1"
    return None


def compile_entities(specs: list[tuple[EntitySpec, Located, int]], problems: list[Problem]) -> dict[str, Entity]:
    out: dict[str, Entity] = {}
    # normalised name -> the entity it names, per kind: a name may be ambiguous for one entity and plain for
    # another (Sorani "سلێمانی" is the general in his context, else the city).
    alias_owner: dict[tuple[str, bool], str] = {}
    for spec, doc, i in specs:
        line = doc.line(("entities", i))
        if spec.id in out:
            problems.append(Problem(doc.path, line, f"duplicate entity id {spec.id!r}"))
            continue
        for name, ambiguous in (*((n, False) for n in spec.names), *((n, True) for n in spec.ambiguous)):
            norm = normalize(name).strip()
            key = (norm, ambiguous)
            if not norm:
                problems.append(Problem(doc.path, line, f"{spec.id}: name {name!r} has no letters"))
            elif alias_owner.get(key, spec.id) != spec.id:
                problems.append(
                    Problem(doc.path, line, f"{spec.id}: name {name!r} also names entity {alias_owner[key]!r}")
                )
            alias_owner.setdefault(key, spec.id)
        if spec.ambiguous and not spec.context:
            problems.append(Problem(doc.path, line, f"{spec.id}: 'ambiguous' names need a 'context'"))
        out[spec.id] = Entity(
            spec.id,
            spec.type,
            spec.affiliation,
            tuple(spec.names),
            tuple(spec.ambiguous),
            tuple(spec.context),
            tuple(spec.within),
            display_label(spec),
        )
    for spec, doc, i in specs:
        for kind in ("context", "within"):
            for ref in getattr(spec, kind):
                if ref not in out:
                    problems.append(
                        problem_at(doc, ("entities", i, kind), f"{spec.id}: {kind} names unknown entity {ref!r}")
                    )
    return out


def is_latin(text: str) -> bool:
    """Whether every letter of ``text`` is a Latin one (accents allowed), and it has some."""
    letters = [char for char in text if char.isalpha()]
    return bool(letters) and all(unicodedata.name(char, "").startswith("LATIN") for char in letters)


def display_label(spec: EntitySpec) -> str | None:
    """The English name alerts show for the entity: its ``label``, else its first name if that is in Latin letters
    (an entity named only in Arabic script has none unless it is given one)."""
    if spec.label is not None:
        return spec.label if is_latin(spec.label) else None
    return spec.names[0] if is_latin(spec.names[0]) else None


def unlabelled_entities(documents: Documents) -> list[Problem]:
    """A problem at ``path:line`` for each entity without a Latin display label (``display_label``): the shipped
    pack is tested to have none, so an alert can name every entity in English."""
    return [
        Problem(
            doc.path, doc.line(("entities", i)), f"{spec.id}: no 'label:' in Latin letters, nor a first name in them"
        )
        for spec, doc, i in documents.entities
        if display_label(spec) is None
    ]


def compile_filters(
    specs: list[tuple[FilterSpec, Located]], detections: DetectionCompiler, rule_ids: set[str]
) -> list[Filter]:
    out = []
    for spec, doc in specs:
        owner = f"filter {spec.title or doc.path}"
        for i, rid in enumerate(spec.rules):
            if rid != "*" and rid not in rule_ids:
                detections.problems.append(problem_at(doc, ("filter", "rules", i), f"{owner}: unknown rule {rid!r}"))
        # The filter's detection, with lines relative to the ``filter:`` mapping, like a rule's.
        shifted = Located(
            doc.data.get("filter", {}), doc.path, {k[1:]: v for k, v in doc.lines.items() if k[:1] == ("filter",)}
        )
        selections, condition = detections.compile(spec.detection, shifted, owner)
        if condition is not None:
            out.append(Filter(spec.title or doc.path, frozenset(spec.rules), selections, condition, doc.path))
    return out


class _RuleCompiler:
    """Compiles the event rules, in file order; the first of two rules with one id wins."""

    def __init__(self, detections: DetectionCompiler, problems: list[Problem]) -> None:
        self.detections = detections
        self.problems = problems

    def compile(self, specs: list[tuple[RuleSpec, Located]]) -> list[Rule]:
        out: list[Rule] = []
        seen: dict[str, str] = {}  # rule id -> "path:line" of its first definition
        for spec, doc in specs:
            line = doc.line(("id",))
            if spec.id in seen:
                self._report(doc, ("id",), f"duplicate rule id {spec.id!r} (also in {seen[spec.id]})")
                continue
            seen[spec.id] = f"{doc.path}:{line}"
            rule = self._rule(spec, doc)
            if rule is not None:
                out.append(rule)
        self._check_supersedes(out, specs)
        return out

    def _report(self, doc: Located, loc: tuple[str | int, ...], message: str) -> None:
        self.problems.append(problem_at(doc, loc, message))

    def _rule(self, spec: RuleSpec, doc: Located) -> Rule | None:
        """One rule, or ``None`` when it cannot be built (its problems are reported)."""
        event_type = self._event_type(spec, doc)
        if event_type is None:
            return None
        severity = self._parse_severity(spec, doc)
        used_outside_condition = set().union(*(names(when) for _, when, _ in severity)) if severity else set()
        used_outside_condition |= set(spec.action)
        selections, condition = self.detections.compile(spec.detection, doc, spec.id, used_outside_condition)
        self._check_severity_names(spec, doc, severity, selections)
        self._check_action_names(spec, doc, selections)
        if condition is None:
            return None
        return _build_rule(spec, doc, event_type, selections, condition, tuple(m for _, _, m in severity))

    def _event_type(self, spec: RuleSpec, doc: Located) -> str | None:
        event_tags = [t.removeprefix("event.") for t in spec.tags if t.startswith("event.")]
        if len(event_tags) != 1:
            self._report(doc, ("tags",), f"{spec.id}: needs exactly one tag 'event.<event type>'")
            return None
        return event_tags[0]

    def _parse_severity(self, spec: RuleSpec, doc: Located) -> list[_Severity]:
        """The severity modifiers whose ``when`` parses; the others are reported."""
        out: list[_Severity] = []
        for i, mod in enumerate(spec.severity):
            try:
                out.append((i, when := parse_condition(mod.when), SeverityModifier(when, mod.add, mod.reason)))
            except ValueError as exc:
                self._report(doc, ("severity", i, "when"), f"{spec.id}: {exc}")
        return out

    def _check_severity_names(
        self, spec: RuleSpec, doc: Located, severity: list[_Severity], selections: dict[str, Selection]
    ) -> None:
        for i, when, _ in severity:
            for missing in sorted(names(when) - selections.keys()):
                self._report(doc, ("severity", i, "when"), f"{spec.id}: severity names missing selection {missing!r}")

    def _check_action_names(self, spec: RuleSpec, doc: Located, selections: dict[str, Selection]) -> None:
        for i, name in enumerate(spec.action):
            if name not in selections and name not in spec.detection:
                self._report(doc, ("action", i), f"{spec.id}: action names missing selection {name!r}")

    def _check_supersedes(self, rules: list[Rule], specs: list[tuple[RuleSpec, Located]]) -> None:
        ids = {r.id for r in rules}
        for rule in rules:
            for i, other in enumerate(rule.supersedes):
                if other not in ids:
                    doc = next(d for sp, d in specs if sp.id == rule.id)
                    self._report(doc, ("supersedes", i), f"{rule.id}: supersedes unknown rule {other!r}")


def _build_rule(
    spec: RuleSpec,
    doc: Located,
    event_type: str,
    selections: dict[str, Selection],
    condition: Node,
    severity: tuple[SeverityModifier, ...],
) -> Rule:
    return Rule(
        id=spec.id,
        title=spec.title,
        status=spec.status,
        event_type=event_type,
        level=spec.level if isinstance(spec.level, int) else LEVELS[spec.level],
        selections=selections,
        condition=condition,
        negative=frozenset(negative_names(condition)),
        severity=severity,
        examples_match=_examples(spec.examples.match),
        action=tuple(spec.action),
        supersedes=tuple(spec.supersedes),
        examples_no_match=_examples(spec.examples.no_match),
        path=doc.path,
        line=doc.line(("id",)),
        direction=spec.direction,
        languages=frozenset(spec.languages) if spec.languages is not None else None,
    )


def _examples(items: list[ExampleSpec]) -> tuple[Example, ...]:
    return tuple(Example(e.title, e.summary, e.text, e.event_type) for e in items)
