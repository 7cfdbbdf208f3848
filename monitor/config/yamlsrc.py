"""YAML loading that keeps line numbers, rejects duplicate keys and substitutes ``${VAR}``.

The file is composed into a node tree first, so every problem (each duplicate key, each undefined variable)
is found in one pass with its line, and scalars are then built by ruamel's own safe constructor.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.constructor import SafeConstructor
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from monitor.core.errors import ConfigError, Problem

__all__ = ["Located", "load_yaml", "load_yaml_documents"]

Loc = tuple[str | int | float, ...]  # float: YAML allows float mapping keys
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclass
class Located:
    """Plain data from a YAML document plus the line (1-based) of every key and item in it."""

    data: Any
    path: str
    lines: dict[Loc, int] = field(default_factory=dict)
    #: Problems found while building (duplicate keys, unset variables); the caller adds its own and raises.
    problems: list[Problem] = field(default_factory=list)

    def line(self, loc: Loc) -> int | None:
        """The line of the deepest known prefix of ``loc``; unknown parts (e.g. union tags) are skipped."""
        best: int | None = self.lines.get(())
        known: Loc = ()
        for part in loc:
            candidate = (*known, part)
            if candidate in self.lines:
                known = candidate
                best = self.lines[candidate]
        return best


class _Builder:
    def __init__(self, path: str, env: Mapping[str, str] | None, scalars: SafeConstructor) -> None:
        self.path = path
        self.env = env
        self.problems: list[Problem] = []
        self.lines: dict[Loc, int] = {}
        self._scalars = scalars

    def build(self, node: Node, loc: Loc) -> Any:
        self.lines.setdefault(loc, node.start_mark.line + 1)
        if isinstance(node, MappingNode):
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    self.problems.append(
                        Problem(self.path, key_node.start_mark.line + 1, "merge keys (<<) are not supported")
                    )
                    continue
                key = self._scalar(key_node) if isinstance(key_node, ScalarNode) else None
                if not isinstance(key, str | int | float | bool) or key is None:
                    self.problems.append(
                        Problem(self.path, key_node.start_mark.line + 1, "mapping keys must be plain scalars")
                    )
                    continue
                if key in out:
                    first = self.lines.get((*loc, key))
                    self.problems.append(
                        Problem(
                            self.path,
                            key_node.start_mark.line + 1,
                            f"duplicate key {key!r} (first defined on line {first})",
                        )
                    )
                    continue
                self.lines[(*loc, key)] = key_node.start_mark.line + 1
                out[key] = self.build(value_node, (*loc, key))
            return out
        if isinstance(node, SequenceNode):
            return [self.build(item, (*loc, i)) for i, item in enumerate(node.value)]
        value = self._scalar(node)
        if isinstance(value, str) and self.env is not None and "${" in value:
            value = self._substitute(value, node.start_mark.line + 1)
        return value

    def _scalar(self, node: Node) -> Any:
        if node.tag == "tag:yaml.org,2002:timestamp":
            return str(node.value)  # keep dates as text; the schema decides how to read them
        try:
            return self._scalars.construct_object(node, deep=True)
        except YAMLError as exc:
            self.problems.append(Problem(self.path, node.start_mark.line + 1, f"bad value: {exc}"))
            return None

    def _substitute(self, value: str, line: int) -> str:
        assert self.env is not None
        env = self.env

        def replace(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            if default is not None and not env.get(name):
                return default  # as in the shell, ":-" also replaces an empty value
            if name in env:
                return env[name]
            self.problems.append(Problem(self.path, line, f"environment variable {name} is not set"))
            return ""

        return _VAR.sub(replace, value)


def _compose(yaml: YAML, text: str, path: str) -> list[Node]:
    try:
        return [n for n in yaml.compose_all(text) if n is not None]
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        raise ConfigError([Problem(path, line, f"invalid YAML: {exc.problem or exc}")]) from exc
    except YAMLError as exc:
        raise ConfigError([Problem(path, None, f"invalid YAML: {exc}")]) from exc


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError([Problem(str(path), None, "file not found")]) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([Problem(str(path), None, f"cannot read: {exc}")]) from exc


def load_yaml_documents(path: Path, *, env: Mapping[str, str] | None = None) -> list[Located]:
    """Every document of a YAML file. ``env`` enables ``${VAR}`` / ``${VAR:-default}`` substitution.

    Syntax errors raise ``ConfigError`` at once; softer problems are collected in each ``Located.problems``.
    """
    shown = str(path)
    yaml = YAML(typ="safe", pure=True)
    builder = _Builder(shown, env, yaml.constructor)
    docs: list[Located] = []
    for node in _compose(yaml, _read(path), shown):
        builder.lines, builder.problems = {}, []
        data = builder.build(node, ())
        docs.append(Located(data, shown, builder.lines, builder.problems))
    return docs


def load_yaml(path: Path, *, env: Mapping[str, str] | None = None) -> Located:
    """A YAML file holding one document (an empty file is an empty mapping)."""
    docs = load_yaml_documents(path, env=env)
    if len(docs) > 1:
        raise ConfigError([Problem(str(path), None, "expected one YAML document, found several")])
    return docs[0] if docs else Located({}, str(path), {(): 1})
