"""The matcher: one Aho-Corasick automaton over every phrase of the pack, then per-rule conditions.

Every keyword and entity name is normalised (``detection.text``) and padded with one space each side, so a hit is
always a whole word run and all overlapping hits are reported ("Donald Trump" and "Trump" both). An article's
title, summary and content are normalised into one text with sentence breaks between fields; a hit's field is
found from its offset. Regexes run through RE2 (linear time) on the same text, only for rules that use them.
``match_many`` first rules out, with ``detection.prefilter``, the articles whose answer can only be the empty match.
Pure: no I/O, no clock.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import ahocorasick_rs
import re2

from monitor.core.models import Article, Evidence, Match
from monitor.detection.arbitration import Fired, heading, ranked, winner
from monitor.detection.condition import Node, evaluate, presence_expression, presence_test
from monitor.detection.condition import names as condition_names
from monitor.detection.hits import ArticleText, Hit, RuleHits, drop_nested, focus_entities, named_entities
from monitor.detection.language import article_language, detect_language, needs_arabic_script
from monitor.detection.patterns import CompiledPattern, Pattern, name_entity, restored, stored
from monitor.detection.prefilter import derive_prefilter, prefiltered
from monitor.detection.rulefile import FIELDS, Filter, Rule, RuleSet, Selection
from monitor.detection.scripts import detach_clitics, has_arabic, joined_forms
from monitor.detection.text import inflections, normalize, normalize_fields, without_blog_label
from monitor.detection.weapons import weapons_named

__all__ = ["Matcher"]

_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False
_NO_MATCH = Match(rules=(), event_type=None, severity=0, score=0.0, entities=(), evidence=(), alert=False)


class Matcher:
    """Compiled rule pack. ``match`` is safe to call from several threads (no shared mutable state)."""

    def __init__(self, ruleset: RuleSet, *, min_severity: int = 3) -> None:
        self.ruleset = ruleset
        self.min_severity = min_severity
        self.rules = ruleset.rules
        self._entity_selections: dict[str, list[tuple[int, str]]] = defaultdict(list)
        self._regex: dict[tuple[int, str], list[re2._Regexp]]
        patterns: dict[str, Pattern] = {}

        def pattern(phrase: str) -> list[Pattern]:
            norm = normalize(phrase)
            if not norm.strip(" |"):
                return []
            # Arabic-script compounds are written apart, with a non-joiner or joined: one pattern per spelling.
            spellings = joined_forms(norm) if not norm.isascii() else (norm,)
            return [patterns.setdefault(form, Pattern(phrase)) for form in spellings]

        for ri, rule in enumerate(self._all_rules()):
            for name, sel in rule.selections.items():
                for keyword in sel.keywords:
                    for form in inflections(keyword):
                        for p in pattern(form):
                            if (ri, name) not in p.keyword_of:
                                p.keyword_of.append((ri, name))
                for entity_id in sel.entities:
                    self._entity_selections[entity_id].append((ri, name))
        for entity in ruleset.entities.values():
            for names, ambiguous in ((entity.names, False), (entity.ambiguous, True)):
                for name in names:
                    for p in (p for form in inflections(name) for p in pattern(form)):
                        name_entity(p, entity.id, ambiguous)
        self._patterns = [
            CompiledPattern(p.phrase, tuple(p.keyword_of), p.entity, p.ambiguous, p.fallback) for p in patterns.values()
        ]
        # The pack's Arabic-script words: a proclitic is detached from an article's word only to make one of them.
        # Kept as one string (cheap to store and load), made a set when a text in Arabic script first needs it.
        self._vocabulary_text = "\n".join(sorted({w for phrase in patterns for w in phrase.split() if has_arabic(w)}))
        self._by_language = any(r.languages for r in self.rules) or any(
            s.languages for r in self._all_rules() for s in r.selections.values()
        )
        # Per pattern, every (rule, selection) it can feed, directly or through its entity.
        feeds: list[tuple[tuple[int, str], ...]] = [
            tuple({*p.keyword_of, *(self._entity_selections.get(p.entity, ()) if p.entity else ())})
            for p in self._patterns
        ]
        # Rules and filters that need Arabic script are left out of Latin texts' feeds: English costs what it did.
        script_bound = {i for i, r in enumerate(self._all_rules()) if needs_arabic_script(r)}
        latin_feeds = [tuple(f for f in fed if f[0] not in script_bound) for fed in feeds]
        self._latin_entity_selections = {
            e: [s for s in sels if s[0] not in script_bound] for e, sels in self._entity_selections.items()
        }
        self._pattern_keys = list(patterns.keys())
        conditions = self._presence_masks(feeds, latin_feeds)  # the feeds are not kept: not stored on disk either
        self._trigger, self._prefilter_keys = derive_prefilter(
            self._patterns, self._pattern_keys, self._latin_masks, self._entity_bit, conditions, self._presence_source
        )
        self._rule_trigger = -1 if self._trigger is None else self._trigger & ~self._entity_bit
        self._compile()
        self.phrase_count = len(self._patterns)

    def _presence_masks(
        self, feeds: list[tuple[tuple[int, str], ...]], latin_feeds: list[tuple[tuple[int, str], ...]]
    ) -> list[tuple[Node, dict[str, int]]]:
        """Each rule selection's bit, each pattern's mask of the rule selections it feeds (``feeds``: all of them;
        ``latin_feeds``: those a Latin text can use), and the source of the pack's presence test over such a mask
        (see ``match``); returns each rule's condition and its selections' bits."""
        bits: dict[tuple[int, str], int] = {}
        tests: list[str] = []
        conditions: list[tuple[Node, dict[str, int]]] = []
        for ri, rule in enumerate(self.rules):
            own = {
                name: 1 << len(bits) + k
                for k, name in enumerate(sorted({*rule.selections, *condition_names(rule.condition)}))
            }
            bits.update({(ri, name): bit for name, bit in own.items()})
            # A regular expression's hits are known only once its rule is touched: such a selection may be present.
            regexed = {name for name, sel in rule.selections.items() if sel.regex}
            own = {name: 0 if name in regexed else bit for name, bit in own.items()}
            conditions.append((rule.condition, own))
            tests.append(f"((m & {sum(own.values())}) and {presence_expression(rule.condition, own)})")
        # One more bit for "names an entity": without it and without a rule that may fire, nothing is found.
        self._entity_bit = 1 << len(bits)
        named = [self._entity_bit if p.entity is not None else 0 for p in self._patterns]
        self._masks = [sum({bits.get(f, 0) for f in fed}) | n for fed, n in zip(feeds, named, strict=True)]
        self._latin_masks = [sum({bits.get(f, 0) for f in fed}) | n for fed, n in zip(latin_feeds, named, strict=True)]
        self._presence_source = f"lambda m: bool({' or '.join(tests) or 'False'})"
        return conditions

    def _compile(self) -> None:
        """The parts built from the rest that do not pickle: the automaton, the conditions' presence tests, the
        regular expressions (so a compiled matcher can be kept on disk, ``monitor.detection.packcache``)."""
        self._regex = {
            (ri, name): [re2.compile(r, _RE2_OPTIONS) for r in sel.regex]
            for ri, rule in enumerate(self._all_rules())
            for name, sel in rule.selections.items()
            if sel.regex
        }
        self._presence = [presence_test(r.condition) for r in self.rules]
        # Generated from integers and operators only (``condition.presence_expression``), never from rule text.
        self._any_present: Callable[[int], bool] = eval(self._presence_source, {})
        self._automaton = ahocorasick_rs.AhoCorasick(self._pattern_keys)
        keys = self._prefilter_keys
        self._prefilter_automaton = (
            ahocorasick_rs.BytesAhoCorasick(keys, implementation=ahocorasick_rs.Implementation.DFA)
            if keys is not None
            else None
        )

    def __getstate__(self) -> dict[str, object]:
        state = self.__dict__.copy()
        for name in ("_regex", "_presence", "_any_present", "_automaton", "_prefilter_automaton", "_vocabulary"):
            state.pop(name, None)
        state["_patterns"], state["_pattern_keys"] = stored(self._patterns, self._pattern_keys)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._patterns, self._pattern_keys = restored(state["_patterns"], state["_pattern_keys"])
        self._compile()

    @functools.cached_property
    def _vocabulary(self) -> frozenset[str]:
        return frozenset(self._vocabulary_text.split("\n")) if self._vocabulary_text else frozenset()

    def at_threshold(self, min_severity: int) -> Matcher:
        """The same compiled pack alerting from ``min_severity``."""
        other = object.__new__(Matcher)
        other.__dict__.update(self.__dict__)  # shares the compiled parts (``copy.copy`` would rebuild them)
        other.min_severity = min_severity
        return other

    def _all_rules(self) -> list[Rule | Filter]:
        return [*self.rules, *self.ruleset.filters]

    def match_article(self, article: Article) -> Match:
        lang = article_language(article) if self._by_language else None
        return self.match(article.title, article.summary, article.content, lang=lang)

    def explain(self, title: str, summary: str = "", content: str = "") -> list[str]:
        """One line per rule that fired: headline or not, severity and the modifiers applied (for debugging)."""
        trace: list[str] = []
        self.match(title, summary, content, trace=trace)
        return trace

    def match(
        self,
        title: str,
        summary: str = "",
        content: str = "",
        *,
        trace: list[str] | None = None,
        lang: str | None = None,
    ) -> Match:
        """What the pack finds in one document (any field may be empty), written in ``lang`` (told from the text
        when not given and the pack has rules for some languages only)."""
        story = without_blog_label(title)
        return self._match(normalize_fields(story, summary, content), story, summary, content, trace, lang)

    def match_many(self, documents: Sequence[tuple[str, str, str]]) -> list[Match]:
        """``match`` of each (title, summary, content), their texts normalised together: the same results, for a
        fraction of the calls (``monitor scan``)."""
        out = [_NO_MATCH] * len(documents)
        kept = prefiltered(self._prefilter_automaton, [" ".join(document) for document in documents])
        parts = normalize_fields(*(text for i in kept for text in _story(documents[i])))
        for k, i in enumerate(kept):
            out[i] = self._match(parts[3 * k : 3 * k + 3], *documents[i], None, None)
        return out

    def _match(
        self, parts: list[str], title: str, summary: str, content: str, trace: list[str] | None, lang: str | None
    ) -> Match:
        if self._vocabulary_text:
            parts = [p if p.isascii() else detach_clitics(p, self._vocabulary) for p in parts]
        if len(parts[1]) > 2 and parts[1].strip() in parts[2]:
            parts[1] = " "  # a summary repeated in the body is one piece of evidence, not two
        joined = "|".join(parts)
        found = self._automaton.find_matches_as_indexes(joined, overlapping=True)
        if not found:
            return _NO_MATCH  # regexes only refine rules that a phrase already touched
        # Could any rule fire, judging only by which selections have hits? No is certain (``_presence_masks``).
        masks = self._latin_masks if joined.isascii() else self._masks
        present = 0
        for pid, _, _ in found:
            present |= masks[pid]
        # No trigger bit of a rule (``detection.prefilter``): no rule's test can pass, known without running them.
        if (not present & self._rule_trigger or not self._any_present(present)) and trace is None:
            return self._without_alert(self._entity_hits(found)) if present & self._entity_bit else _NO_MATCH
        if lang is None and self._by_language:
            lang = detect_language(title, summary, content)
        starts = (0, len(parts[0]) + 1, len(parts[0]) + len(parts[1]) + 2)
        return self._evaluate(ArticleText(joined, starts), found, trace, lang)

    def _entity_hits(self, found: list[tuple[int, int, int]]) -> dict[str, list[Hit]]:
        """Entities named in the text: the longest name wins, ambiguous names count only in their context."""
        entity_hits: dict[str, list[Hit]] = defaultdict(list)
        ambiguous: list[tuple[int, Hit]] = []
        for pid, start, end in found:
            pat = self._patterns[pid]
            if pat.entity is not None:
                hit = Hit(start, end, pat.phrase)
                if pat.ambiguous:
                    ambiguous.append((pid, hit))
                else:
                    entity_hits[pat.entity].append(hit)
        drop_nested(entity_hits)
        spans = [(h.start, h.end) for hits in entity_hits.values() for h in hits]
        for pid, hit in ambiguous:
            pat = self._patterns[pid]
            assert pat.entity is not None
            if any(s <= hit.start and hit.end <= e for s, e in spans):
                continue  # part of a longer name
            if any(ctx in entity_hits for ctx in self.ruleset.entities[pat.entity].context):
                entity_hits[pat.entity].append(hit)
            elif pat.fallback is not None:
                entity_hits[pat.fallback].append(hit)
        return entity_hits

    def _evaluate(
        self, text: ArticleText, found: list[tuple[int, int, int]], trace: list[str] | None, lang: str | None
    ) -> Match:
        by_rule, entity_hits = self._selection_hits(text, found, text.text.isascii())
        suppressed = self._suppressed(by_rule, text, lang)
        fired: list[Fired] = []
        for ri, rule in enumerate(self.rules):
            if ri not in by_rule or rule.id in suppressed or "*" in suppressed:
                continue
            if rule.languages is not None and lang not in rule.languages:
                continue
            outcome = self._fire(ri, rule, by_rule[ri], text, trace, lang)
            if outcome is not None:
                fired.append(outcome)
        return self._verdict(fired, entity_hits, text)

    def _selection_hits(
        self, text: ArticleText, found: list[tuple[int, int, int]], latin: bool
    ) -> tuple[dict[int, dict[str, list[Hit]]], dict[str, list[Hit]]]:
        """Hits per rule (and filter) index and selection: keywords, then entities, then regexes; and the
        entities named in the text."""
        by_rule: dict[int, dict[str, list[Hit]]] = defaultdict(lambda: defaultdict(list))
        for pid, start, end in found:
            pat = self._patterns[pid]
            if pat.keyword_of:
                hit = Hit(start, end, pat.phrase)
                for ri, name in pat.keyword_of:
                    by_rule[ri][name].append(hit)
        entity_hits = self._entity_hits(found)
        for entity_id, ent_hits in entity_hits.items():
            for ri, name in (self._latin_entity_selections if latin else self._entity_selections).get(entity_id, ()):
                by_rule[ri][name].extend(ent_hits)
        for (ri, name), regexes in self._regex.items():
            if ri not in by_rule:
                continue
            for regex in regexes:
                for m in regex.finditer(text.text):
                    by_rule[ri][name].append(Hit(m.start(), m.end(), m.group().strip()))
        return by_rule, entity_hits

    def _suppressed(self, by_rule: dict[int, dict[str, list[Hit]]], text: ArticleText, lang: str | None) -> set[str]:
        """The ids (or ``*``) of the rules that a filter whose condition holds suppresses."""
        suppressed: set[str] = set()
        for fi, flt in enumerate(self.ruleset.filters, start=len(self.rules)):
            if fi in by_rule:
                hits = self._scoped(flt.selections, by_rule[fi], text, lang)
                if evaluate(flt.condition, RuleHits(text, hits)):
                    suppressed |= set(flt.rules)
        return suppressed

    def _fire(
        self,
        ri: int,
        rule: Rule,
        raw: dict[str, list[Hit]],
        text: ArticleText,
        trace: list[str] | None,
        lang: str | None,
    ) -> Fired | None:
        """The rule at index ``ri`` with its severity, score and headline rank, if its condition holds."""
        if not self._presence[ri](raw.keys()):
            return None
        hits = self._scoped(rule.selections, raw, text, lang)
        view = RuleHits(text, hits).outside(text.background())
        if not evaluate(rule.condition, view):
            return None
        applied = [m for m in rule.severity if evaluate(m.when, view)]
        severity = rule.level + sum(m.add for m in applied)
        severity = max(1, min(5, severity))
        fired = ranked(rule, view, severity, -ri)
        if trace is not None:
            reasons = "; ".join(f"{m.add:+d} {m.reason}" for m in applied)
            trace.append(
                f"{rule.id}: severity {severity} (level {rule.level}{'; ' if reasons else ''}{reasons})"
                f"{', fires on the headline' if fired.in_headline else ''}, score {fired.score:g}"
            )
        return fired

    def _verdict(self, fired: list[Fired], entity_hits: dict[str, list[Hit]], text: ArticleText) -> Match:
        """The article's ``Match`` from the rules that fired: experimental ones only shadow, the best names it."""
        live = [f for f in fired if f.rule.status != "experimental"]
        shadow = tuple(f.rule.id for f in fired if f.rule.status == "experimental")
        if not live:
            return self._without_alert(entity_hits, shadow)
        live.sort(key=lambda f: f.rank, reverse=True)
        top = winner(live, heading(text, lead=not live[0].in_headline))  # live is ranked, headline rules first
        best = top.rule
        # the headline reports what followed its story: the weapons it names as the cause are the story's
        aftermath = top.in_headline and not top.acts_in_headline
        evidence = tuple(
            self._evidence(best, name, hit, text)
            for name, hits in top.hits.items()
            if name not in best.negative
            for hit in sorted(hits, key=lambda h: h.start)
        )
        return Match(
            rules=tuple(f.rule.id for f in live),
            event_type=best.event_type,
            severity=top.severity,
            score=round(top.score + top.severity, 2),
            entities=named_entities(entity_hits, self.ruleset),
            focus=focus_entities(entity_hits, self.ruleset, text),
            weapons=weapons_named(text, with_cause=aftermath),
            evidence=evidence,
            alert=top.severity >= self.min_severity,
            shadow_rules=shadow,
            aftermath=aftermath,
        )

    def _without_alert(self, entity_hits: dict[str, list[Hit]], shadow: tuple[str, ...] = ()) -> Match:
        """No live rule fired: only the entities named, and the experimental rules that fired."""
        if not entity_hits and not shadow:
            return _NO_MATCH
        return Match((), None, 0, 0.0, named_entities(entity_hits, self.ruleset), (), False, shadow)

    @staticmethod
    def _scoped(
        selections: dict[str, Selection], raw: dict[str, list[Hit]], text: ArticleText, lang: str | None
    ) -> dict[str, list[Hit]]:
        out: dict[str, list[Hit]] = {}
        for name, hits in raw.items():
            sel = selections[name]
            if sel.languages is not None and lang not in sel.languages:
                continue
            if sel.fields is not None:
                hits = [h for h in hits if FIELDS[text.field_of(h.start + 1)] in sel.fields]
            if hits and (sel.min == 1 or len({h.phrase.lower() for h in hits}) >= sel.min):
                out[name] = hits
        return out

    @staticmethod
    def _evidence(rule: Rule, selection: str, hit: Hit, text: ArticleText) -> Evidence:
        field_index = text.field_of(hit.start + 1)
        base = text.starts[field_index]
        return Evidence(rule.id, selection, FIELDS[field_index], hit.phrase, hit.start + 1 - base, hit.end - 1 - base)


def _story(document: tuple[str, str, str]) -> tuple[str, str, str]:
    return (without_blog_label(document[0]), document[1], document[2])
