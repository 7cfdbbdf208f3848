"""What the dashboard reads and the little it needs written for it: the escalation index over time, rule hits per
day, pages of events by first-seen time, the alerts of a period and the lead-time scoreboard of the feeds.

Every read is bounded: a page of the events index (``ZREVRANGEBYSCORE`` with a limit, then one ``MGET``), a range of
the alert log by stream id (time), the index samples of a period, one small hash per day of rule hits. Nothing
scans the keyspace. The writes are the pipeline's (``Processor``): they never fail it, a Redis error there only
loses a sample (see ``DashboardStore.safely``).

- Index samples: sorted set by time, member ``<ms>:<score>:<level>``; at most one every ``SAMPLE_EVERY_S`` unless
  the level changed, kept ``HISTORY_S`` (30 days and a little).
- Rule hits: one hash per UTC day, rule id -> new articles matched (an alert rule counts a new article once;
  a shadow rule counts each article once, by a HyperLogLog per rule and day), kept ``HITS_TTL_S``.
- Revisions: one list per event of its alerted revisions (when, severity, what changed), kept as long as the event.
- Lead times: one hash per feed, ``first`` (events it reported first) and ``leads`` (its lead over the next
  outlet, in minutes, a list of the last ``LEADS_KEPT``): written when an event's second outlet arrives.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from monitor.core.errors import StoreError
from monitor.events.cluster import EventState
from monitor.storage.connection import store_errors
from monitor.storage.keys import EVENT_TTL_S, Keys

__all__ = ["AlertEntry", "DashboardStore", "IndexSample", "LeadRecord"]

SAMPLE_EVERY_S = 1800  # the chart spans 30 days: a sample per half hour is finer than its pixels
HISTORY_S = 31 * 24 * 3600
HITS_TTL_S = 9 * 24 * 3600
LEADS_KEPT = 200
REVISIONS_KEPT = 100
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class IndexSample:
    at: datetime
    score: float
    level: int


@dataclass(frozen=True, slots=True)
class AlertEntry:
    """One alert of the alert log, with when it was logged."""

    at: datetime
    alert: dict[str, Any]


@dataclass(frozen=True, slots=True)
class LeadRecord:
    feed: str
    first: int
    leads_min: list[float]


def _day(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d")


class DashboardStore:
    def __init__(self, redis: aioredis.Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys

    @asynccontextmanager
    async def safely(self, doing: str) -> AsyncIterator[None]:
        """For the pipeline's writes: a Redis failure is logged, never raised (the dashboard loses one sample)."""
        try:
            yield
        except (RedisError, StoreError, OSError) as exc:
            log.warning("dashboard write failed (%s): %s", doing, type(exc).__name__)

    # -- writes (the pipeline's) -------------------------------------------------------------------------

    async def record_index(self, now: datetime, score: float, level: int, *, changed: bool) -> None:
        """A sample of the escalation index; skipped when the last one is recent and the level did not change."""
        key, ms = self.keys.escalation_history, int(now.timestamp() * 1000)
        if not changed:
            last = cast(list[tuple[bytes, float]], await self.redis.zrevrange(key, 0, 0, withscores=True))
            if last and ms - last[0][1] < SAMPLE_EVERY_S * 1000:
                return
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zadd(key, {f"{ms}:{score:.3f}:{level}": ms})
            pipe.zremrangebyscore(key, "-inf", ms - HISTORY_S * 1000)
            await pipe.execute()

    async def count_hits(self, now: datetime, rules: Sequence[str], shadow: Sequence[str], article_id: str) -> None:
        """Count a new article's alert rules, and an article's shadow rules once per article and day."""
        if not rules and not shadow:
            return
        day = _day(now)
        key = self.keys.rule_hits(day)
        async with self.redis.pipeline(transaction=False) as pipe:
            for rule in rules:
                pipe.hincrby(key, rule, 1)
            for rule in shadow:
                once = self.keys.shadow_hits(day, rule)
                pipe.pfadd(once, article_id)
                pipe.expire(once, HITS_TTL_S)
                pipe.sadd(self.keys.shadow_rules(day), rule)
                pipe.expire(self.keys.shadow_rules(day), HITS_TTL_S)
            pipe.expire(key, HITS_TTL_S)
            await pipe.execute()

    async def record_lead(self, event: EventState, feed: str) -> None:
        """When ``feed``'s article just gave an event its second outlet: the first outlet's lead, in minutes."""
        if sum(1 for s in event.sources if s.feed == feed) != 1:
            return
        outlets: dict[str, datetime] = {}
        for source in event.sources:
            at = datetime.fromisoformat(source.published or source.seen)
            if source.feed not in outlets or at < outlets[source.feed]:
                outlets[source.feed] = at
        if len(outlets) != 2:
            return
        (first, t1), (_, t2) = sorted(outlets.items(), key=lambda item: item[1])
        key = self.keys.feed_leads(first)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hincrby(key, "first", 1)
            pipe.hget(key, "leads")
            _, raw = await pipe.execute()
        leads = json.loads(raw) if raw else []
        leads = [*leads, round((t2 - t1).total_seconds() / 60, 1)][-LEADS_KEPT:]
        await self.redis.hset(key, "leads", json.dumps(leads))

    async def record_revision(self, event: EventState, changes: Sequence[str], now: datetime) -> None:
        """An event's revision as it was alerted: when, at what severity, and what changed (its timeline)."""
        entry = {
            "revision": event.revision,
            "at": now.isoformat(),
            "severity": event.severity,
            "changes": list(changes) or (["first alert"] if event.revision == 1 else []),
        }
        key = self.keys.event_revisions(event.id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.rpush(key, json.dumps(entry))
            pipe.ltrim(key, -REVISIONS_KEPT, -1)
            pipe.expire(key, EVENT_TTL_S)
            await pipe.execute()

    # -- reads (the dashboard's) -------------------------------------------------------------------------

    async def index_history(self, since: datetime) -> list[IndexSample]:
        with store_errors("reading the escalation history"):
            key, low = self.keys.escalation_history, since.timestamp() * 1000
            raw = cast(list[bytes], await self.redis.zrangebyscore(key, low, "+inf"))
        samples = []
        for member in raw:
            ms, score, level = member.decode().split(":")
            samples.append(IndexSample(datetime.fromtimestamp(int(ms) / 1000, UTC), float(score), int(level)))
        return samples

    async def escalation_now(self) -> tuple[int, float, str]:
        """(level, score, when it last changed) as the escalation hash holds them."""
        with store_errors("reading the escalation level"):
            raw = cast(dict[bytes, bytes], await self.redis.hgetall(self.keys.escalation))
        values = {k.decode(): v.decode() for k, v in raw.items()}
        return int(values.get("level", 1)), float(values.get("score", 0.0)), values.get("updated", "")

    async def events_page(
        self, *, before: float | None = None, since: float | None = None, limit: int = 50
    ) -> list[EventState]:
        """Up to ``limit`` events first seen before ``before`` (a Unix time, exclusive) and since ``since``, newest
        first: one page of the events index and one ``MGET``."""
        high = f"({before}" if before is not None else "+inf"
        low = since if since is not None else "-inf"
        with store_errors("listing events"):
            ids = cast(list[bytes], await self.redis.zrevrangebyscore(self.keys.events, high, low, start=0, num=limit))
            if not ids:
                return []
            raw = await self.redis.mget([self.keys.event(i.decode()) for i in ids])
        return [EventState.from_json(r) for r in raw if r]

    async def event(self, event_id: str) -> EventState | None:
        with store_errors("reading an event"):
            raw = await self.redis.get(self.keys.event(event_id))
        return EventState.from_json(raw) if raw else None

    async def revisions(self, event_id: str) -> list[dict[str, Any]]:
        with store_errors("reading an event's revisions"):
            raw = cast(list[bytes], await self.redis.lrange(self.keys.event_revisions(event_id), 0, -1))
        return [json.loads(r) for r in raw]

    async def alerts_since(
        self, since: datetime, *, until: datetime | None = None, limit: int = 200, event_id: str | None = None
    ) -> list[AlertEntry]:
        """Alerts logged from ``since`` (to ``until``), newest first, at most ``limit`` read; only ``event_id``'s
        when given."""
        high = f"{int(until.timestamp() * 1000)}-0" if until is not None else "+"
        with store_errors("reading the alert log"):
            entries: Any = await self.redis.xrevrange(
                self.keys.alert_log, max=high, min=f"{int(since.timestamp() * 1000)}-0", count=limit
            )
        found = []
        for entry_id, fields in entries:
            try:
                alert = json.loads(fields.get(b"alert", b"{}"))
            except ValueError:
                continue
            if event_id is not None and alert.get("event_id") != event_id:
                continue
            ms = int(entry_id.decode().split("-", 1)[0])
            found.append(AlertEntry(datetime.fromtimestamp(ms / 1000, UTC), alert))
        return found

    async def hits(self, now: datetime, days: int = 7) -> tuple[list[str], dict[str, list[int]], dict[str, list[int]]]:
        """(the days, oldest first; alert rule -> hits per day; shadow rule -> articles per day)."""
        dates = [_day(now - timedelta(days=n)) for n in range(days - 1, -1, -1)]
        with store_errors("reading rule hits"):
            async with self.redis.pipeline(transaction=False) as pipe:
                for day in dates:
                    pipe.hgetall(self.keys.rule_hits(day))
                    pipe.smembers(self.keys.shadow_rules(day))
                found = await pipe.execute()
            shadow_names = sorted({m.decode() for members in found[1::2] for m in members})
            async with self.redis.pipeline(transaction=False) as pipe:
                for rule in shadow_names:
                    for day in dates:
                        pipe.pfcount(self.keys.shadow_hits(day, rule))
                counts = await pipe.execute()
        rules: dict[str, list[int]] = {}
        for i, raw in enumerate(found[0::2]):
            for rule, count in raw.items():
                rules.setdefault(rule.decode(), [0] * days)[i] = int(count)
        shadow = {rule: counts[n * days : (n + 1) * days] for n, rule in enumerate(shadow_names)}
        return dates, rules, shadow

    async def leads(self, feeds: Sequence[str]) -> list[LeadRecord]:
        with store_errors("reading lead times"):
            async with self.redis.pipeline(transaction=False) as pipe:
                for feed in feeds:
                    pipe.hgetall(self.keys.feed_leads(feed))
                found = await pipe.execute()
        records = []
        for feed, raw in zip(feeds, found, strict=True):
            values = {k.decode(): v.decode() for k, v in raw.items()}
            records.append(LeadRecord(feed, int(values.get("first", 0)), json.loads(values.get("leads", "[]"))))
        return records

    async def feed_states(self, feeds: Sequence[str]) -> dict[str, dict[str, str]]:
        with store_errors("reading feed health"):
            async with self.redis.pipeline(transaction=False) as pipe:
                for feed in feeds:
                    pipe.hgetall(self.keys.feed_state(feed))
                found = await pipe.execute()
        return {f: {k.decode(): v.decode() for k, v in raw.items()} for f, raw in zip(feeds, found, strict=True)}

    async def last_alert_id(self) -> str:
        """The id of the newest alert logged (``0-0`` when none): where a live view starts following."""
        with store_errors("reading the alert log"):
            last: Any = await self.redis.xrevrange(self.keys.alert_log, count=1)
        return last[0][0].decode() if last else "0-0"

    async def read_new_alerts(self, after: str, block_ms: int) -> tuple[str, list[AlertEntry]]:
        """Alerts logged after the stream id ``after``, waiting up to ``block_ms`` for one; returns the id to continue
        after. The live view's only read, made while a client is connected."""
        with store_errors("following the alert log"):
            reply: Any = await self.redis.xread({self.keys.alert_log: after}, block=block_ms, count=50)
        found = []
        for _, entries in reply or []:
            for entry_id, fields in entries:
                after = entry_id.decode()
                try:
                    alert = json.loads(fields.get(b"alert", b"{}"))
                except ValueError:
                    continue
                found.append(AlertEntry(datetime.fromtimestamp(int(after.split("-")[0]) / 1000, UTC), alert))
        return after, found
