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
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO, cast

import redis.asyncio as aioredis

from monitor.config import Config
from monitor.core.clock import SystemClock
from monitor.core.models import Article
from monitor.delivery.outbox import Deliverer
from monitor.delivery.sinks.factory import build_sinks
from monitor.detection.matcher import Matcher
from monitor.detection.rulefile import RuleSet
from monitor.network.guard import make_session
from monitor.parsing.files import read_articles
from monitor.processing.processor import Processor, policies
from monitor.storage.events import EventStore
from monitor.storage.keys import Keys

__all__ = ["ReplayClock", "list_events", "replay"]

_MAX_PAUSE_S = 5.0


@dataclass
class ReplayClock:
    """The clock of a replay: it stands at the publication time of the article being processed."""

    moment: datetime = datetime(1970, 1, 1, tzinfo=UTC)

    def now(self) -> datetime:
        return self.moment

    def monotonic(self) -> float:
        return self.moment.timestamp()


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


async def _drop_namespace(redis: aioredis.Redis, keys: Keys) -> None:
    async for key in redis.scan_iter(match="{" + keys.namespace + "}:*", count=500):
        await redis.delete(key)


async def replay(
    paths: list[Path],
    config: Config,
    ruleset: RuleSet,
    redis: aioredis.Redis,
    *,
    out: TextIO,
    speed: float = 0.0,
    with_sinks: bool = False,
) -> dict[str, int]:
    """Replay ``paths``; returns counts (articles, matched, events, revisions, level changes)."""
    articles = sorted(read_articles(paths), key=_when)
    keys = Keys(f"replay-{secrets.token_hex(4)}")
    clock = ReplayClock(_when(articles[0]) if articles else datetime.now(UTC))
    event_policy, escalation_policy = policies(config.events, config.escalation)
    processor = Processor(
        Matcher(ruleset, min_severity=config.alerts.min_severity),
        EventStore(redis, keys),
        clock,
        max_age_hours=0,
        event_policy=event_policy,
        escalation_policy=escalation_policy,
    )
    counts = {"articles": len(articles), "matched": 0, "events": 0, "revisions": 0, "level_changes": 0}
    last_id = "0-0"
    previous: datetime | None = None
    try:
        for article in articles:
            when = _when(article)
            if speed > 0 and previous is not None:
                await asyncio.sleep(min(_MAX_PAUSE_S, max(0.0, (when - previous).total_seconds()) / speed))
            previous = when
            clock.moment = max(clock.moment, when)
            result = await processor.process([article])
            counts["matched"] += result.matched
            # Undecoded client: ids and fields are bytes, and XRANGE returns a list (the stubs allow str and None).
            entries = cast(list[tuple[bytes, dict[bytes, bytes]]], await redis.xrange(keys.outbox, min=f"({last_id}"))
            for entry_id, fields in entries:
                last_id = entry_id.decode()
                alert = json.loads(fields[b"alert"])
                kind = (
                    "level_changes"
                    if alert["kind"] == "escalation"
                    else ("events" if alert["revision"] == 1 else "revisions")
                )
                counts[kind] += 1
                print(_line(alert, clock.moment), file=out, flush=True)
        if with_sinks:
            await _deliver(config, redis, keys)
    finally:
        await _drop_namespace(redis, keys)
    print(
        f"\n{counts['articles']} articles, {counts['matched']} matched, {counts['events']} events, "
        f"{counts['revisions']} revisions, {counts['level_changes']} escalation-level changes",
        file=out,
    )
    return counts


async def _deliver(config: Config, redis: aioredis.Redis, keys: Keys) -> None:
    session = make_session(config.fetch)
    try:
        sinks = build_sinks(
            config.alerts.sinks,
            session,
            sys.stdout,
            source=config.source,
            allow_private_networks=config.fetch.allow_private_networks,
            smtp=config.smtp,
        )
        deliverers = [
            Deliverer(
                redis,
                keys,
                sink,
                consumer=socket.gethostname(),
                clock=SystemClock(),
                max_attempts=config.alerts.max_attempts,
                max_retry_delay_s=config.alerts.max_retry_delay_s,
            )
            for sink in sinks
        ]
        # Groups start at the stream's beginning: the replay's alerts were enqueued before any sink read them.
        for deliverer in deliverers:
            await redis.xgroup_create(keys.outbox, deliverer.sink.name, id="0", mkstream=True)
        await asyncio.gather(*(d.drain(30.0) for d in deliverers))
        for sink in sinks:
            await sink.close()
    finally:
        await session.close()


async def list_events(redis: aioredis.Redis, *, days: float, out: TextIO, as_json: bool) -> int:
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
