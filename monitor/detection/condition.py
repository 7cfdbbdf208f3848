"""The condition language of rule files: selection names joined by ``and``/``or``/``not`` and parentheses,
plus proximity functions.

* ``near(a, b, n)`` — a hit of ``a`` and a hit of ``b`` in the same field with at most ``n`` words between them
  (``n`` defaults to 8);
* ``before(a, b, n)`` — like ``near`` but ``a`` must come first ("after ... killing" marks a killing as the
  cause of another story; "killed after ..." does not);
* ``sentence(a, b, ...)`` — hits of every named selection inside one sentence;
* ``title(x)`` — ``x`` holds on the title alone; ``x`` is a selection or any condition
  (``title(near(a, b, 3))``);
* ``lead(x)`` — ``x`` holds on the lead alone: the title, the summary and the first 120 words of the content
  (what a story is about, as opposed to background further down).

Conditions are parsed with Python's own expression grammar (``ast``) into a small tree; nothing is evaluated as
Python. The tree is evaluated against a ``Hits`` view supplied by the matcher.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "All",
    "AnyOf",
    "Hits",
    "Name",
    "Near",
    "Node",
    "Not",
    "Sentence",
    "Title",
    "evaluate",
    "names",
    "negative_names",
    "parse_condition",
    "presence_expression",
]

DEFAULT_NEAR = 8


@dataclass(frozen=True, slots=True)
class Name:
    name: str


@dataclass(frozen=True, slots=True)
class All:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class AnyOf:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not:
    item: Node


@dataclass(frozen=True, slots=True)
class Near:
    left: str
    right: str
    words: int


@dataclass(frozen=True, slots=True)
class Before:
    left: str
    right: str
    words: int


@dataclass(frozen=True, slots=True)
class Sentence:
    names: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Title:
    item: Node


@dataclass(frozen=True, slots=True)
class Lead:
    item: Node


Node = Name | All | AnyOf | Not | Near | Before | Sentence | Title | Lead


class Hits(Protocol):
    """What evaluation needs from the matcher for one rule and one article."""

    def has(self, name: str) -> bool: ...

    def near(self, left: str, right: str, words: int, *, ordered: bool = False) -> bool: ...

    def sentence(self, names: tuple[str, ...]) -> bool: ...

    def within(self, scope: str) -> Hits:
        """The same hits restricted to ``"title"`` or ``"lead"``."""
        ...


def _name_arg(arg: ast.expr, func: str) -> str:
    if not isinstance(arg, ast.Name):
        raise ValueError(f"{func}() takes selection names")
    return arg.id


def _build(node: ast.expr) -> Node:
    if isinstance(node, ast.Name):
        return Name(node.id)
    if isinstance(node, ast.BoolOp):
        items = tuple(_build(v) for v in node.values)
        return All(items) if isinstance(node.op, ast.And) else AnyOf(items)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        return Not(_build(node.operand))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
        func, args = node.func.id, node.args
        if func in ("near", "before"):
            if len(args) not in (2, 3):
                raise ValueError(f"{func}() takes two selections and an optional word count")
            words = DEFAULT_NEAR
            if len(args) == 3:
                count = args[2]
                if not (isinstance(count, ast.Constant) and type(count.value) is int and 0 <= count.value <= 200):
                    raise ValueError(f"{func}()'s third argument must be a whole number of words from 0 to 200")
                words = count.value
            pair = (_name_arg(args[0], func), _name_arg(args[1], func))
            return Near(*pair, words) if func == "near" else Before(*pair, words)
        if func == "sentence":
            if len(args) < 2:
                raise ValueError("sentence() takes two or more selections")
            return Sentence(tuple(_name_arg(a, func) for a in args))
        if func in ("title", "lead"):
            if len(args) != 1:
                raise ValueError(f"{func}() takes one selection")
            inner = _build(args[0])
            return Title(inner) if func == "title" else Lead(inner)
        raise ValueError(f"unknown function {func}(); use near(), sentence(), title() or lead()")
    raise ValueError(
        f"unsupported syntax: {ast.unparse(node)!r}; use selection names, and/or/not, (), near(), sentence(), title()"
    )


def parse_condition(text: str) -> Node:
    """Parse a condition; raises ``ValueError`` with a readable reason."""
    try:
        tree = ast.parse(text.strip().replace("\n", " "), mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"condition is not well formed: {exc.msg}") from exc
    return _build(tree.body)


def names(node: Node) -> set[str]:
    """Every selection name the condition mentions."""
    match node:
        case Name(name):
            return {name}
        case All(items) | AnyOf(items):
            return set().union(*(names(i) for i in items))
        case Not(item) | Title(item) | Lead(item):
            return names(item)
        case Near(left, right, _) | Before(left, right, _):
            return {left, right}
        case Sentence(sel):
            return set(sel)
    raise TypeError(node)


def _polar_names(node: Node, negated: bool) -> tuple[set[str], set[str]]:
    match node:
        case All(items) | AnyOf(items):
            parts = [_polar_names(i, negated) for i in items]
            return set().union(*(p for p, _ in parts)), set().union(*(n for _, n in parts))
        case Not(item):
            return _polar_names(item, not negated)
        case Title(item) | Lead(item):
            return _polar_names(item, negated)
        case _:
            return (set(), names(node)) if negated else (names(node), set())


def negative_names(node: Node) -> set[str]:
    """Selections that only count against a match: every mention is under an odd number of ``not``."""
    positive, negative = _polar_names(node, False)
    return negative - positive


def presence_test(node: Node) -> Callable[[AbstractSet[str]], bool]:
    """A fast over-approximation of ``node`` that looks only at which selections have hits.

    Proximity becomes co-occurrence and ``not`` is assumed to pass, so a ``False`` answer is certain and
    lets the matcher skip the full evaluation; most articles touch only common words and stop here.
    """
    match node:
        case Name(name):
            return lambda present: name in present
        case Title(item) | Lead(item):
            return presence_test(item)
        case Near(left, right, _) | Before(left, right, _):
            return lambda present: left in present and right in present
        case Sentence(sel):
            wanted = frozenset(sel)
            return lambda present: wanted <= present
        case All(items):
            tests = [presence_test(i) for i in items if not isinstance(i, Not)]
            return lambda present: all(t(present) for t in tests)
        case AnyOf(items):
            tests = [presence_test(i) for i in items]
            return lambda present: any(t(present) for t in tests)
        case _:
            return lambda present: True


def presence_expression(node: Node, bits: Mapping[str, int]) -> str:
    """``presence_test`` as a Python expression over an integer ``m`` in which each selection present sets its
    bit (``bits``): the matcher compiles one function for the whole pack and tests an article with a few integer
    operations. Built only from integers and operators, never from rule text. A selection whose bit is 0 (one
    found by a regular expression, which no phrase announces) may always be present."""
    match node:
        case Name(name):
            return f"(m & {bits[name]})" if bits[name] else "True"
        case Title(item) | Lead(item):
            return presence_expression(item, bits)
        case Near(left, right, _) | Before(left, right, _):
            return _all_set(bits[left] | bits[right])
        case Sentence(sel):
            return _all_set(sum({bits[n] for n in sel}))
        case All(items):
            parts = [presence_expression(i, bits) for i in items if not isinstance(i, Not)]
            return f"({' and '.join(parts)})" if parts else "True"
        case AnyOf(items):
            parts = [presence_expression(i, bits) for i in items]
            return f"({' or '.join(parts)})" if parts else "False"
        case _:
            return "True"


def _all_set(mask: int) -> str:
    return f"((m & {mask}) == {mask})"


def evaluate(node: Node, hits: Hits) -> bool:
    match node:
        case Name(name):
            return hits.has(name)
        case All(items):
            return all(evaluate(i, hits) for i in items)
        case AnyOf(items):
            return any(evaluate(i, hits) for i in items)
        case Not(item):
            return not evaluate(item, hits)
        case Near(left, right, words):
            return hits.near(left, right, words)
        case Before(left, right, words):
            return hits.near(left, right, words, ordered=True)
        case Sentence(sel):
            return hits.sentence(sel)
        case Title(item):
            return evaluate(item, hits.within("title"))
        case Lead(item):
            return evaluate(item, hits.within("lead"))
    raise TypeError(node)
