"""From parsed articles to enqueued alerts: age check, matching, dedup claim, payload.

``Processor.process`` is the part of the daemon tick that runs after a feed was fetched and parsed; ``monitor
once`` and tests call the same function. Matching runs on the event loop: it costs tens of microseconds an
article, far below what a thread hand-off would.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

import structlog

from monitor.clock import Clock
from monitor.matcher import Matcher
from monitor.models import Article, Match
from monitor.payload import event_payload
from monitor.store import Store
from monitor.textnorm import normalize

__all__ = ["ESCALATION_WINDOW_S", "ProcessResult", "Processor", "event_id_for", "fingerprint"]

#: The escalation level reported with an alert is, for now, the highest severity alerted in this window.
ESCALATION_WINDOW_S = 24 * 3600
_FINGERPRINT_CHARS = 300

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class ProcessResult:
    articles: int = 0
    too_old: int = 0
    matched: int = 0
    alerted: int = 0
    duplicates: int = 0


def fingerprint(article: Article) -> str | None:
    """Hash of the normalised title and opening text: the same wire copy under another URL has the same one."""
    title = normalize(article.title).strip()
    if len(title) < 20:
        return None  # too short to say two articles are the same story
    opening = normalize((article.summary or article.content)[:_FINGERPRINT_CHARS]).strip()
    return hashlib.sha1(f"{title}\n{opening}".encode(), usedforsecurity=False).hexdigest()[:24]


def event_id_for(article: Article) -> str:
    """One alert per article for now; the events issue clusters articles into shared event ids."""
    return "ev_" + hashlib.sha1(article.id.encode(), usedforsecurity=False).hexdigest()[:20]


class Processor:
    def __init__(self, matcher: Matcher, store: Store, clock: Clock, *, max_age_hours: float) -> None:
        self.matcher = matcher
        self.store = store
        self.clock = clock
        self.max_age = timedelta(hours=max_age_hours) if max_age_hours > 0 else None

    def too_old(self, article: Article) -> bool:
        if self.max_age is None:
            return False
        moment = article.published or article.fetched
        return moment < self.clock.now() - self.max_age

    async def process(self, articles: Sequence[Article]) -> ProcessResult:
        """Match every article and enqueue one alert per new matching article. Raises ``StoreError``."""
        too_old = matched = alerted = duplicates = 0
        for article in articles:
            if self.too_old(article):
                too_old += 1
                continue
            match = self.matcher.match_article(article)
            if match.shadow_rules:
                log.info("shadow_rule_matched", feed=article.feed, article=article.id, rules=list(match.shadow_rules))
            if not match.alert:
                continue
            matched += 1
            if await self.store.seen(article.id):  # the common case on a re-poll: skip the payload work
                duplicates += 1
            elif await self._alert(article, match):
                alerted += 1
            else:
                duplicates += 1
        return ProcessResult(len(articles), too_old, matched, alerted, duplicates)

    async def _alert(self, article: Article, match: Match) -> bool:
        now = self.clock.now()
        event_id = event_id_for(article)
        level = await self.store.note_event(event_id, match.severity, now, ESCALATION_WINDOW_S)
        payload = event_payload(
            event_id=event_id,
            revision=1,
            match=match,
            articles=[article],
            first_seen=now,
            updated=now,
            escalation_level=level,
        )
        fresh = await self.store.claim_and_enqueue(article.id, fingerprint(article), payload)
        bound = log.bind(feed=article.feed, article=article.id, event=event_id)
        if fresh:
            bound.info(
                "alert_enqueued",
                event_type=match.event_type,
                severity=match.severity,
                rules=list(match.rules),
                title=article.title,
            )
        else:
            bound.debug("article_duplicate")
        return fresh
