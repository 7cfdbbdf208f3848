"""Loading a rule pack from disk: find its files, read their YAML documents, validate and compile them.

Folders are read recursively, ``*.yaml``/``*.yml`` in name order. Every problem in every file is collected
with its ``path:line`` before loading gives up with one ``RuleError``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from monitor.core.errors import ConfigError, Problem, RuleError
from monitor.detection.rulefile.model import RuleSet

__all__ = ["load_rules", "rule_files"]


def load_rules(paths: Iterable[Path]) -> RuleSet:
    """Load and validate a rule pack; raises ``RuleError`` listing every problem as ``path:line: reason``."""
    # The YAML reader and the compiler are imported here: a command that finds the pack compiled in its cache
    # (``packcache``) needs only ``rule_files``, and starts without them.
    from monitor.config.yamlsrc import load_yaml_documents
    from monitor.detection.rulefile.compile import compile_pack
    from monitor.detection.rulefile.schema import Documents

    files, problems = rule_files(paths)
    documents = Documents(problems)
    for path in files:
        try:
            docs = load_yaml_documents(path)
        except ConfigError as exc:
            documents.problems.extend(exc.problems)
            continue
        for doc in docs:
            documents.add(doc)
    ruleset = compile_pack(documents, tuple(str(f) for f in files))
    if not ruleset.rules and not documents.problems:
        documents.problems.append(Problem(", ".join(str(p) for p in paths), None, "the rule pack has no rules"))
    if documents.problems:
        raise RuleError(documents.problems)
    return ruleset


def rule_files(paths: Iterable[Path]) -> tuple[list[Path], list[Problem]]:
    """The rule files under ``paths`` in load order, and the paths that name none."""
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
