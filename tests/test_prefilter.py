"""The matcher's prefilter rules out only articles whose answer is the empty match: the cheap plain words have every
word of the normal form in order, the trigger bits leave no rule able to pass its presence test without one of
them, and batches matched through it give what each article matched alone gives."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest

from monitor.detection.condition import parse_condition
from monitor.detection.matcher import Matcher
from monitor.detection.packcache import load_pack_cached
from monitor.detection.prefilter import needed_names, prefiltered, trigger_mask
from monitor.detection.text import PLAIN_SEPARATOR, normalize, plain_words
from monitor.parsing.files import read_articles
from tests.support.devset import labelled_files

ROOT = Path(__file__).resolve().parents[1]
TRICKY = [
    "",
    "U.S. strikes back; the U.N. and the U.S.A. respond",
    "US-led, USA's, US5, 5US, xUS, U.S-made, U.S.Army and U.S.",
    "Gen. Smith met Mr. Jones at 3 p.m. Then he left! Why?",
    "Iran's proxies, Kata'ib Hezbollah's commander, the boss's' and ab's`cd, 's alone",
    "line one\nline two\r\nline three | piped",
    "US\u2010led \u2014 \u201cquoted\u201d \u2018words\u2019 Iran\u2019s and B\u20111",
    "Sulaym\u0101n\u012b and caf\u00e9 in Erbil\u00a0today",
    "\u063a\u0627\u0631\u0629 \u0623\u0645\u0631\u064a\u0643\u064a\u0629 \u0641\u064a",
    "a text with the separator\x00inside it",
    "fields\x1fwith a unit separator",
    "a.b.c. U.S.b x.U.S. y",
]


def _texts() -> list[str]:
    files = labelled_files()
    return [" ".join((a.title, a.summary, a.content)) for a in read_articles(files)]


def _fuzz(count: int, seed: int) -> list[str]:
    rnd = random.Random(seed)
    alphabet = [*"aAbUSsu3.!?'\"`)] \t\n|-\x1f\x00\u00e9\u2019\u2014\u0630", "U.S.", "U.N.", "Mr.", "'s", "USA"]
    return ["".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 24))) for _ in range(count)]


@pytest.fixture(scope="module")
def matcher() -> Matcher:
    return load_pack_cached([ROOT / "rules"], None)


def test_plain_words_are_the_normal_forms_words_without_the_sentence_breaks() -> None:
    texts = TRICKY + _texts() + _fuzz(4000, 19)
    for size in (1, 5, 1000):
        for start in range(0, len(texts), size):
            chunk = texts[start : start + size]
            words, unsure = plain_words(chunk)
            parts = words.split(PLAIN_SEPARATOR)
            assert len(parts) == len(chunk) == len(unsure)
            for text, part, doubt in zip(chunk, parts, unsure, strict=True):
                if not doubt:
                    assert part.strip(b" ") == " ".join(normalize(text).replace("|", " ").split()).encode(), text
                    assert part.startswith(b" ") and part.endswith(b" ")  # so a phrase matches whole words only
    _, unsure = plain_words(TRICKY)
    assert unsure == [False] * 8 + [True, True, False, False]  # Arabic script, and the separator itself


def test_needed_names_follow_the_presence_test() -> None:
    def cost(name: str) -> float:
        return {"common": 10.0, "rare": 1.0}.get(name, 5.0)

    assert needed_names(parse_condition("common and rare"), cost) == {"rare"}
    assert needed_names(parse_condition("near(common, rare, 3) and not other"), cost) == {"rare"}
    assert needed_names(parse_condition("sentence(common, rare, x)"), cost) == {"rare"}
    assert needed_names(parse_condition("common or title(rare)"), cost) == {"common", "rare"}
    assert needed_names(parse_condition("(a or b) and (common or rare)"), cost) == {"a", "b"}
    assert needed_names(parse_condition("common or not rare"), cost) is None
    assert needed_names(parse_condition("not rare"), cost) is None
    # A selection found by a regular expression (no phrase announces it: infinite cost) is never needed.
    assert needed_names(parse_condition("rx"), lambda n: math.inf if n == "rx" else cost(n)) is None
    assert needed_names(parse_condition("rx and common"), lambda n: math.inf if n == "rx" else cost(n)) == {"common"}
    assert needed_names(parse_condition("near(rx, common, 3)"), lambda n: math.inf if n == "rx" else cost(n)) == {
        "common"
    }


def test_a_presence_test_that_passes_without_the_trigger_bits_means_no_prefilter() -> None:
    rules = [(parse_condition("a and b"), {"a": 1, "b": 2}), (parse_condition("c or not d"), {"c": 4, "d": 8})]
    # Without a set of needed names, the rule's own bits (the test's first clause needs one of them) are taken.
    assert trigger_mask(rules, 16, lambda bit: float(bit), lambda m: bool(m & 3 == 3 or m & 12)) == 1 | 12 | 16
    assert trigger_mask(rules, 16, lambda bit: float(bit), lambda m: True) is None


def test_no_rule_of_the_pack_can_pass_its_presence_test_without_a_trigger_bit(matcher: Matcher) -> None:
    trigger = matcher._trigger
    assert trigger is not None and matcher._prefilter_keys
    every = (matcher._entity_bit << 1) - 1
    assert not matcher._any_present(every & ~trigger)
    # And each trigger pattern is looked for: a phrase that can feed a rule or name an entity.
    keys = set(matcher._prefilter_keys)
    for pattern, mask in zip(matcher._pattern_keys, matcher._latin_masks, strict=True):
        if pattern.isascii() and mask & trigger:
            assert pattern.encode() in keys


def test_the_prefilter_rules_out_articles_that_name_nothing(matcher: Matcher) -> None:
    automaton = matcher._prefilter_automaton
    quiet = ["Quiet day at the beach", "Recipe: ten ways to cook rice", "Local team wins the cup", "Plan B’s flaws"]
    assert prefiltered(automaton, quiet) == []
    assert prefiltered(automaton, [*quiet, "US strike in Baghdad", "Iran\u2019s reply"]) == [4, 5]


def test_each_phrase_of_the_pack_alone_and_in_company_is_matched_as_without_the_prefilter(matcher: Matcher) -> None:
    phrases = [key.strip() for key in matcher._pattern_keys]
    rnd = random.Random(7)
    documents = [(p, "", "") for p in phrases]
    for _ in range(6000):
        words = rnd.sample(phrases, rnd.randint(2, 5))
        cut = rnd.randint(0, len(words))
        documents.append((" ".join(words[:cut]), ". ".join(words[cut:]), rnd.choice(["", "Then more."])))
    documents += [(t, t, t) for t in TRICKY] + [(t, "", "") for t in _fuzz(2000, 3)]
    alone = [matcher.match(*doc) for doc in documents]
    assert sum(m.alert for m in alone) > 100 and sum(bool(m.entities) for m in alone) > 1000
    for start in range(0, len(documents), 1000):
        assert matcher.match_many(documents[start : start + 1000]) == alone[start : start + 1000]
