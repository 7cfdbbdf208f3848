"""How well events were formed, against labelled articles: the measures of the news-clustering literature.

Each labelled article has an ``event_key`` (the real-world event it reports; every negative its own) and, when it
was alerted, the id of the event the monitor put it in. B-cubed precision and recall are averaged over the alerted
positives: for each, the share of its event's articles that report its real event, and the share of its real
event's alerted articles that share its event. A *split* is one more event than needed for a real event; a *merge*
is an event that holds articles of two real events. Pure: no Redis, no clock.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

__all__ = ["Placement", "StreamScore", "score_stream"]


@dataclass(frozen=True, slots=True)
class Placement:
    """One labelled article and what the monitor did with it."""

    article_id: str
    label: bool
    event_key: str
    true_type: str | None
    event_id: str | None  # the event it joined or opened; None when not alerted


@dataclass(frozen=True)
class StreamScore:
    events: int  # real events (positive keys)
    events_alerted: int
    b3_precision: float
    b3_recall: float
    b3_f1: float
    split: int
    merged: int
    first_type_right: int  # events whose first alert carried the true type
    negatives_alerted: int
    split_keys: dict[str, int] = field(default_factory=dict)
    merged_groups: list[list[str]] = field(default_factory=list)
    wrong_first_type: dict[str, str] = field(default_factory=dict)

    @property
    def event_recall(self) -> float:
        return self.events_alerted / self.events if self.events else 1.0

    @property
    def first_type_accuracy(self) -> float:
        return self.first_type_right / self.events_alerted if self.events_alerted else 1.0


def score_stream(placements: Iterable[Placement], first_types: Mapping[str, str]) -> StreamScore:
    """Score the clustering; ``placements`` in reading order, ``first_types`` maps each event id to the type its
    first alert carried."""
    rows = list(placements)
    positives = [p for p in rows if p.label]
    keys = {p.event_key for p in positives}
    alerted = [p for p in positives if p.event_id is not None]
    by_event: dict[str, list[Placement]] = defaultdict(list)
    by_key: dict[str, list[Placement]] = defaultdict(list)
    for p in alerted:
        by_event[p.event_id or ""].append(p)
        by_key[p.event_key].append(p)
    precision = recall = 0.0
    for p in alerted:
        mine = by_event[p.event_id or ""]
        theirs = by_key[p.event_key]
        both = sum(1 for q in mine if q.event_key == p.event_key)
        precision += both / len(mine)
        recall += both / len(theirs)
    n = len(alerted)
    precision, recall = (precision / n, recall / n) if n else (0.0, 0.0)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    split_keys = {k: len({p.event_id for p in ps}) - 1 for k, ps in by_key.items() if len({p.event_id for p in ps}) > 1}
    merged_groups = sorted(
        sorted({p.event_key for p in ps}) for ps in by_event.values() if len({p.event_key for p in ps}) > 1
    )
    right, wrong = _first_types(by_key, first_types)
    return StreamScore(
        events=len(keys),
        events_alerted=len(by_key),
        b3_precision=round(precision, 3),
        b3_recall=round(recall, 3),
        b3_f1=round(f1, 3),
        split=sum(split_keys.values()),
        merged=len(merged_groups),
        first_type_right=right,
        negatives_alerted=sum(1 for p in rows if not p.label and p.event_id is not None),
        split_keys=split_keys,
        merged_groups=merged_groups,
        wrong_first_type=wrong,
    )


def _first_types(by_key: Mapping[str, list[Placement]], first_types: Mapping[str, str]) -> tuple[int, dict[str, str]]:
    """For each real event, the type of the first alert that carried one of its articles (the first event its
    articles went to, in reading order)."""
    right, wrong = 0, {}
    for key, placed in by_key.items():
        true_type = placed[0].true_type
        shown = first_types.get(placed[0].event_id or "")
        if shown == true_type:
            right += 1
        else:
            wrong[key] = f"{true_type}->{shown}"
    return right, wrong
