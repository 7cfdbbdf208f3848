"""The labelled sets of ``tests/data/devset2``, split by real event so that no event is on both sides.

An event's fold is fixed by its ``event_key`` (SHA-1, even: ``tune``, odd: ``held``), so every report of one event
falls on one side. The rule pack is tuned on ``tune`` only; ``held`` is scored, never read article by article.
Slices written after the split (``e`` to ``v``) were written to avoid the held events and are ``tune`` whole.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

__all__ = ["DEVSET", "TUNE_ONLY_SLICES", "fold_of", "labelled_files", "load", "write_fold"]

DEVSET = Path(__file__).resolve().parents[1] / "data" / "devset2"
TUNE_ONLY_SLICES = frozenset({*"efghijklmnopqrstuvwxyz", "aa", "ab", "ac", "ad", "ae", "af", "ag"})


def labelled_files() -> list[Path]:
    """Every labelled file of ``devset2`` and of ``devset_ml`` (the Arabic-script set), in a fixed order."""
    return [*sorted(DEVSET.glob("*.jsonl")), *sorted((DEVSET.parent / "devset_ml").glob("*.jsonl"))]


def fold_of(event_key: str, slice_name: str = "") -> str:
    if slice_name in TUNE_ONLY_SLICES:
        return "tune"
    return "tune" if int(hashlib.sha1(event_key.encode()).hexdigest(), 16) % 2 == 0 else "held"


def load(kind: str, fold: str, slices: str = "abcd") -> list[dict[str, Any]]:
    """``kind``: ``articles`` or ``headlines``; ``fold``: ``tune`` or ``held``."""
    rows = []
    for name in slices:
        path = DEVSET / f"{kind}_{name}.jsonl"
        if not path.exists():
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line) if line.strip() else None
            if row is not None and fold_of(row["event_key"], name) == fold:
                rows.append(row)
    return rows


def write_fold(kind: str, fold: str, out: Path, slices: str = "abcd") -> Path:
    """The fold as a JSON Lines file (for ``monitor rules test --corpus`` and ``monitor replay``)."""
    out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in load(kind, fold, slices)), "utf-8")
    return out
