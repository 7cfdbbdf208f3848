"""YAML loading that keeps line numbers, rejects duplicate keys and substitutes ``${VAR}``.

The file is composed into a node tree first, so every problem (each duplicate key, each undefined variable)
is found in one pass with its line, and scalars are then built by ruamel's own safe constructor.

Aliases are bounded while the tree is composed, before anything is built from it: an alias repeats its anchor's
whole subtree, so ten levels of ten aliases are ten billion nodes in a file of a few hundred bytes (a "billion
laughs"), and an alias inside its own anchor (``a: &a [*a]``) is infinite. A document may add at most
``MAX_ALIAS_NODES`` nodes through aliases and nest at most ``MAX_DEPTH`` levels deep (counting what its aliases
expand to); an alias of the node that contains it is refused outright. Each is reported at the alias's line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.composer import Composer, ComposerError
from ruamel.yaml.constructor import SafeConstructor
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import AliasEvent
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from monitor.core.errors import ConfigError, Problem

__all__ = ["MAX_ALIAS_NODES", "MAX_DEPTH", "Located", "load_yaml", "load_yaml_documents"]

#: Nodes a document may add through aliases. The largest shipped document (entities.yaml) has about 1,500 nodes
#: and no alias; this lets a list of a thousand entries be reused ten times, and bounds what a hostile file can
#: make the loader build to a few megabytes and a fraction of a second.
MAX_ALIAS_NODES = 10_000
#: Levels of nesting, aliases expanded. The shipped files nest six deep; building and validating are recursive,
#: and this keeps them far from Python's recursion limit.
MAX_DEPTH = 64

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
        except MarkedYAMLError as exc:  # its text would quote the line: ``problem`` is the reason alone
            reason = f"bad value: {exc.problem}"
        except (YAMLError, ValueError, KeyError, TypeError):  # an explicit tag with a value it cannot read
            reason = f"bad value for {str(node.tag).replace('tag:yaml.org,2002:', '!!')}"
        self.problems.append(Problem(self.path, node.start_mark.line + 1, reason))
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


class _LimitError(ComposerError):
    """A document over one of the limits; reported without the "invalid YAML" of a syntax error."""


class _BoundedComposer(Composer):
    """ruamel's composer, counting as it goes what the document's aliases expand to (see the module's docstring).

    Per document: ``_nodes`` counts the nodes of the expanded tree composed so far (an alias counts its anchor's
    expanded size), ``_aliased`` the part of them aliases added, and ``_peak`` the deepest level reached, aliases
    expanded. An anchored node's size and height are kept once it is complete; an alias to an anchor that is not
    complete yet is inside it.
    """

    def compose_document(self) -> Any:
        self._nodes = self._aliased = self._peak = 0
        self._expanded: dict[int, tuple[int, int]] = {}  # id(anchored node) -> (nodes, levels) when expanded
        return super().compose_document()

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.parser.peek_event()
        if isinstance(event, AliasEvent):
            self._count_alias(event)
            return super().compose_node(parent, index)
        if self.depth >= MAX_DEPTH:
            raise _LimitError(None, None, f"nested more than {MAX_DEPTH} levels deep", event.start_mark)
        first, peak = self._nodes, self._peak
        self._nodes += 1
        self._peak = self.depth + 1
        node = super().compose_node(parent, index)
        if event.anchor is not None:
            self._expanded[id(node)] = (self._nodes - first, self._peak - self.depth)
        self._peak = max(peak, self._peak)
        return node

    def _count_alias(self, event: AliasEvent) -> None:
        anchored = self.anchors.get(event.anchor)
        if anchored is None:
            return  # ruamel reports the undefined alias
        if id(anchored) not in self._expanded:
            raise _LimitError(
                None, None, f"alias *{event.anchor} is inside its own anchor (recursive)", event.start_mark
            )
        nodes, levels = self._expanded[id(anchored)]
        self._nodes += nodes
        self._aliased += nodes
        self._peak = max(self._peak, self.depth + levels)
        if self._aliased > MAX_ALIAS_NODES:
            reason = f"aliases expand to more than {MAX_ALIAS_NODES} nodes (an alias bomb?); write the values out"
            raise _LimitError(None, None, reason, event.start_mark)
        if self._peak > MAX_DEPTH:
            raise _LimitError(None, None, f"nested more than {MAX_DEPTH} levels deep with aliases", event.start_mark)


def _compose(yaml: YAML, text: str, path: str) -> list[Node]:
    try:
        return [n for n in yaml.compose_all(text) if n is not None]
    except _LimitError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark is not None else None
        raise ConfigError([Problem(path, line, str(exc.problem))]) from exc
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
    yaml.Composer = _BoundedComposer
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
