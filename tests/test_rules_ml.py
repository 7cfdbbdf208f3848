"""The shipped pack on ``tests/data/devset_ml`` (Arabic, Persian and Sorani news and Telegram-style claims, written
for the project about real events), per language and fold: a regression floor near where the pack stands on the
fold it was tuned on, and one on the held-out fold (other real events, scored, never read article by article).

Slices written after the split (``*_t2.jsonl``, ``*_t3.jsonl``: about tune events only) are ``tune`` whole."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from monitor.detection.evaluation import score_corpus
from monitor.detection.language import detect_language
from monitor.detection.matcher import Matcher
from monitor.detection.rulefile import load_rules
from tests.support.devset import fold_of

ROOT = Path(__file__).resolve().parents[1]
DEVSET_ML = ROOT / "tests" / "data" / "devset_ml"
#: A tune-only slice: written after the split, read as ``tune`` whatever its keys.
TUNE_ONLY = re.compile(r"_t\d+\.jsonl$")


def rows_with_folds() -> list[tuple[dict[str, Any], str]]:
    return [
        (row, "tune" if TUNE_ONLY.search(path.name) else fold_of(row["event_key"]))
        for path in sorted(DEVSET_ML.glob("*.jsonl"))
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip() and (row := json.loads(line))
    ]


@pytest.fixture(scope="module")
def shipped() -> Matcher:
    return Matcher(load_rules([ROOT / "rules"]))


def write_language_fold(lang: str, fold: str, out: Path) -> Path:
    chosen = [r for r, f in rows_with_folds() if r["lang"] == lang and f == fold]
    out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in chosen), "utf-8")
    return out


@pytest.mark.parametrize(
    ("lang", "fold", "floor"),
    [
        # (precision, recall, type accuracy)
        # t7 took recall to 0.948; t9 (first sight) to 0.938, its fixes 0.944; t11 joined at 0.937 and type 0.969
        # after its fixes (colloquial posts naming no US side stay wrong); t13 (first sight 0.841 on all three
        # languages) took Arabic to 0.922: posts with no title, a place and a weapon only, stay missed
        ("ar", "tune", (0.97, 0.92, 0.96)),
        ("fa", "tune", (0.97, 0.95, 0.97)),
        ("ckb", "tune", (0.97, 0.92, 0.96)),
        ("ar", "held", (0.95, 0.89, 0.9)),
        ("fa", "held", (0.95, 0.9, 0.95)),
        ("ckb", "held", (0.95, 0.9, 0.95)),
    ],
)
def test_shipped_pack_on_devset_ml(
    shipped: Matcher, tmp_path: Path, lang: str, fold: str, floor: tuple[float, float, float]
) -> None:
    scores = score_corpus(write_language_fold(lang, fold, tmp_path / f"{lang}_{fold}.jsonl"), shipped)
    precision, recall, _ = scores.overall
    figures = (precision, recall, scores.type_accuracy)
    assert all(f >= lowest for f, lowest in zip(figures, floor, strict=True)), figures


def test_tune_only_slices_stay_off_the_held_events() -> None:
    """A slice read as ``tune`` whole reports no event of the held fold (its negatives have keys of their own)."""
    tune_only = [
        json.loads(line)
        for path in sorted(DEVSET_ML.glob("*.jsonl"))
        if TUNE_ONLY.search(path.name)
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    assert len(tune_only) >= 150
    assert [r["id"] for r in tune_only if fold_of(r["event_key"]) != "tune"] == []


def test_language_detection_on_the_labelled_sets() -> None:
    """Told from the whole text and from the headline alone (a Telegram post's first line), every item of
    ``devset_ml`` is in its labelled language and every English article of ``devset2`` is English."""
    rows = [
        json.loads(line)
        for pattern in ("devset_ml/*.jsonl", "devset2/articles_*.jsonl")
        for path in sorted((ROOT / "tests" / "data").glob(pattern))
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    wrong = []
    for row in rows:
        want = row.get("lang", "en")
        headline = row["title"] or row["content"].split("\n")[0]
        for text in ((row["title"], row["summary"], row["content"]), (headline,)):
            if detect_language(*text) != want:
                wrong.append((row["id"], want, text[0][:60]))
    assert len(rows) > 1000 and not wrong, wrong
