"""Where a rule's phrases were found in one article, and the ``condition.Hits`` view the conditions read.

The matcher joins an article's normalised title, summary and content into one text (``ArticleText``), fields
separated by a sentence break ``|``; a ``Hit`` is a phrase's span in that text, padding spaces included.
``RuleHits`` answers the condition language's questions (present? near? one sentence? in the title or the
lead?) over one rule's hits. Pure: no I/O.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from monitor.detection.rulefile.model import RuleSet

__all__ = [
    "LEAD_WORDS",
    "ArticleText",
    "Hit",
    "RuleHits",
    "cause_spans",
    "drop_nested",
    "focus_entities",
    "lead_end",
    "named_entities",
    "news_text",
    "origin_spans",
]

LEAD_WORDS = 120  # ``lead(...)``: the title, the summary and this many words of the content


@dataclass(frozen=True, slots=True)
class Hit:
    """One phrase found in the article: a keyword, an entity name or a regex match."""

    start: int  # offsets in the combined normal text, including the padding spaces
    end: int
    phrase: str  # as written in the rule or gazetteer


@dataclass(slots=True)
class ArticleText:
    """The article's normalised fields joined by ``|``, and where each field and sentence is in it."""

    text: str
    starts: tuple[int, int, int]  # where title, summary and content begin
    _breaks: list[int] | None = None
    _background: list[tuple[int, int]] | None = None

    def field_of(self, pos: int) -> int:
        return bisect.bisect_right(self.starts, pos) - 1

    def first_break(self) -> int:
        """Where the body's first sentence ends (-1: with the text). A flash label before the first break ("عاجل |",
        "BREAKING |", as channels begin their posts) is not a sentence: the lead is the sentence after it."""
        text, start = self.text, self.starts[2]
        end = text.find("|", start + 1)
        while end >= 0 and " " not in text[start:end].strip(" |"):
            end = text.find("|", end + 1)
        return end

    def background(self) -> list[tuple[int, int]]:
        """The spans of the body past its first sentence that tell what its news came after, to the end of their
        sentence ("the announcement came two days after Soleimani was killed in a US strike"): background a rule
        may not fire on alone. (The body's first sentence is news even in a market report: "crude jumped 4% after
        a US strike in Baghdad killed ...".)"""
        if self._background is None:
            text, spans = self.text, []
            start = self.first_break()
            for m in _BACKGROUND.finditer(text, start) if start >= 0 else ():
                end = text.find("|", m.end())
                spans.append((m.end() - 1, len(text) if end < 0 else end))
            self._background = spans
        return self._background

    def sentence_of(self, pos: int) -> int:
        if self._breaks is None:
            text = self.text
            breaks, i = [], text.find("|")
            while i != -1:
                breaks.append(i)
                i = text.find("|", i + 1)
            self._breaks = breaks
        return bisect.bisect_left(self._breaks, pos)


class RuleHits:
    """The ``condition.Hits`` view of one rule's selections in one article."""

    def __init__(self, text: ArticleText, hits: dict[str, list[Hit]]) -> None:
        self.text = text
        self.hits = hits

    def has(self, name: str) -> bool:
        return bool(self.hits.get(name))

    def within(self, scope: str) -> RuleHits:
        if scope == "title":
            end = self.text.starts[1]
            keep = lambda h: h.start + 1 < end  # noqa: E731
        else:
            text, content = self.text, self.text.starts[2]

            def keep(h: Hit) -> bool:
                return h.start + 1 < content or text.text.count(" ", content, h.start + 1) <= LEAD_WORDS

        restricted = {name: kept for name, items in self.hits.items() if (kept := [h for h in items if keep(h)])}
        return RuleHits(self.text, restricted)

    def outside(self, spans: list[tuple[int, int]]) -> RuleHits:
        """The hits that start outside every span of ``spans``."""
        if not spans:
            return self
        kept_hits = {
            name: kept
            for name, items in self.hits.items()
            if (kept := [h for h in items if not any(low <= h.start < high for low, high in spans)])
        }
        return RuleHits(self.text, kept_hits)

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


def drop_nested(entity_hits: dict[str, list[Hit]]) -> None:
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


#: Words after which a headline or lead names what came before the news, not the news itself: "hours after Balad
#: rockets, drones hit Baghdad airport", "missiles fired in retaliation for the killing of Soleimani".
_AFTER = "after|in the wake of|in retaliation for|in response to|to avenge|since"
_CAUSE = re.compile(rf" (?:{_AFTER}|following) ")
#: The same in the body, where "following" also opens what comes next ("issued the following statement: ...").
#: "Hours earlier parliament voted to ...": what comes after these told what happened before the news, too.
_EARLIER = "hours earlier|days earlier|a day earlier|a week earlier|weeks earlier|earlier in the day|earlier that day"
_BACKGROUND = re.compile(rf" (?:{_AFTER}|{_EARLIER}|respond to|responding to|response to) ")
#: Words after which a headline or lead names where fire came from, not what it hit ("Katyushas fired from Abu
#: Ghraib slam into airport car park"), or a place it lies away from ("base north of Baghdad").
_ORIGIN = re.compile(
    r" (?:fired from|launched from|from the direction of|from the area of|from an area|"
    r"(?:north|south|east|west|northeast|northwest|southeast|southwest|north-east|north-west|south-east|south-west) of)"
    r" "
)
#: How many words after such a marker still belong to what it names.
_CAUSE_WORDS = 2


def focus_entities(entity_hits: dict[str, list[Hit]], ruleset: RuleSet, text: ArticleText) -> tuple[str, ...]:
    """The entities the headline or the lead is about: named in the title, the summary when there is one, else the
    body's first sentence, and not only as the cause of the news ("after Balad rockets, ...")."""
    end = lead_end(text)
    causes = cause_spans(text.text, end) + origin_spans(text.text, end)

    def about(hit: Hit) -> bool:
        return hit.start < end and not any(low <= hit.start < high for low, high in causes)

    return tuple(e for e in named_entities(entity_hits, ruleset) if any(about(h) for h in entity_hits[e]))


#: A title of fewer words is a post's header, not a headline (``lead_end``).
_HEADER_WORDS = 5


def lead_end(text: ArticleText) -> int:
    """Where the headline and the lead end: the summary when there is one (or a headline without one: what the
    headline names is what it is about), else the body's first sentence (a channel's post without a title)."""
    title, summary = text.text[: text.starts[1]].strip(" |"), text.text[text.starts[1] : text.starts[2]]
    # a channel's header ("بيان", "بسم الله الرحمن الرحيم", "Statement") heads a post, it does not tell it
    if title.count(" ") + 1 >= _HEADER_WORDS or summary.strip(" |"):
        return text.starts[2]
    end = text.first_break()
    return len(text.text) if end < 0 else end


#: Words by which a lead's sentence tells another happening beside the news: "a drone aimed at Ain al-Asad was shot
#: down the same morning", "separately, rockets fell near Baghdad airport".
_BESIDE = re.compile(
    r"\b(?:separately|in a separate|meanwhile|elsewhere|the same (?:morning|day|night|evening|afternoon)|"
    r"on the same day|earlier the same)\b",
    re.IGNORECASE,
)


def cause_spans(text: str, end: int) -> list[tuple[int, int]]:
    """The spans of ``text`` before ``end`` that name the cause of the news rather than the news: the few words
    after "after", "following", "in retaliation for"... in the headline; past it (the summary, the body's first
    sentence), the rest of the clause ("the attack came hours after a rocket hit an oil compound in Basra"), and
    whole sentences that tell another happening beside it (``_BESIDE``)."""
    title_end = text.find("|")
    spans = _spans_after(_CAUSE, text, min(end, title_end) if title_end >= 0 else end)
    if 0 <= title_end < end:
        for m in _CAUSE.finditer(text, title_end, end):
            stops = [i for i in (text.find(",", m.end()), text.find("|", m.end())) if i >= 0]
            spans.append((m.end() - 1, min([*stops, end])))
        for m in _BESIDE.finditer(text, title_end, end):
            low, high = text.rfind("|", title_end, m.start()), text.find("|", m.end(), end)
            spans.append((low + 1, end if high < 0 else high))
    return spans


def news_text(text: ArticleText, end: int) -> str:
    """The article's text before ``end`` with the words that name the cause of its news (``cause_spans``) blanked,
    offsets kept: what its headline (and lead) report, not what they report it after."""
    news = text.text[:end]
    for low, high in reversed(cause_spans(text.text, end)):
        news = news[:low] + " " * (high - low) + news[high:]
    return news


def origin_spans(text: str, end: int) -> list[tuple[int, int]]:
    """The spans of ``text`` before ``end`` that name where fire was launched from ("fired from Abu Ghraib") or a
    place the site lies away from ("north of Baghdad")."""
    return _spans_after(_ORIGIN, text, end)


def _spans_after(marker: re.Pattern[str], text: str, end: int) -> list[tuple[int, int]]:
    """The ``_CAUSE_WORDS`` words after each ``marker`` before ``end``."""
    return [(m.end() - 1, _words_on(text, m.end(), _CAUSE_WORDS)) for m in marker.finditer(text, 0, end)]


def _words_on(text: str, start: int, words: int) -> int:
    """Where the ``words`` words from ``start`` end, or the sentence ends first."""
    pos = start
    for _ in range(words):
        nxt = text.find(" ", pos + 1)
        stop = text.find("|", pos)
        if nxt < 0 or 0 <= stop < nxt:
            return len(text) if stop < 0 else stop
        pos = nxt
    return pos


def named_entities(entity_hits: dict[str, list[Hit]], ruleset: RuleSet) -> tuple[str, ...]:
    """Entities named in the article, in order of first mention; look-alike names (type ``other``) left out."""
    named = [e for e in entity_hits if ruleset.entities[e].type != "other"]
    return tuple(sorted(named, key=lambda e: min(h.start for h in entity_hits[e])))
