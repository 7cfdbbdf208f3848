"""Rule and entity files: the rule pack's format, loading and validation.

A rule pack is a set of YAML files (folders are read recursively, ``*.yaml``/``*.yml`` in name order). Each YAML
document is one of:

* an entity gazetteer — a mapping with ``entities:``, a list of entities with their aliases;
* an event rule — Sigma-style: ``id``, ``title``, ``status``, ``description``, ``references``, ``tags``,
  ``level``, ``detection`` (named selections and a ``condition``), ``severity`` modifiers,
  ``falsepositives`` and ``examples``;
* a site-local filter — ``filter:`` with ``rules`` (ids, or ``*``), its own selections and a ``condition``
  that, when it holds, suppresses those rules, so a site can tune the pack without forking it.

Every problem in every file is collected with its ``path:line`` before loading gives up.

This package's public surface is re-exported here; its modules, each owning one step:

* ``model`` — the compiled pack (``RuleSet``, ``Rule``, ``Entity``, ``Filter``, ``Selection``, ...);
* ``schema`` — what each kind of document must look like, and sorting documents by kind;
* ``selections`` — compiling one ``detection`` block: named selections and the condition over them;
* ``compile`` — cross-reference checks, and building the ``RuleSet`` from the validated documents;
* ``load`` — ``load_rules``: finding the files, reading them, and raising one ``RuleError`` for every problem.
"""

from typing import TYPE_CHECKING, Any

from monitor.detection.rulefile.model import (
    ENTITY_TYPES,
    FIELDS,
    Entity,
    Example,
    Filter,
    Rule,
    RuleSet,
    Selection,
    SeverityModifier,
)

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

if TYPE_CHECKING:
    from monitor.detection.rulefile.load import load_rules


def __getattr__(name: str) -> Any:
    # ``load_rules`` is imported on first use: the matcher needs only the model, and a compiled pack read from
    # the cache needs no YAML reader or compiler (``packcache``).
    if name == "load_rules":
        from monitor.detection.rulefile.load import load_rules

        return load_rules
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
