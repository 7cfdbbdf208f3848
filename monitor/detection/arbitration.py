"""Which of the rules that fired in one article names its story: their ranks (headline first, the action that
comes first, severity, score, pack order), the rules that supersede others, and who acts on whom in the headline."""

from __future__ import annotations

from dataclasses import dataclass

from monitor.detection.hits import ArticleText, Hit
from monitor.detection.roles import Direction, direction
from monitor.detection.rulefile import Rule

__all__ = ["Fired", "heading", "winner"]


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
    each rule matched."""
    winner = live[0]
    if winner.in_headline:
        for f in live[1:]:
            if f.acts_in_headline and winner.rule.id in f.rule.supersedes:
                winner = f
                break
    if heading is not None and winner.rule.direction not in (None, heading.value):
        for f in live:
            if f.rule.direction == heading.value:
                return f
    return winner


def heading(text: ArticleText) -> Direction | None:
    """Who acts on whom in the headline. (Not the lead: leads give the background, "after an attack on US forces
    last week", before or after the news, so their first cue says less than the headline's.)"""
    title = text.text[: text.starts[1]]
    return direction(f" {title.strip(' |')} ")
