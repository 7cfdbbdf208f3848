"""The matcher's prefilter: which articles can be ruled out before their text is normalised and matched.

Most articles of a big scan name no entity and bring no rule near firing, so their answer is the empty ``Match``.
The prefilter tells them apart by looking for a few of the pack's phrases in a cheaper form of the text
(``text.plain_words``: the normalised words without the sentence breaks, for many articles at once), and lets the
matcher normalise and match only the others.

What it looks for is derived from the compiled pack, and only from it:

* every rule's presence test (``condition.presence_expression``, which a rule must pass before it is evaluated)
  needs at least one selection of a set found from its condition (``needed_names``): one name of an ``and``, every
  branch of an ``or``; when the condition offers no such set, any of the rule's own selections (the test starts
  with that);
* the trigger bits are those selections' bits and the "names an entity" bit; the trigger patterns are the
  automaton's patterns whose mask (for Latin-script text) has a trigger bit;
* a trigger pattern found in the normalised text is found in the plain words (``text.plain_words``: the same
  words, without the breaks between sentences that a phrase cannot cross anyway).

So when no trigger pattern is found in the plain words, none is in the normalised text: the mask of what the
automaton would find there has no trigger bit, so every rule's presence test fails (the tests only ask for bits to
be present), no entity is named, and the matcher's answer would be the empty ``Match``. ``trigger_mask`` checks
that on the compiled presence test itself (with every other bit set it must fail), and the matcher uses no
prefilter if it does not hold. Pure: no I/O.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence

import ahocorasick_rs

from monitor.detection.condition import All, AnyOf, Before, Lead, Name, Near, Node, Sentence, Title
from monitor.detection.patterns import CompiledPattern
from monitor.detection.text import PLAIN_SEPARATOR, plain_words

__all__ = ["derive_prefilter", "needed_names", "prefilter_keys", "prefiltered", "trigger_mask"]

Cost = Callable[[str], float]


def needed_names(node: Node, cost: Cost) -> frozenset[str] | None:
    """Selection names of which the condition's presence test needs at least one (the cheapest such set by
    ``cost``), or ``None`` when the test can pass without any (a ``not`` alone, say)."""
    match node:
        case Name(name):
            return _cheapest((name,), cost)
        case Title(item) | Lead(item):
            return needed_names(item, cost)
        case Near(left, right, _) | Before(left, right, _):
            return _cheapest((left, right), cost)
        case Sentence(names):
            return _cheapest(names, cost)
        case All(items):
            options = [n for n in (needed_names(i, cost) for i in items) if n is not None]
            return min(options, key=lambda names: sum(map(cost, names))) if options else None
        case AnyOf(items):
            branches = [needed_names(i, cost) for i in items]
            if not branches or any(b is None for b in branches):
                return None
            return frozenset().union(*(b for b in branches if b is not None))
    return None


def _cheapest(names: Sequence[str], cost: Cost) -> frozenset[str] | None:
    """The cheapest of ``names`` that some phrase announces (finite cost), or ``None``."""
    name = min(names, key=cost)
    return None if cost(name) == math.inf else frozenset((name,))


def trigger_mask(
    rules: Sequence[tuple[Node, Mapping[str, int]]],
    entity_bit: int,
    bit_cost: Callable[[int], float],
    any_present: Callable[[int], bool],
) -> int | None:
    """The bits of which an article must have one for any rule's presence test to pass or an entity to be named;
    ``rules`` are each rule's condition and the bits of its selections. ``None`` if the compiled presence test
    ``any_present`` could pass without them (then there is no prefilter)."""
    mask = entity_bit
    for condition, bits in rules:

        def cost(name: str, bits: Mapping[str, int] = bits) -> float:
            return bit_cost(bits[name]) if bits[name] else math.inf

        names = needed_names(condition, cost)
        mask |= sum({bits[n] for n in names}) if names else sum(set(bits.values()))
    every = (entity_bit << 1) - 1
    return None if any_present(every & ~mask) else mask


def prefilter_keys(patterns: Sequence[str], masks: Sequence[int], trigger: int) -> list[bytes]:
    """The trigger patterns among ``patterns`` (normalised, with their masks for Latin-script text), as bytes.
    Patterns in other scripts are left out: they never match a text that ``plain_words`` is sure of."""
    return [p.encode("ascii") for p, mask in zip(patterns, masks, strict=True) if mask & trigger and p.isascii()]


def derive_prefilter(
    patterns: Sequence[CompiledPattern],
    keys: Sequence[str],
    masks: Sequence[int],
    entity_bit: int,
    rules: Sequence[tuple[Node, Mapping[str, int]]],
    presence_source: str,
) -> tuple[int | None, list[bytes] | None]:
    """The trigger mask and the trigger patterns of a compiled pack (``None`` and ``None`` when it allows no
    prefilter), from its patterns, their normalised forms and masks for Latin-script text, the entity bit, each
    rule's condition with its selections' bits, and the source of its presence test. A selection's cost is how
    likely its phrases are in any text: short ones are common; entity names cost nothing, since an article that
    names an entity is matched anyway."""
    costs: dict[int, float] = defaultdict(float)
    for pattern, key, mask in zip(patterns, keys, masks, strict=True):
        weight = 0.0 if pattern.entity is not None else 0.5 ** len(key.strip())
        while mask:
            costs[mask & -mask] += weight
            mask &= mask - 1
    # The presence test's source is generated from integers and operators only (``condition.presence_expression``).
    trigger = trigger_mask(rules, entity_bit, costs.__getitem__, eval(presence_source, {}))
    return trigger, None if trigger is None else prefilter_keys(keys, masks, trigger)


def prefiltered(automaton: ahocorasick_rs.BytesAhoCorasick | None, texts: list[str]) -> list[int]:
    """The indexes of the texts (an article's fields joined by spaces) that the prefilter, an automaton over the
    trigger patterns, cannot rule out; every index when there is no prefilter."""
    if automaton is None:
        return list(range(len(texts)))
    words, unsure = plain_words(texts)
    kept = {i for i, u in enumerate(unsure) if u}
    found = automaton.find_matches_as_indexes(words)
    if found:
        ends = list(itertools.accumulate(len(part) + 1 for part in words.split(PLAIN_SEPARATOR)))
        kept.update(bisect.bisect(ends, start) for _, start, _ in found)
    return sorted(kept)
