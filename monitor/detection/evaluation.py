"""``monitor rules test``: the rules' embedded examples, and precision/recall on labelled corpora."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from monitor.core.models import Article
from monitor.detection.matcher import Matcher
from monitor.detection.rulefile import RuleSet
from monitor.parsing.files import read_articles

__all__ = ["Scores", "example_failures", "run_rule_tests", "score_corpus"]

NONE = "(none)"


def example_failures(ruleset: RuleSet, matcher: Matcher) -> list[str]:
    """Every embedded example whose outcome differs from what its rule says."""
    failures = []
    for rule in ruleset.rules:
        where = f"{rule.path}:{rule.line}: {rule.id}"
        for ex in rule.examples_match:
            got = matcher.match(ex.title, ex.summary, ex.text)
            want = ex.event_type or rule.event_type
            if rule.status == "experimental":
                if rule.id not in got.shadow_rules:
                    failures.append(f"{where}: should match (shadow): {ex.title!r}")
            elif not got.alert:
                failures.append(f"{where}: should match: {ex.title!r} (severity {got.severity}, rules {got.rules})")
            elif got.event_type != want:
                failures.append(f"{where}: should be {want}, got {got.event_type}: {ex.title!r}")
        for ex in rule.examples_no_match:
            got = matcher.match(ex.title, ex.summary, ex.text)
            if got.alert:
                failures.append(f"{where}: should not alert: {ex.title!r} (got {got.event_type} via {got.rules})")
    return failures


@dataclass
class Scores:
    """Counts for one labelled corpus: detection (any type) and the type confusion among detections."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0
    confusion: Counter[tuple[str, str]] = field(default_factory=Counter)  # (label, predicted)
    errors: list[str] = field(default_factory=list)

    @staticmethod
    def _prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
        p = tp / (tp + fp) if tp + fp else 1.0
        r = tp / (tp + fn) if tp + fn else 1.0
        return p, r, (2 * p * r / (p + r) if p + r else 0.0)

    @property
    def overall(self) -> tuple[float, float, float]:
        return self._prf(self.tp, self.fp, self.fn)

    @property
    def type_accuracy(self) -> float:
        hits = sum(n for (label, pred), n in self.confusion.items() if label != NONE and pred != NONE)
        right = sum(n for (label, pred), n in self.confusion.items() if label == pred and label != NONE)
        return right / hits if hits else 1.0

    def per_type(self) -> dict[str, tuple[int, int, int, float, float, float]]:
        """Per event type, typed: a detection counts for a type only with the right type."""
        types = sorted({t for pair in self.confusion for t in pair} - {NONE})
        out = {}
        for t in types:
            tp = self.confusion[(t, t)]
            fp = sum(n for (label, pred), n in self.confusion.items() if pred == t and label != t)
            fn = sum(n for (label, pred), n in self.confusion.items() if label == t and pred != t)
            out[t] = (tp, fp, fn, *self._prf(tp, fp, fn))
        return out


def score_corpus(path: Path, matcher: Matcher) -> Scores:
    scores = Scores()
    for article, label in _labelled(path):
        got = matcher.match_article(article)
        predicted = got.event_type if got.alert and got.event_type else NONE
        truth = label or NONE
        scores.confusion[(truth, predicted)] += 1
        if truth != NONE and predicted != NONE:
            scores.tp += 1
        elif truth == NONE and predicted != NONE:
            scores.fp += 1
        elif truth != NONE:
            scores.fn += 1
        else:
            scores.tn += 1
        if truth != predicted:
            scores.errors.append(f"{article.id}: labelled {truth}, got {predicted}: {article.title}")
    return scores


def _labelled(path: Path) -> list[tuple[Article, str | None]]:
    import json

    labels: dict[str, str | None] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            obj = json.loads(line)
            labels[str(obj.get("id") or obj.get("link") or f"{path.name}:{number}")] = _truth(obj)
    articles = list(read_articles([path]))
    return [(a, labels.get(a.id, labels.get(a.url))) for a in articles]


def _truth(obj: dict[str, object]) -> str | None:
    """The labelled event type: ``label`` is the type (or null), or a boolean beside ``event_type``."""
    label = obj.get("label")
    if isinstance(label, bool):
        event_type = obj.get("event_type")
        return str(event_type) if label and event_type else None
    return str(label) if label else None


def run_rule_tests(
    ruleset: RuleSet, *, min_severity: int, corpora: list[Path], out: TextIO, show_errors: bool = False
) -> bool:
    """Print example failures and corpus scores; False when an embedded example fails."""
    matcher = Matcher(ruleset, min_severity=min_severity)
    failures = example_failures(ruleset, matcher)
    examples = sum(len(r.examples_match) + len(r.examples_no_match) for r in ruleset.rules)
    for failure in failures:
        print(f"FAIL {failure}", file=out)
    print(f"examples: {examples - len(failures)} passed, {len(failures)} failed", file=out)
    for path in corpora:
        scores = score_corpus(path, matcher)
        p, r, f1 = scores.overall
        print(f"\n{path}: {scores.tp + scores.fn} positives, {scores.fp + scores.tn} negatives", file=out)
        print(
            f"  overall   precision {p:.3f}  recall {r:.3f}  F1 {f1:.3f}  (tp {scores.tp}, fp {scores.fp}, "
            f"fn {scores.fn})  right type {scores.type_accuracy:.1%} of detected positives",
            file=out,
        )
        for event_type, (tp, fp, fn, tp_p, tp_r, tp_f) in scores.per_type().items():
            print(
                f"  {event_type:<38} P {tp_p:.3f}  R {tp_r:.3f}  F1 {tp_f:.3f}  (tp {tp}, fp {fp}, fn {fn})", file=out
            )
        print("  confusion (label -> predicted: count):", file=out)
        grouped: dict[str, list[str]] = defaultdict(list)
        for (label, pred), n in sorted(scores.confusion.items()):
            if label != pred:
                grouped[label].append(f"{pred}: {n}")
        for label, cells in grouped.items():
            print(f"    {label} -> " + ", ".join(cells), file=out)
        if show_errors:
            for error in scores.errors:
                print(f"  MISS {error}", file=out)
    return not failures
