"""``monitor replay`` (the analyst's backtest) and ``monitor events`` (recent events for operators).

A replay runs an archive through the same processing as the daemon, in publication order, with a simulated
clock and in a Redis namespace of its own that is deleted afterwards, and prints the timeline of events,
revisions and escalation-level changes that would have fired. Sinks receive the alerts only when asked.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import socket
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from monitor.config import Config
from monitor.core.models import Article
from monitor.detection.rulefile import RuleSet
from monitor.parsing.files import read_articles
from monitor.service.root import App, build_app
from monitor.storage.connection import Redis
from monitor.storage.events import EventStore
from monitor.storage.keys import Keys
from monitor.storage.tail import OutboxTail, drop_namespace

__all__ = ["ReplayClock", "list_events", "replay"]

_MAX_PAUSE_S = 5.0


@dataclass
class ReplayClock:
    """The clock of a replay: it stands at the publication time of the article being processed. Once the archive
    is processed it turns ``live`` (real time), so that delivering the replay's alerts retries and times out as the
    daemon's deliveries do. ``monotonic`` is always real: it only ever measures waits."""

    moment: datetime = datetime(1970, 1, 1, tzinfo=UTC)
    live: bool = False

    def now(self) -> datetime:
        return datetime.now(UTC) if self.live else self.moment

    def monotonic(self) -> float:
        return time.monotonic()


def _when(article: Article) -> datetime:
    return article.published or article.fetched


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%MZ")


def _line(alert: dict[str, Any], at: datetime) -> str:
    if alert["kind"] == "escalation":
        return (
            f"{_stamp(at)}  LEVEL     {alert['previous_level']} -> {alert['escalation_level']}  "
            f"(index {alert.get('score')}, surge x{alert.get('surge')})"
        )
    source = alert["articles"][0]["source"] if alert["articles"] else ""
    if alert["revision"] == 1:
        return (
            f"{_stamp(at)}  NEW       {alert['event_id']}  {alert['event_type']}  severity {alert['severity']}  "
            f"{alert['title']}  [{source}]"
        )
    return (
        f"{_stamp(at)}  REVISION  {alert['event_id']}  r{alert['revision']}  severity {alert['severity']}  "
        + "; ".join(alert.get("changes", []))
    )


async def replay(
    paths: list[Path],
    config: Config,
    ruleset: RuleSet,
    redis: Redis,
    *,
    out: TextIO,
    speed: float = 0.0,
    with_sinks: bool = False,
) -> dict[str, int]:
    """Replay ``paths`` through the app the daemon runs (``build_app``), in a namespace of its own; returns counts
    (articles, matched, events, revisions, level changes)."""
    articles = sorted(read_articles(paths), key=_when)
    keys = Keys(f"replay-{secrets.token_hex(4)}")
    clock = ReplayClock(_when(articles[0]) if articles else datetime.now(UTC))
    # An archive is old by definition: no article is too old to replay.
    settings = config.model_copy(update={"alerts": config.alerts.model_copy(update={"max_age_hours": 0})})
    app = await build_app(
        settings, ruleset, clock=clock, redis=redis, keys=keys, consumer=socket.gethostname(),
        parse_in_workers=False, fetch_leases=False,
    )  # fmt: skip
    try:
        if with_sinks:
            await app.start()  # consumer groups before the first alert: every sink gets every alert
        counts = await _run(app, articles, clock, out=out, speed=speed)
        if with_sinks:
            clock.live = True
            await app.deliver_pending(30.0)
    finally:
        await drop_namespace(redis, keys)
        await app.close()
    print(
        f"\n{counts['articles']} articles, {counts['matched']} matched, {counts['events']} events, "
        f"{counts['revisions']} revisions, {counts['level_changes']} escalation-level changes",
        file=out,
    )
    return counts


async def _run(app: App, articles: list[Article], clock: ReplayClock, *, out: TextIO, speed: float) -> dict[str, int]:
    """Process the articles one by one in publication order and print each alert as it is enqueued."""
    counts = {"articles": len(articles), "matched": 0, "events": 0, "revisions": 0, "level_changes": 0}
    reader = OutboxTail(app.redis, app.store.keys)
    previous: datetime | None = None
    for article in articles:
        when = _when(article)
        if speed > 0 and previous is not None:
            await asyncio.sleep(min(_MAX_PAUSE_S, max(0.0, (when - previous).total_seconds()) / speed))
        previous = when
        clock.moment = max(clock.moment, when)
        result = await app.processor.process([article])
        counts["matched"] += result.matched
        for alert in await reader.new_alerts():
            if alert["kind"] == "escalation":
                counts["level_changes"] += 1
            else:
                counts["events" if alert["revision"] == 1 else "revisions"] += 1
            print(_line(alert, clock.moment), file=out, flush=True)
    return counts


async def list_events(redis: Redis, *, days: float, out: TextIO, as_json: bool) -> int:
    """Print recent events, newest first, and the current escalation level."""
    store = EventStore(redis, Keys())
    events = await store.recent(datetime.now(UTC) - timedelta(days=days))
    level = await store.level()
    if as_json:
        for e in events:
            print(
                json.dumps(
                    {
                        "event_id": e.id,
                        "event_type": e.event_type,
                        "severity": e.severity,
                        "revision": e.revision,
                        "first_seen": e.first_seen,
                        "updated": e.updated,
                        "sources": len(e.sources),
                        "independent_outlets": e.independent_outlets,
                        "title": e.title,
                    },
                    ensure_ascii=False,
                ),
                file=out,
            )
        return 0
    print(f"escalation level {level}; {len(events)} events in the past {days:g} days", file=out)
    for e in events:
        first, last = _stamp(datetime.fromisoformat(e.first_seen)), _stamp(datetime.fromisoformat(e.updated))
        print(
            f"{first}  {e.event_type:<36} sev {e.severity}  r{e.revision}  {len(e.sources):>3} sources "
            f"({e.independent_outlets} independent)  last {last}  {e.title}",
            file=out,
        )
    return 0
