"""Which of the rules that fired in one article names its story: their ranks (headline first, the action that
comes first, severity, score, pack order), the rules that supersede others, and who acts on whom in the headline."""

from __future__ import annotations

from dataclasses import dataclass

from monitor.detection.condition import evaluate
from monitor.detection.hits import ArticleText, Hit, RuleHits, cause_spans, news_text
from monitor.detection.roles import Direction, direction
from monitor.detection.rulefile import Rule

__all__ = ["TITLE_WEIGHT", "Fired", "heading", "ranked", "winner"]

#: How much more a phrase in the headline counts towards a rule's score than one further down.
TITLE_WEIGHT = 2.0


@dataclass(frozen=True, slots=True)
class Fired:
    """A rule whose condition held in one article, and what ranks it against the other rules that fired."""

    in_headline: bool  # the headline alone satisfies the condition
    acts_in_headline: bool  # and one of its actions is the headline's news, not its cause ("after ...")
    first_action: int  # minus the offset of the rule's first action in the headline; 0 when not in_headline
    severity: int
    score: float
    order: int  # minus the rule's index, so that on a tie the rule listed first wins
    rule: Rule
    hits: dict[str, list[Hit]]  # per selection, the hits that count (fields and ``min`` applied)

    @property
    def rank(self) -> tuple[bool, int, int, float, int]:
        """Higher is better: fires on the headline, action first, severity, score, then pack order."""
        return (self.in_headline, self.first_action, self.severity, self.score, self.order)


def winner(live: list[Fired], heading: Direction | None) -> Fired:
    """The best ranked rule names the story, unless another rule the headline satisfies (its action the
    headline's news, not its cause) supersedes it, or the story runs the other way: when the headline (else the
    lead) has the US side acting, or acted on, the best ranked rule of that direction names it, whichever verb
    each rule matched (and again unless one of that direction supersedes it: "IRGC hits US base" is Iran's attack,
    not the killing its operation is named after, nor only an attack)."""
    chosen = _superseding(live[0], live, None)
    if heading is not None and chosen.rule.direction not in (None, heading.value):
        for f in live:
            if f.rule.direction == heading.value:
                return _superseding(f, live, heading)
    return chosen


def _superseding(best: Fired, live: list[Fired], heading: Direction | None) -> Fired:
    """``best``, or the first rule (of ``heading``'s direction, when given) that supersedes it in the headline;
    in a story whose headline fires no rule, in the body, whether the lead gave the direction ("Iran vows revenge"
    over "... killed by an American drone": the killing, not only the strike) or nobody is said to act ("Iran
    fired missiles at Ain al-Asad" under a quote headline: Iran's attack, not only an attack)."""
    # Ranked: a rule the headline satisfies comes first. With a direction, only that direction's rules count: a
    # US strike the headline seems to fire on does not make the threat read in the body less of one.
    same_way = [f for f in live if heading is None or f.rule.direction in (None, heading.value)] or live
    in_body = not same_way[0].in_headline
    if best.in_headline or in_body:
        for f in live:
            if f is best or not (f.acts_in_headline or in_body) or best.rule.id not in f.rule.supersedes:
                continue
            if heading is None or f.rule.direction in (None, heading.value):
                return f
    return best


def heading(text: ArticleText, *, lead: bool = False) -> Direction | None:
    """Who acts on whom in the headline; with ``lead``, when the headline does not say, in the summary and the
    body's first sentence. (Leads give the background, "after an attack on US forces last week", before or after
    the news, so their first cue says less than the headline's: only a story whose headline fires no rule, such as
    "Iran vows revenge for killing of its top general" over "... killed by an American drone at Baghdad's
    airport", is read by its lead.)"""
    # What the headline names as the cause of its news ("after US strikes in Syria, a drone heads for Al-Asad")
    # does not say who acts in it.
    title = news_text(text, text.starts[1])
    found = direction(f" {title.strip(' |')} ")
    if found is not None or not lead:
        return found
    # (In the summary, "after ..." names the cause; the body's first sentence is news even after "after": "crude
    # rose 4% after a US air strike in Baghdad killed ...".)
    end = text.text.find("|", text.starts[2] + 1)
    first = text.text[text.starts[2] : len(text.text) if end < 0 else end]
    opening = news_text(text, text.starts[2])[text.starts[1] :] + first
    return direction(f" {opening.strip(' |')} ")


def ranked(rule: Rule, view: RuleHits, severity: int, order: int) -> Fired:
    """A rule whose condition holds on ``view`` (its hits in the whole article), with what ranks it."""
    text = view.text
    # A rule that the headline alone satisfies names what the story is about; one satisfied only by background
    # further down loses the event type to it, whatever their severities.
    headline = view.within("title")
    in_headline = evaluate(rule.condition, headline)
    # Among rules the headline satisfies, the one whose action comes first names the story. An action ends where
    # its verb or noun ends, so a longer phrase of the same word ("to leave", "leave") does not come first.
    first_action = -min((h.end for name in rule.action for h in headline.hits.get(name, ())), default=len(text.text))
    # A rule that the headline satisfies only with the words naming the cause of its news ("rockets fall on
    # Balad, a day after Soleimani strike") supersedes no other.
    causes = cause_spans(text.text, text.starts[1])
    acts = in_headline and (not causes or evaluate(rule.condition, headline.outside(causes)))
    score = _score(rule, view.hits, text)
    return Fired(in_headline, acts, first_action if in_headline else 0, severity, score, order, rule, view.hits)


def _score(rule: Rule, hits: dict[str, list[Hit]], text: ArticleText) -> float:
    seen: dict[str, float] = {}
    for name, items in hits.items():
        if name in rule.negative:
            continue
        for h in items:
            weight = TITLE_WEIGHT if text.field_of(h.start + 1) == 0 else 1.0
            key = h.phrase.lower()
            seen[key] = max(seen.get(key, 0.0), weight)
    return sum(seen.values())
