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

from monitor.core.clock import Clock
from monitor.core.models import Article, Match, ProcessResult
from monitor.core.observe import NULL_OBSERVER, Observer
from monitor.detection.language import article_language
from monitor.detection.matcher import Matcher
from monitor.detection.rulefile.compile import base_towns
from monitor.detection.text import normalize
from monitor.events.alerts import escalation_alert, event_alert
from monitor.events.cluster import EventPolicy, EventState, add_article, lent_names, new_event
from monitor.events.escalation import EscalationPolicy, EventPoint, read_index
from monitor.events.joining import (
    EARLY_SLACK,
    best_event,
    event_time,
    follow_up_of,
    joinable_families,
    salient_entities,
)
from monitor.events.lookup import family_lookup, looked_up
from monitor.events.similarity import band_keys, minhash, shingles
from monitor.storage.dashboard import DashboardStore
from monitor.storage.events import EventStore
from monitor.storage.generation import Generation

__all__ = ["ProcessResult", "Processor", "fingerprint"]

_FINGERPRINT_CHARS = 300
_COUNTS = ("too_old", "matched", "new", "revised", "joined", "duplicate")
log = structlog.get_logger(__name__)


def fingerprint(article: Article) -> str | None:
    """Hash of the normalised title and opening text: the same wire copy under another URL has the same one."""
    title = normalize(article.title).strip()
    if len(title) < 20:
        return None  # too short to say two articles are the same story
    opening = normalize((article.summary or article.content)[:_FINGERPRINT_CHARS]).strip()
    return hashlib.sha1(f"{title}\n{opening}".encode(), usedforsecurity=False).hexdigest()[:24]


@dataclass(frozen=True, slots=True)
class _Outcome:
    kind: str  # "new", "revised", "joined", "duplicate"
    event: EventState | None = None
    reasons: tuple[str, ...] = ()  # why a revision was sent


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
        generation: Generation | None = None,
    ) -> None:
        self.matcher = matcher
        self.generation = generation
        self.observer = observer
        self.events = events
        self.dashboard = DashboardStore(events.redis, events.keys)  # what the web dashboard shows
        self.clock = clock
        self.max_age = timedelta(hours=max_age_hours) if max_age_hours > 0 else None
        self.event_policy = event_policy
        self.escalation_policy = escalation_policy
        self._gazetteer = matcher.ruleset.entities  # the English names alerts show
        self._types: Mapping[str, str] = {e.id: e.type for e in matcher.ruleset.entities.values()}
        # What each entity lies in, and the base a town stands for ("rockets on Balad"): both tell events apart.
        towns = base_towns(matcher.ruleset.entities)
        self._within: Mapping[str, tuple[str, ...]] = {
            e.id: (*e.within, *towns.get(e.id, ()))
            for e in matcher.ruleset.entities.values()
            if e.within or e.id in towns
        }
        self._rule_types: Mapping[str, str] = {r.id: r.event_type for r in matcher.ruleset.rules}
        self._longest_window = max([event_policy.window, *event_policy.windows.values()])

    def too_old(self, article: Article) -> bool:
        if self.max_age is None:
            return False
        moment = article.published or article.fetched
        return moment < self.clock.now() - self.max_age

    async def process(self, articles: Sequence[Article]) -> ProcessResult:
        """Match every article and fold the matching ones into events. Raises ``StoreError``.

        After Redis lost its state (see ``monitor.storage.generation``) the first read of a feed is silent up to
        the feed's last read before the loss: those articles are claimed and rebuild their events, nothing alerts.
        """
        return (await self.process_many([articles]))[0]

    async def process_many(self, batches: Sequence[Sequence[Article]]) -> list[ProcessResult]:
        """``process`` for several feeds' batches at once: every article in one order, oldest story first, as if
        read live; each batch's own result."""
        counts = [dict.fromkeys(_COUNTS, 0) for _ in batches]
        placed: list[list[tuple[str, str]]] = [[] for _ in batches]
        trigger: EventState | None = None
        silenced: dict[str, int] = {}
        everything = [article for batch in batches for article in batch]
        cutoffs = await self._cutoffs(everything)
        now = self.clock.now()
        # Oldest story first, as if read live: a backlog read at once forms the events it would have formed.
        order = sorted(
            ((i, article) for i, batch in enumerate(batches) for article in batch),
            key=lambda pair: event_time(pair[1], now, self.max_age),
        )
        for i, article in order:
            outcome = await self._handle(article, counts[i], cutoffs, silenced, now)
            if outcome is None or outcome.event is None:
                continue
            placed[i].append((article.id, outcome.event.id))
            if outcome.kind in ("new", "revised"):
                trigger = outcome.event
        if trigger is not None or silenced:
            # Once per batch: a feed bringing three new events moves the level once, with one alert.
            await self._update_escalation(trigger, silent=trigger is None)
        self._read(everything, silenced)
        return [_result(len(b), c, tuple(p)) for b, c, p in zip(batches, counts, placed, strict=True)]

    async def _handle(
        self,
        article: Article,
        counts: dict[str, int],
        cutoffs: Mapping[str, datetime],
        silenced: dict[str, int],
        now: datetime,
    ) -> _Outcome | None:
        """Match one article and, when it matches and is new, place it in an event (silently when its feed is
        re-read after a loss of Redis' state); its outcome, or None when it did not reach an event."""
        if self.too_old(article):
            counts["too_old"] += 1
            return None
        article = replace(article, language=article_language(article))  # told from the text when in Arabic script
        match = self.matcher.match(article.title, article.summary, article.content, lang=article.language)
        if match.shadow_rules:
            log.info("shadow_rule_matched", feed=article.feed, article=article.id, rules=list(match.shadow_rules))
            async with self.dashboard.safely("shadow hits"):
                await self.dashboard.count_hits(now, (), match.shadow_rules, article.id)
        if not match.alert:
            return None
        counts["matched"] += 1
        if await self.events.claimed(article.id):  # the common case on a re-poll: nothing to compute
            counts["duplicate"] += 1
            return None
        if _read_before(article, cutoffs):
            outcome = await self._cluster(article, match, silent=True)
            counts["duplicate"] += 1  # alerted before the loss
            silenced[article.feed] = silenced.get(article.feed, 0) + (outcome.event is not None)
            return None
        outcome = await self._place(article, match, counts)
        if outcome.event is not None:
            async with self.dashboard.safely("lead times and revisions"):
                await self.dashboard.record_lead(outcome.event, article.feed)
                if outcome.kind in ("new", "revised"):
                    await self.dashboard.record_revision(outcome.event, outcome.reasons, now)
        return outcome

    async def _place(self, article: Article, match: Match, counts: dict[str, int]) -> _Outcome:
        """Cluster a new matching article (its alert enqueued if it opens or revises an event) and count it."""
        self.observer.rules_matched(match.rules)  # new articles only, so re-polls do not inflate the counts
        async with self.dashboard.safely("rule hits"):
            await self.dashboard.count_hits(self.clock.now(), match.rules, (), article.id)
        outcome = await self._cluster(article, match)
        counts[outcome.kind] += 1
        if outcome.event is not None and outcome.kind == "new":
            self.observer.event_opened(outcome.event.event_type)
        elif outcome.event is not None and outcome.kind == "revised":
            self.observer.event_revised(outcome.event.event_type)
        return outcome

    async def _cutoffs(self, articles: Sequence[Article]) -> dict[str, datetime]:
        """Each feed of the batch still to be re-read silently, with the moment it was last read before the loss."""
        if self.generation is None:
            return {}
        await self.generation.check()
        found = {a.feed: self.generation.cutoff(a.feed) for a in articles}
        return {feed: at for feed, at in found.items() if at is not None}

    def _read(self, articles: Sequence[Article], silenced: Mapping[str, int]) -> None:
        """Tell the generation the batch's feeds were read (which ends their silent re-read)."""
        if self.generation is None:
            return
        fetched: dict[str, datetime] = {}
        for article in articles:
            fetched[article.feed] = max(article.fetched, fetched.get(article.feed, article.fetched))
        for feed, at in fetched.items():
            if self.generation.read(feed, at):
                log.warning("feed_reread_silently", feed=feed, events_rebuilt=silenced.get(feed, 0))

    async def _cluster(self, article: Article, match: Match, *, silent: bool = False) -> _Outcome:
        assert match.event_type is not None
        families = joinable_families(match.event_type, (self._rule_types.get(r, "") for r in match.rules))
        locked = tuple(families)
        while True:
            outcome = await self._cluster_locked(article, match, families, locked, silent)
            if isinstance(outcome, _Outcome):
                return outcome
            locked = (*locked, outcome)  # the article joins an event of a family not locked yet: lock it, again

    async def _cluster_locked(
        self, article: Article, match: Match, families: Sequence[str], locked: Sequence[str], silent: bool
    ) -> _Outcome | str:
        """Place the article holding the clustering locks of ``locked``; or, when it would join an event of a
        family not among them, that family (the caller takes its lock too and places the article again)."""
        now = self.clock.now()
        at = event_time(article, now, self.max_age)
        text = f"{article.title}\n{article.summary}\n{article.content}"
        signature = minhash(shingles(text))
        bands = band_keys(signature)
        named = (
            salient_entities(match.entities, self._types, self._within),
            salient_entities(match.focus, self._types, self._within),
        )
        digest = fingerprint(article)
        # how much longer than its family's window an event stays open to this report (candidates no older)
        follow_up, dead, tally, day = follow_up_of(article.title, match.aftermath, article)
        async with contextlib.AsyncExitStack() as locks:
            for name in sorted(set(locked)):  # one order everywhere: two polls never wait on each other's locks
                await locks.enter_async_context(self.events.lock(name))
            copy_of, candidates = await self.events.candidates(
                fingerprint=digest,
                bands=bands,
                salient=sorted(named[0]),
                around=at,
                reach=self._longest_window + EARLY_SLACK + follow_up,
                families=looked_up(families, day),
                close=family_lookup(follow_up, dead, told=day, at=at),
            )
            best = best_event(
                candidates, copy_of=copy_of, families=families, named=named, signature=signature, at=at, dead=dead,
                types=self._types, policy=self.event_policy, follow_up=follow_up, weapons=frozenset(match.weapons),
                tally=tally, day=day,
            )  # fmt: skip
            if best is not None and best.family not in locked:
                return best.family
            event, reasons, alert, kind = await self._placement(best, article, match, named, signature, now, at, silent)
            committed = await self.events.commit(
                article_id=article.id,
                fingerprint=digest,
                event=event,
                bands=bands,
                salient=sorted(named[0]),
                alert=alert,
                now=now,
                generation=self.generation.token if self.generation is not None else None,
            )
            if not committed:
                return _Outcome("duplicate")
            if not silent:
                _log_outcome(kind, event, article, match, reasons)
            return _Outcome(kind, event, tuple(reasons))

    async def _placement(
        self,
        best: EventState | None,
        article: Article,
        match: Match,
        named: tuple[frozenset[str], frozenset[str]],
        signature: np.ndarray,
        now: datetime,
        at: datetime,
        silent: bool,
    ) -> tuple[EventState, list[str], dict[str, Any] | None, str]:
        """The article as a new event or added to ``best``: the event, why it is revised, its alert (none when
        ``silent`` or nothing changed) and what happened (``new``, ``revised`` or ``joined``)."""
        salient, focus = named
        if best is None:
            event = new_event(
                self._new_id(article), article, match, salient=salient, signature=signature, now=now, at=at,
                focus=focus,
            )  # fmt: skip
            alert = None
            if not silent:
                alert = event_alert(event, escalation_level=await self._level_with(event), gazetteer=self._gazetteer)
            return event, [], alert, "new"
        salient, focus = lent_names(article.title, salient, focus, self._types)
        event, reasons = add_article(
            best, article, match, salient=salient, signature=signature, now=now,
            policy=self.event_policy, at=at, focus=focus,
        )  # fmt: skip
        if not reasons or silent:
            return event, reasons, None, "revised" if reasons else "joined"
        level = await self._level_with(event)
        alert = event_alert(event, escalation_level=level, changes=reasons, gazetteer=self._gazetteer)
        return event, reasons, alert, "revised"

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

    async def _update_escalation(self, trigger: EventState | None, *, silent: bool = False) -> None:
        """Recompute the index after an event changed; a level change is itself an alert (once, across replicas),
        except while events are rebuilt silently after a loss of Redis' state."""
        now = self.clock.now()
        previous = await self.events.level()
        reading = read_index(await self.events.points(now - timedelta(days=35)), now, previous, self.escalation_policy)
        async with self.dashboard.safely("escalation history"):
            await self.dashboard.record_index(now, reading.score, reading.level, changed=reading.level != previous)
        if reading.level == previous:
            return
        alert = None if silent else escalation_alert(previous=previous, reading=reading, trigger=trigger, now=now)
        if await self.events.change_level(
            previous=previous, level=reading.level, score=reading.score, alert=alert, now=now
        ):
            log.info(
                "escalation_changed",
                previous=previous,
                level=reading.level,
                score=reading.score,
                surge=reading.surge,
                silent=silent,
            )


def _result(total: int, c: Mapping[str, int], placed: tuple[tuple[str, str], ...]) -> ProcessResult:
    return ProcessResult(total, c["too_old"], c["matched"], c["new"], c["revised"], c["joined"], c["duplicate"], placed)


def _read_before(article: Article, cutoffs: Mapping[str, datetime]) -> bool:
    """Whether the article's feed is re-read silently and the article was published (or, undated, listed) before
    the feed's last read. Feeds date to the second at best: one dated within the second of that read may have
    come after it, and alerts (an alert twice rather than none)."""
    cutoff = cutoffs.get(article.feed)
    return cutoff is not None and (article.published is None or article.published < cutoff.replace(microsecond=0))


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
