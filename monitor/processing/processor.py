"""From parsed articles to enqueued alerts: age check, matching, event clustering, escalation.

``Processor.process`` is the part of the daemon tick that runs after a feed was fetched and parsed; ``monitor
once``, ``monitor replay`` and tests call the same function. Dedup is layered: the article's identity (GUID /
canonical URL) is claimed once; an exact fingerprint of its text points a syndicated copy at the event its first
copy joined; MinHash band keys and salient entities find the candidate events a new article may belong to.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import structlog

from monitor.config import EscalationConfig, EventsConfig
from monitor.core.clock import Clock
from monitor.core.models import Article, Match, ProcessResult
from monitor.core.observe import NULL_OBSERVER, Observer
from monitor.detection.language import article_language
from monitor.detection.matcher import Matcher
from monitor.detection.text import normalize
from monitor.events.alerts import escalation_alert, event_alert
from monitor.events.cluster import (
    CLOSE_IN_TIME,
    EARLY_SLACK,
    FOLLOW_UP_REACH,
    RELATED_MARGIN,
    EventPolicy,
    EventState,
    add_article,
    event_time,
    family_of,
    is_follow_up,
    join_score,
    joinable_families,
    new_event,
    salient_entities,
)
from monitor.events.escalation import EscalationPolicy, EventPoint, read_index
from monitor.events.similarity import band_keys, minhash, shingles
from monitor.storage.events import EventStore

__all__ = ["ProcessResult", "Processor", "fingerprint", "policies"]

_FINGERPRINT_CHARS = 300
log = structlog.get_logger(__name__)


def fingerprint(article: Article) -> str | None:
    """Hash of the normalised title and opening text: the same wire copy under another URL has the same one."""
    title = normalize(article.title).strip()
    if len(title) < 20:
        return None  # too short to say two articles are the same story
    opening = normalize((article.summary or article.content)[:_FINGERPRINT_CHARS]).strip()
    return hashlib.sha1(f"{title}\n{opening}".encode(), usedforsecurity=False).hexdigest()[:24]


def policies(events: EventsConfig, escalation: EscalationConfig) -> tuple[EventPolicy, EscalationPolicy]:
    event_policy = EventPolicy(
        window=timedelta(hours=events.window_hours),
        windows={family_of(t): timedelta(hours=h) for t, h in events.window_hours_by_type.items()},
        join_threshold=events.join_threshold,
        revise_on_severity=events.revise_on_severity,
        revise_on_confirmation=events.revise_on_confirmation,
        revise_on_casualties=events.revise_on_casualties,
        outlet_thresholds=tuple(events.outlet_thresholds),
    )
    escalation_policy = EscalationPolicy(
        half_life=timedelta(hours=escalation.half_life_hours),
        thresholds=(
            escalation.thresholds[0],
            escalation.thresholds[1],
            escalation.thresholds[2],
            escalation.thresholds[3],
        ),
        hysteresis=escalation.hysteresis,
    )
    return event_policy, escalation_policy


@dataclass(frozen=True, slots=True)
class _Outcome:
    kind: str  # "new", "revised", "joined", "duplicate"
    event: EventState | None = None


class Processor:
    def __init__(
        self,
        matcher: Matcher,
        events: EventStore,
        clock: Clock,
        *,
        max_age_hours: float,
        event_policy: EventPolicy,
        escalation_policy: EscalationPolicy,
        observer: Observer = NULL_OBSERVER,
    ) -> None:
        self.matcher = matcher
        self.observer = observer
        self.events = events
        self.clock = clock
        self.max_age = timedelta(hours=max_age_hours) if max_age_hours > 0 else None
        self.event_policy = event_policy
        self.escalation_policy = escalation_policy
        self._types: Mapping[str, str] = {e.id: e.type for e in matcher.ruleset.entities.values()}
        self._rule_types: Mapping[str, str] = {r.id: r.event_type for r in matcher.ruleset.rules}
        self._longest_window = max([event_policy.window, *event_policy.windows.values()])

    def too_old(self, article: Article) -> bool:
        if self.max_age is None:
            return False
        moment = article.published or article.fetched
        return moment < self.clock.now() - self.max_age

    async def process(self, articles: Sequence[Article]) -> ProcessResult:
        """Match every article and fold the matching ones into events. Raises ``StoreError``."""
        counts = {"too_old": 0, "matched": 0, "new": 0, "revised": 0, "joined": 0, "duplicate": 0}
        trigger: EventState | None = None
        placed: list[tuple[str, str]] = []
        now = self.clock.now()
        # Oldest story first, as if read live: a backlog read at once forms the events it would have formed.
        for article in sorted(articles, key=lambda a: event_time(a, now, self.max_age)):
            if self.too_old(article):
                counts["too_old"] += 1
                continue
            article = replace(article, language=article_language(article))  # told from the text when in Arabic script
            match = self.matcher.match_article(article)
            if match.shadow_rules:
                log.info("shadow_rule_matched", feed=article.feed, article=article.id, rules=list(match.shadow_rules))
            if not match.alert:
                continue
            counts["matched"] += 1
            if await self.events.claimed(article.id):  # the common case on a re-poll: nothing to compute
                counts["duplicate"] += 1
                continue
            self.observer.rules_matched(match.rules)  # new articles only, so re-polls do not inflate the counts
            outcome = await self._cluster(article, match)
            counts[outcome.kind] += 1
            if outcome.event is not None and outcome.kind == "new":
                self.observer.event_opened(outcome.event.event_type)
            elif outcome.event is not None and outcome.kind == "revised":
                self.observer.event_revised(outcome.event.event_type)
            if outcome.event is not None:
                placed.append((article.id, outcome.event.id))
            if outcome.kind in ("new", "revised") and outcome.event is not None:
                trigger = outcome.event
        if trigger is not None:
            # Once per batch: a feed bringing three new events moves the level once, with one alert.
            await self._update_escalation(trigger)
        return ProcessResult(
            len(articles),
            counts["too_old"],
            counts["matched"],
            counts["new"],
            counts["revised"],
            counts["joined"],
            counts["duplicate"],
            tuple(placed),
        )

    async def _cluster(self, article: Article, match: Match) -> _Outcome:
        assert match.event_type is not None
        now = self.clock.now()
        at = event_time(article, now, self.max_age)
        families = joinable_families(match.event_type, (self._rule_types.get(r, "") for r in match.rules))
        text = f"{article.title}\n{article.summary}\n{article.content}"
        signature = minhash(shingles(text))
        bands = band_keys(signature)
        salient = salient_entities(match.entities, self._types)
        focus = salient_entities(match.focus, self._types)
        digest = fingerprint(article)
        async with contextlib.AsyncExitStack() as locks:
            for name in sorted(families):  # one order everywhere: two polls never wait on each other's locks
                await locks.enter_async_context(self.events.lock(name))
            copy_of, candidates = await self.events.candidates(
                fingerprint=digest,
                bands=bands,
                salient=sorted(salient),
                around=at,
                reach=self._longest_window + EARLY_SLACK + FOLLOW_UP_REACH,
                families=families,
                close=CLOSE_IN_TIME,
            )
            best = self._best(
                candidates, copy_of, families, (salient, focus), signature, at, is_follow_up(article.title)
            )
            reasons: list[str] = []
            if best is None:
                event = new_event(
                    self._new_id(article), article, match, salient=salient, signature=signature, now=now, at=at,
                    focus=focus,
                )  # fmt: skip
                alert: dict[str, Any] | None = event_alert(event, escalation_level=await self._level_with(event))
                kind = "new"
            else:
                event, reasons = add_article(
                    best, article, match, salient=salient, signature=signature, now=now,
                    policy=self.event_policy, at=at, focus=focus,
                )  # fmt: skip
                alert = (
                    event_alert(event, escalation_level=await self._level_with(event), changes=reasons)
                    if reasons
                    else None
                )
                kind = "revised" if reasons else "joined"
            committed = await self.events.commit(
                article_id=article.id,
                fingerprint=digest,
                event=event,
                bands=bands,
                salient=sorted(salient),
                alert=alert,
                now=now,
            )
            if not committed:
                return _Outcome("duplicate")
            _log_outcome(kind, event, article, match, reasons)
            return _Outcome(kind, event)

    def _best(
        self,
        candidates: Sequence[EventState],
        copy_of: str | None,
        families: Sequence[str],
        named: tuple[frozenset[str], frozenset[str]],
        signature: np.ndarray,
        at: datetime,
        follow_up: bool = False,
    ) -> EventState | None:
        """The event the article joins, if any: the best-scoring candidate of its own family, or of a related one
        (``families[1:]``) by a margin."""
        scored = []
        for event in candidates:
            if event.family not in families:
                continue
            if event.id == copy_of:
                return event  # an exact copy of an article already in this event
            score = join_score(
                event,
                family=event.family,
                salient=named[0],
                focus=named[1],
                follow_up=follow_up,
                signature=signature,
                at=at,
                types=self._types,
                policy=self.event_policy,
            )
            needed = self.event_policy.join_threshold + (0.0 if event.family == families[0] else RELATED_MARGIN)
            if score >= needed:
                scored.append((score, event.first_seen, event))
        if not scored:
            return None
        scored.sort(key=lambda s: (s[0], s[1]), reverse=True)
        return scored[0][2]

    def _new_id(self, article: Article) -> str:
        return "ev_" + hashlib.sha1(article.id.encode(), usedforsecurity=False).hexdigest()[:20]

    async def _level_with(self, event: EventState) -> int:
        """The escalation level counting ``event`` as it is about to be stored."""
        now = self.clock.now()
        points = [p for p in await self.events.points(now - timedelta(days=35)) if p.event_id != event.id]
        points.append(EventPoint(event.event_type, event.severity, datetime.fromisoformat(event.first_seen), event.id))
        return read_index(points, now, await self.events.level(), self.escalation_policy).level

    async def refresh_escalation(self) -> None:
        """Re-read the index with no new event, so the level also falls as events age (a daemon job runs it)."""
        await self._update_escalation(None)

    async def _update_escalation(self, trigger: EventState | None) -> None:
        """Recompute the index after an event changed; a level change is itself an alert (once, across replicas)."""
        now = self.clock.now()
        previous = await self.events.level()
        reading = read_index(await self.events.points(now - timedelta(days=35)), now, previous, self.escalation_policy)
        if reading.level == previous:
            return
        alert = escalation_alert(previous=previous, reading=reading, trigger=trigger, now=now)
        if await self.events.change_level(
            previous=previous, level=reading.level, score=reading.score, alert=alert, now=now
        ):
            log.info(
                "escalation_changed", previous=previous, level=reading.level, score=reading.score, surge=reading.surge
            )


def _log_outcome(kind: str, event: EventState, article: Article, match: Match, reasons: list[str]) -> None:
    bound = log.bind(feed=article.feed, article=article.id)
    if kind == "new":
        bound.info(
            "event_opened",
            event_id=event.id,
            event_type=event.event_type,
            severity=event.severity,
            rules=list(match.rules),
            title=article.title,
        )
    elif kind == "revised":
        bound.info("event_revised", event_id=event.id, revision=event.revision, reasons=reasons)
    else:
        bound.info("event_joined", event_id=event.id, sources=len(event.sources))
