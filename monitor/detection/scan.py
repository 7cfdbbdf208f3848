"""``monitor scan``: classify articles offline and write one JSON object per article (the scan contract)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TextIO

from monitor.core.models import Article, Match
from monitor.detection.matcher import Matcher
from monitor.parsing.files import Document, read_documents

__all__ = ["scan", "scan_documents", "scan_record"]


def scan_record(article: Article, match: Match, *, evidence: bool = False) -> dict[str, Any]:
    """The contract's output object for one article (``matched`` is true exactly when it would alert)."""
    return _record(Document(article.id, article.url, article.title, "", ""), match, evidence=evidence)


def _record(article: Document, match: Match, *, evidence: bool) -> dict[str, Any]:
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


_BATCH = 1000  # documents matched and written at once
_encode = json.encoder.encode_basestring  # a JSON string, non-ASCII kept (what ``ensure_ascii=False`` writes)


def _line(doc: Document, match: Match) -> str:
    """``scan_record`` without evidence, as ``json.dumps(..., ensure_ascii=False, separators=(", ", ": "))``
    writes it, built directly: the one line per article most of a big scan is made of."""
    alert = match.alert
    if not alert and not match.rules:  # most lines: fewer steps
        return (
            f'{{"id": {_encode(doc.id)}, "url": {_encode(doc.url)}, "title": {_encode(doc.title)}, "matched": false, '
            f'"event_type": null, "severity": {match.severity!r}, "score": {match.score!r}, "rules": [], '
            f'"entities": [{", ".join(map(_encode, match.entities))}]}}\n'
        )
    return (
        f'{{"id": {_encode(doc.id)}, "url": {_encode(doc.url)}, "title": {_encode(doc.title)}, '
        f'"matched": {"true" if alert else "false"}, '
        f'"event_type": {_encode(match.event_type) if alert and match.event_type is not None else "null"}, '
        f'"severity": {match.severity!r}, "score": {match.score!r}, '
        f'"rules": [{", ".join(map(_encode, match.rules))}], '
        f'"entities": [{", ".join(map(_encode, match.entities))}]}}\n'
    )


def scan_documents(docs: Iterable[Document], matcher: Matcher, *, out: TextIO, evidence: bool = False) -> int:
    """Write one line per document, classified by ``matcher`` at its threshold; returns how many were read. The
    documents are matched and written in batches; those read before an error are written before it propagates."""
    count = 0
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(", ", ": ")).encode
    batch: list[Document] = []

    def write() -> None:
        nonlocal count
        done = batch[:]
        batch.clear()
        matches = matcher.match_many([d[2:] for d in done])  # (title, summary, content)
        if evidence:
            out.write("".join(dumps(_record(d, m, evidence=True)) + "\n" for d, m in zip(done, matches, strict=True)))
        else:
            out.write("".join(map(_line, done, matches)))
        count += len(done)

    try:
        for doc in docs:
            batch.append(doc)
            if len(batch) == _BATCH:
                write()
    finally:
        if batch:
            write()
        out.flush()
    return count


def scan(paths: list[Path], matcher: Matcher, *, out: TextIO, evidence: bool = False) -> int:
    """Write one line per article, classified by ``matcher`` at its threshold; returns how many were read."""
    return scan_documents(read_documents(paths), matcher, out=out, evidence=evidence)
