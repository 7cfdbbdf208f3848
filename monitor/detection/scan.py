"""``monitor scan``: classify articles offline and write one JSON object per article (the scan contract)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TextIO

from monitor.core.models import Article, Match
from monitor.detection.matcher import Matcher
from monitor.parsing.files import read_articles

__all__ = ["scan", "scan_record"]


def scan_record(article: Article, match: Match, *, evidence: bool = False) -> dict[str, Any]:
    """The contract's output object for one article (``matched`` is true exactly when it would alert)."""
    record: dict[str, Any] = {
        "id": article.id,
        "url": article.url,
        "title": article.title,
        "matched": match.alert,
        "event_type": match.event_type if match.alert else None,
        "severity": match.severity,
        "score": match.score,
        "rules": list(match.rules),
        "entities": list(match.entities),
    }
    if evidence:
        record["evidence"] = [
            {
                "rule": e.rule,
                "selection": e.selection,
                "field": e.field,
                "phrase": e.phrase,
                "start": e.start,
                "end": e.end,
            }
            for e in match.evidence
        ]
        record["shadow_rules"] = list(match.shadow_rules)
    return record


def scan(paths: list[Path], matcher: Matcher, *, out: TextIO, evidence: bool = False) -> int:
    """Write one line per article, classified by ``matcher`` at its threshold; returns how many were read."""
    count = 0
    write = out.write
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(", ", ": ")).encode
    for article in read_articles(paths):
        write(dumps(scan_record(article, matcher.match_article(article), evidence=evidence)) + "\n")
        count += 1
    out.flush()
    return count
