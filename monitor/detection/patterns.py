"""The automaton's patterns: each normalised phrase of the pack with the rule selections it is a keyword of and the
entity it names. ``Pattern`` while the matcher is being built; ``CompiledPattern``, a tuple, once it is (cheap to
keep on disk and to load, ``packcache``). Pure: no I/O.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, NamedTuple

__all__ = ["CompiledPattern", "Pattern", "name_entity", "restored", "stored"]


@dataclass(slots=True)
class Pattern:
    phrase: str
    keyword_of: list[tuple[int, str]] = field(default_factory=list)  # (rule index, selection)
    entity: str | None = None
    ambiguous: bool = False
    fallback: str | None = None  # the entity an ambiguous name is plainly, when its context is absent


class CompiledPattern(NamedTuple):
    """A ``Pattern`` once the pack is compiled: a tuple, cheap to keep on disk and to load (``packcache``)."""

    phrase: str
    keyword_of: tuple[tuple[int, str], ...]
    entity: str | None
    ambiguous: bool
    fallback: str | None


def name_entity(p: Pattern, entity_id: str, ambiguous: bool) -> None:
    """Record that ``p`` names ``entity_id``: the first plain name wins, and a name ambiguous for one entity but
    plain for another names the first in its context and the second otherwise."""
    if p.entity is None:
        p.entity, p.ambiguous = entity_id, ambiguous
    elif p.ambiguous and not ambiguous and p.fallback is None:
        p.fallback = entity_id
    elif not p.ambiguous and ambiguous and p.entity != entity_id:
        p.entity, p.ambiguous, p.fallback = entity_id, True, p.entity


# How a compiled pack keeps its patterns on disk (``packcache``): as values that load with few Python-level steps.


def stored(patterns: list[CompiledPattern], keys: list[str]) -> tuple[list[tuple[Any, ...]], str | list[str]]:
    """The patterns as plain tuples, and their normalised forms as one string, one a line (normalised text has no
    line break; the list itself if one has)."""
    return [tuple(p) for p in patterns], keys if any("\n" in key for key in keys) else "\n".join(keys)


def restored(rows: list[tuple[Any, ...]], keys: str | list[str]) -> tuple[list[CompiledPattern], list[str]]:
    """``stored`` undone: ``CompiledPattern._make`` of each row, without its Python-level call per row."""
    patterns = list(map(tuple.__new__, itertools.repeat(CompiledPattern), rows))
    return patterns, keys if isinstance(keys, list) else keys.split("\n") if keys else []
