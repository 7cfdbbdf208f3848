"""The matcher: one Aho-Corasick automaton over every phrase of the pack, then per-rule conditions.

Every keyword and entity name is normalised (``textnorm``) and padded with one space each side, so a hit is
always a whole word run and all overlapping hits are reported ("Donald Trump" and "Trump" both). An article's
title, summary and content are normalised into one text with sentence breaks between fields; a hit's field is
found from its offset. Regexes run through RE2 (linear time) on the same text, only for rules that use them.
Pure: no I/O, no clock.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from dataclasses import dataclass, field

import ahocorasick_rs
import re2

from monitor.core.models import Article, Evidence, Match
from monitor.detection.condition import evaluate, presence_test
from monitor.detection.rulefile import FIELDS, Filter, Rule, RuleSet, Selection
from monitor.detection.text import inflections, normalize

__all__ = ["Matcher"]

TITLE_WEIGHT = 2.0
LEAD_WORDS = 120
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False
_NO_MATCH = Match(rules=(), event_type=None, severity=0, score=0.0, entities=(), evidence=(), alert=False)


@dataclass(frozen=True, slots=True)
class _Hit:
    start: int  # offsets in the combined normal text, including the padding spaces
    end: int
    phrase: str  # as written in the rule or gazetteer


@dataclass(slots=True)
class _Pattern:
    phrase: str
    keyword_of: list[tuple[int, str]] = field(default_factory=list)  # (rule index, selection)
    entity: str | None = None
    ambiguous: bool = False


@dataclass(slots=True)
class _Text:
    text: str
    starts: tuple[int, int, int]  # where title, summary and content begin
    _breaks: list[int] | None = None

    def field_of(self, pos: int) -> int:
        return bisect.bisect_right(self.starts, pos) - 1

    def sentence_of(self, pos: int) -> int:
        if self._breaks is None:
            text = self.text
            breaks, i = [], text.find("|")
            while i != -1:
                breaks.append(i)
                i = text.find("|", i + 1)
            self._breaks = breaks
        return bisect.bisect_left(self._breaks, pos)


class _RuleHits:
    """The ``condition.Hits`` view of one rule's selections in one article."""

    def __init__(self, text: _Text, hits: dict[str, list[_Hit]]) -> None:
        self.text = text
        self.hits = hits

    def has(self, name: str) -> bool:
        return bool(self.hits.get(name))

    def within(self, scope: str) -> _RuleHits:
        if scope == "title":
            end = self.text.starts[1]
            keep = lambda h: h.start + 1 < end  # noqa: E731
        else:
            text, content = self.text, self.text.starts[2]

            def keep(h: _Hit) -> bool:
                return h.start + 1 < content or text.text.count(" ", content, h.start + 1) <= LEAD_WORDS

        restricted = {name: kept for name, items in self.hits.items() if (kept := [h for h in items if keep(h)])}
        return _RuleHits(self.text, restricted)

    def near(self, left: str, right: str, words: int, *, ordered: bool = False) -> bool:
        text = self.text
        for a in self.hits.get(left, ()):
            for b in self.hits.get(right, ()):
                if ordered and a.start >= b.start:
                    continue
                first, second = (a, b) if a.start <= b.start else (b, a)
                if second.start < first.end:  # overlapping or adjacent (they share a padding space)
                    gap = 0
                else:
                    gap = text.text.count(" ", first.end - 1, second.start + 1) - 1
                if gap <= words and text.field_of(a.start) == text.field_of(b.start):
                    return True
        return False

    def sentence(self, names: tuple[str, ...]) -> bool:
        sets = []
        for name in names:
            found = {self.text.sentence_of(h.start + 1) for h in self.hits.get(name, ())}
            if not found:
                return False
            sets.append(found)
        return bool(set.intersection(*sets))


class Matcher:
    """Compiled rule pack. ``match`` is safe to call from several threads (no shared mutable state)."""

    def __init__(self, ruleset: RuleSet, *, min_severity: int = 3) -> None:
        self.ruleset = ruleset
        self.min_severity = min_severity
        self.rules = ruleset.rules
        self._entity_selections: dict[str, list[tuple[int, str]]] = defaultdict(list)
        self._regex: dict[tuple[int, str], list[re2._Regexp]] = {}
        patterns: dict[str, _Pattern] = {}

        def pattern(phrase: str) -> _Pattern | None:
            norm = normalize(phrase)
            if not norm.strip(" |"):
                return None
            return patterns.setdefault(norm, _Pattern(phrase))

        for ri, rule in enumerate(self._all_rules()):
            for name, sel in rule.selections.items():
                for keyword in sel.keywords:
                    for form in inflections(keyword):
                        p = pattern(form)
                        if p is not None and (ri, name) not in p.keyword_of:
                            p.keyword_of.append((ri, name))
                for entity_id in sel.entities:
                    self._entity_selections[entity_id].append((ri, name))
                if sel.regex:
                    self._regex[(ri, name)] = [re2.compile(r, _RE2_OPTIONS) for r in sel.regex]
        for entity in ruleset.entities.values():
            for names, ambiguous in ((entity.names, False), (entity.ambiguous, True)):
                for name in names:
                    p = pattern(name)
                    if p is not None and p.entity is None:
                        p.entity, p.ambiguous = entity.id, ambiguous
        self._patterns = list(patterns.values())
        # Per pattern, every (rule, selection) it can feed, directly or through its entity.
        self._feeds: list[tuple[tuple[int, str], ...]] = [
            tuple({*p.keyword_of, *(self._entity_selections.get(p.entity, ()) if p.entity else ())})
            for p in self._patterns
        ]
        self._presence = [presence_test(r.condition) for r in self.rules]
        self._automaton = ahocorasick_rs.AhoCorasick(list(patterns.keys()))
        self.phrase_count = len(self._patterns)

    def _all_rules(self) -> list[Rule | Filter]:
        return [*self.rules, *self.ruleset.filters]

    def match_article(self, article: Article) -> Match:
        return self.match(article.title, article.summary, article.content)

    def explain(self, title: str, summary: str = "", content: str = "") -> list[str]:
        """One line per rule that fired: headline or not, severity and the modifiers applied (for debugging)."""
        trace: list[str] = []
        self.match(title, summary, content, trace=trace)
        return trace

    def match(self, title: str, summary: str = "", content: str = "", *, trace: list[str] | None = None) -> Match:
        """What the pack finds in one document (any field may be empty)."""
        parts = [normalize(title), normalize(summary), normalize(content)]
        if len(parts[1]) > 2 and parts[1].strip() in parts[2]:
            parts[1] = " "  # a summary repeated in the body is one piece of evidence, not two
        starts = (0, len(parts[0]) + 1, len(parts[0]) + len(parts[1]) + 2)
        text = _Text("|".join(parts), starts)
        found = self._automaton.find_matches_as_indexes(text.text, overlapping=True)
        if not found:
            return _NO_MATCH  # regexes only refine rules that a phrase already touched
        if not self._may_fire(found) and trace is None:
            return self._entities_only(found)
        return self._evaluate(text, found, trace)

    def _may_fire(self, found: list[tuple[int, int, int]]) -> bool:
        """Could any rule fire, judging only by which selections have hits? ``False`` is certain."""
        present: dict[int, set[str]] = defaultdict(set)
        feeds = self._feeds
        for pid, _, _ in found:
            for ri, name in feeds[pid]:
                present[ri].add(name)
        return any(self._presence[ri](names) for ri, names in present.items() if ri < len(self.rules))

    def _entities_only(self, found: list[tuple[int, int, int]]) -> Match:
        entity_hits = self._entity_hits(found)
        if not entity_hits:
            return _NO_MATCH
        return Match((), None, 0, 0.0, _entities(entity_hits, self.ruleset), (), False)

    def _entity_hits(self, found: list[tuple[int, int, int]]) -> dict[str, list[_Hit]]:
        """Entities named in the text: the longest name wins, ambiguous names count only in their context."""
        entity_hits: dict[str, list[_Hit]] = defaultdict(list)
        ambiguous: list[tuple[str, _Hit]] = []
        for pid, start, end in found:
            pat = self._patterns[pid]
            if pat.entity is not None:
                hit = _Hit(start, end, pat.phrase)
                if pat.ambiguous:
                    ambiguous.append((pat.entity, hit))
                else:
                    entity_hits[pat.entity].append(hit)
        _drop_nested(entity_hits)
        for entity_id, hit in ambiguous:
            if any(ctx in entity_hits for ctx in self.ruleset.entities[entity_id].context):
                entity_hits[entity_id].append(hit)
        return entity_hits

    def _evaluate(self, text: _Text, found: list[tuple[int, int, int]], trace: list[str] | None = None) -> Match:
        all_rules = self._all_rules()
        by_rule: dict[int, dict[str, list[_Hit]]] = defaultdict(lambda: defaultdict(list))
        for pid, start, end in found:
            pat = self._patterns[pid]
            if pat.keyword_of:
                hit = _Hit(start, end, pat.phrase)
                for ri, name in pat.keyword_of:
                    by_rule[ri][name].append(hit)
        entity_hits = self._entity_hits(found)
        for entity_id, ent_hits in entity_hits.items():
            for ri, name in self._entity_selections.get(entity_id, ()):
                by_rule[ri][name].extend(ent_hits)
        for (ri, name), regexes in self._regex.items():
            if ri not in by_rule:
                continue
            for regex in regexes:
                for m in regex.finditer(text.text):
                    by_rule[ri][name].append(_Hit(m.start(), m.end(), m.group().strip()))

        suppressed: set[str] = set()
        for fi, flt in enumerate(self.ruleset.filters, start=len(self.rules)):
            if fi in by_rule:
                hits = self._scoped(all_rules[fi].selections, by_rule[fi], text)
                if evaluate(flt.condition, _RuleHits(text, hits)):
                    suppressed |= set(flt.rules)

        fired: list[tuple[bool, int, int, float, int, Rule, dict[str, list[_Hit]]]] = []
        for ri, rule in enumerate(self.rules):
            if ri not in by_rule or rule.id in suppressed or "*" in suppressed:
                continue
            if not self._presence[ri](by_rule[ri].keys()):
                continue
            hits = self._scoped(rule.selections, by_rule[ri], text)
            view = _RuleHits(text, hits)
            if not evaluate(rule.condition, view):
                continue
            applied = [m for m in rule.severity if evaluate(m.when, view)]
            severity = rule.level + sum(m.add for m in applied)
            severity = max(1, min(5, severity))
            score = self._score(rule, hits, text)
            # A rule that the headline alone satisfies names what the story is about; one satisfied only
            # by background further down loses the event type to it, whatever their severities.
            headline = view.within("title")
            in_headline = evaluate(rule.condition, headline)
            # Among rules the headline satisfies, the one whose action comes first names the story.
            first_action = -min(
                (h.start for name in rule.action for h in headline.hits.get(name, ())), default=len(text.text)
            )
            fired.append((in_headline, first_action if in_headline else 0, severity, score, -ri, rule, hits))
            if trace is not None:
                reasons = "; ".join(f"{m.add:+d} {m.reason}" for m in applied)
                trace.append(
                    f"{rule.id}: severity {severity} (level {rule.level}{'; ' if reasons else ''}{reasons})"
                    f"{', fires on the headline' if in_headline else ''}, score {score:g}"
                )
        if not fired:
            return (
                _NO_MATCH
                if not entity_hits
                else Match((), None, 0, 0.0, _entities(entity_hits, self.ruleset), (), False)
            )
        live = [f for f in fired if f[5].status != "experimental"]
        shadow = tuple(f[5].id for f in fired if f[5].status == "experimental")
        if not live:
            return Match((), None, 0, 0.0, _entities(entity_hits, self.ruleset), (), False, shadow)
        live.sort(key=lambda f: f[:5], reverse=True)
        winner = live[0]
        if winner[0]:
            for f in live[1:]:
                if f[0] and winner[5].id in f[5].supersedes:
                    winner = f
                    break
        _, _, severity, score, _, best, best_hits = winner
        evidence = tuple(
            self._evidence(best, name, hit, text)
            for name, hits in best_hits.items()
            if name not in best.negative
            for hit in sorted(hits, key=lambda h: h.start)
        )
        return Match(
            rules=tuple(f[5].id for f in live),
            event_type=best.event_type,
            severity=severity,
            score=round(score + severity, 2),
            entities=_entities(entity_hits, self.ruleset),
            evidence=evidence,
            alert=severity >= self.min_severity,
            shadow_rules=shadow,
        )

    @staticmethod
    def _scoped(selections: dict[str, Selection], raw: dict[str, list[_Hit]], text: _Text) -> dict[str, list[_Hit]]:
        out: dict[str, list[_Hit]] = {}
        for name, hits in raw.items():
            sel = selections[name]
            if sel.fields is not None:
                hits = [h for h in hits if FIELDS[text.field_of(h.start + 1)] in sel.fields]
            if hits and (sel.min == 1 or len({h.phrase.lower() for h in hits}) >= sel.min):
                out[name] = hits
        return out

    @staticmethod
    def _score(rule: Rule, hits: dict[str, list[_Hit]], text: _Text) -> float:
        seen: dict[str, float] = {}
        for name, items in hits.items():
            if name in rule.negative:
                continue
            for h in items:
                weight = TITLE_WEIGHT if text.field_of(h.start + 1) == 0 else 1.0
                key = h.phrase.lower()
                seen[key] = max(seen.get(key, 0.0), weight)
        return sum(seen.values())

    @staticmethod
    def _evidence(rule: Rule, selection: str, hit: _Hit, text: _Text) -> Evidence:
        field_index = text.field_of(hit.start + 1)
        base = text.starts[field_index]
        return Evidence(rule.id, selection, FIELDS[field_index], hit.phrase, hit.start + 1 - base, hit.end - 1 - base)


def _drop_nested(entity_hits: dict[str, list[_Hit]]) -> None:
    """Among entity names, the longest wins: "Islamic Resistance in Iraq" is a militia, not also the place
    "Iraq"; "Kataib Hezbollah" is not also Lebanon's "Hezbollah". Keyword hits keep all their overlaps."""
    spans = [(h.start, h.end) for hits in entity_hits.values() for h in hits]
    if len(spans) < 2:
        return
    for entity_id in list(entity_hits):
        kept = [
            h
            for h in entity_hits[entity_id]
            if not any(s <= h.start and h.end <= e and (e - s) > (h.end - h.start) for s, e in spans)
        ]
        if kept:
            entity_hits[entity_id] = kept
        else:
            del entity_hits[entity_id]


def _entities(entity_hits: dict[str, list[_Hit]], ruleset: RuleSet) -> tuple[str, ...]:
    """Entities named in the article, in order of first mention; look-alike names (type ``other``) left out."""
    named = [e for e in entity_hits if ruleset.entities[e].type != "other"]
    return tuple(sorted(named, key=lambda e: min(h.start for h in entity_hits[e])))
