"""The dashboard's reads: each page's and each API's data, from storage, as plain dicts (pages and JSON show the
same). Every read is bounded (a page of an index, a time range of a stream); see ``monitor.storage.dashboard``."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from monitor.config import Config
from monitor.core.clock import Clock
from monitor.detection.rulefile import RuleSet
from monitor.storage.backlog import read_backlog
from monitor.storage.connection import Redis
from monitor.storage.dashboard import DashboardStore
from monitor.storage.deadletters import list_dead, retry_dead
from monitor.storage.keys import Keys
from monitor.web.views import chart_data, dead_view, event_detail, event_row, scoreboard

__all__ = ["CHART_DAYS", "PAGE", "Reader"]

PAGE = 50
CHART_DAYS = 30
#: Events marked on the chart: the most recent ones (a marker each), so a busy month stays one bounded read.
CHART_EVENTS = 300


@dataclass
class Reader:
    redis: Redis
    keys: Keys
    clock: Clock
    config: Callable[[], Config]  # the running configuration (a reload may replace it)
    ruleset: Callable[[], RuleSet]

    @property
    def store(self) -> DashboardStore:
        return DashboardStore(self.redis, self.keys)

    def _window(self) -> timedelta:
        return timedelta(hours=self.config().events.window_hours)

    async def level(self) -> dict[str, Any]:
        level, score, updated = await self.store.escalation_now()
        return {"level": level, "score": score, "changed": updated or None}

    async def overview(self) -> dict[str, Any]:
        now, window = self.clock.now(), self._window()
        since = (now - window - timedelta(hours=24)).timestamp()
        recent = await self.store.events_page(since=since, limit=PAGE)
        rows = [event_row(e, now, window) for e in recent]
        # The alert log's entry ids are Redis's clock: a range by the wall clock, then by the alert's own time.
        logged = await self.store.alerts_since(datetime.fromtimestamp(time.time() - 24 * 3600, UTC), limit=100)
        alerts = [a for a in logged if _within(a.alert.get("updated"), now - timedelta(hours=24))]
        return {
            "escalation": await self.level(),
            "open_events": [r for r in rows if r["status"] == "open"],
            "alerts": [_alert_brief(a.alert) for a in alerts],
        }

    async def events(self, before: float | None, limit: int = PAGE) -> dict[str, Any]:
        """A page of events, newest first; ``next`` is the cursor of the following page (None at the end)."""
        now, window = self.clock.now(), self._window()
        limit = min(max(limit, 1), 200)
        page = await self.store.events_page(before=before, limit=limit)
        cursor = None
        if len(page) == limit and page:
            cursor = datetime.fromisoformat(page[-1].first_seen).timestamp()
        return {"events": [event_row(e, now, window) for e in page], "next": cursor}

    async def event(self, event_id: str) -> dict[str, Any] | None:
        event = await self.store.event(event_id)
        if event is None:
            return None
        revisions = await self.store.revisions(event_id)
        return event_detail(event, revisions, self.clock.now(), self._window())

    async def escalation(self) -> dict[str, Any]:
        now = self.clock.now()
        since = now - timedelta(days=CHART_DAYS)
        samples = await self.store.index_history(since)
        events = await self.store.events_page(since=since.timestamp(), limit=CHART_EVENTS)
        thresholds = list(self.config().escalation.thresholds)
        return {**(await self.level()), "chart": chart_data(samples, events, thresholds)}

    async def feeds(self) -> dict[str, Any]:
        names = [f.name for f in self.config().feeds]
        states = await self.store.feed_states(names)
        health = [
            {
                "feed": name,
                "last_success": states[name].get("last_success") or None,
                "last_attempt": states[name].get("last_attempt") or None,
                "consecutive_errors": int(states[name].get("consecutive_errors") or 0),
                "interval_s": float(states[name]["interval_s"]) if states[name].get("interval_s") else None,
                "last_error": states[name].get("last_error") or None,
            }
            for name in names
        ]
        return {"feeds": health, "scoreboard": scoreboard(await self.store.leads(names))}

    async def rules(self) -> dict[str, Any]:
        days, hits, shadow = await self.store.hits(self.clock.now())
        known = {r.id: r for r in self.ruleset().rules}
        rows: list[dict[str, Any]] = [
            {
                "rule": rid,
                "title": known[rid].title if rid in known else "",
                "event_type": known[rid].event_type if rid in known else "",
                "per_day": hits.get(rid, [0] * len(days)),
                "total": sum(hits.get(rid, [])),
            }
            for rid in sorted(set(hits) | {r.id for r in known.values() if r.status != "experimental"})
        ]
        rows.sort(key=lambda r: (-r["total"], r["rule"]))
        shadow_rows = [{"rule": rid, "per_day": counts, "total": sum(counts)} for rid, counts in shadow.items()]
        return {"days": days, "rules": rows, "shadow": shadow_rows}

    async def delivery(self) -> dict[str, Any]:
        now_ms = int(time.time() * 1000)  # the outbox's entry ids are Redis's clock, as the wall clock is
        backlog = await read_backlog(self.redis, self.keys)
        dead = await list_dead(self.redis, self.keys, limit=PAGE)
        return {
            "sinks": [
                {"sink": b.sink, "backlog": b.total, "pending": b.pending, "oldest_age_s": b.oldest_age_s(now_ms)}
                for b in backlog
            ],
            "dead": [dead_view(d) for d in dead],
        }

    async def retry(self, ids: list[str]) -> list[dict[str, Any]]:
        return [dead_view(d) for d in await retry_dead(self.redis, self.keys, ids)]


def _within(stamp: object, since: datetime) -> bool:
    try:
        return isinstance(stamp, str) and datetime.fromisoformat(stamp) >= since
    except ValueError:
        return False


def _alert_brief(alert: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": alert.get("id"),
        "kind": alert.get("kind"),
        "event_id": alert.get("event_id"),
        "revision": alert.get("revision"),
        "severity": alert.get("severity"),
        "title": str(alert.get("title", "")),
        "changes": list(alert.get("changes") or []),
        "at": alert.get("updated"),
    }
