"""The normalised units the pipeline passes along. Built once, immutable, free of I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

__all__ = ["Article", "Evidence", "Match", "PollResult", "ProcessResult", "Validators"]


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
    #: The entities named in the headline or the lead (the summary, else the body's first sentence): what the
    #: story is about, as opposed to what it mentions.
    focus: tuple[str, ...] = field(default=())
    #: The kinds of weapon the headline and the lead say were used (``detection.weapons.KINDS``).
    weapons: tuple[str, ...] = field(default=())
    #: The headline reports what followed the story, not the story: its rule fires on the headline only with what
    #: the headline names as the cause ("security tightened at Nineveh headquarters after rocket").
    aftermath: bool = False


@dataclass(frozen=True, slots=True)
class Validators:
    """HTTP cache validators of a feed, sent back as ``If-None-Match`` / ``If-Modified-Since``."""

    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True, slots=True)
class PollResult:
    """What one poll of a feed did, as recorded in its health hash: when, whether it succeeded, the HTTP status,
    the number of items, how long it took, the error; on success the interval to remember, the body's digest and
    the validators to send next time (only once the articles are processed: a crash before re-fetches the feed)."""

    at: datetime
    ok: bool
    status: int | None
    items: int
    latency_s: float
    error: str | None = None
    interval_s: float | None = None
    body_digest: str | None = None
    validators: Validators | None = None
    #: Where an incremental source goes on from next time (a Telegram channel: ``name/last post id``).
    cursor: str | None = None


@dataclass(frozen=True, slots=True)
class ProcessResult:
    """What processing a batch of articles did, by count."""

    articles: int = 0
    too_old: int = 0
    matched: int = 0
    alerted: int = 0  # new events
    revised: int = 0  # revision alerts
    joined: int = 0  # articles that joined an event without an alert
    duplicates: int = 0  # articles claimed before
    #: (article id, event id) for each article that opened, revised or joined an event, in processing order.
    placed: tuple[tuple[str, str], ...] = ()
