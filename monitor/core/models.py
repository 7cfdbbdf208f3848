"""The normalised units the pipeline passes along. Built once, immutable, free of I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

__all__ = ["Article", "Evidence", "Match"]


@dataclass(frozen=True, slots=True)
class Article:
    """One feed entry (or one scanned document), normalised.

    ``id`` is the identity key used for dedup: a hash of the GUID, else of the canonical URL,
    else of the normalised title and text.
    """

    id: str
    feed: str
    url: str
    guid: str | None
    title: str
    summary: str
    content: str
    published: datetime | None
    fetched: datetime
    language: str | None = None


@dataclass(frozen=True, slots=True)
class Evidence:
    """A phrase that made a rule fire, with its place in the normalised field text."""

    rule: str
    selection: str
    field: str
    phrase: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Match:
    """What the rules found in one article.

    ``alert`` is true exactly when the article would raise an alert at the configured threshold:
    a non-experimental rule fired at a severity at or above ``min_severity``.
    """

    rules: tuple[str, ...]
    event_type: str | None
    severity: int
    score: float
    entities: tuple[str, ...]
    evidence: tuple[Evidence, ...]
    alert: bool
    shadow_rules: tuple[str, ...] = field(default=())
