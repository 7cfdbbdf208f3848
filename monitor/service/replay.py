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
from monitor.events.scoring import Placement, StreamScore, score_stream
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
    backlog: bool = False,
    timeline: TextIO | None = None,
) -> dict[str, int]:
    """Replay ``paths`` through the app the daemon runs (``build_app``), in a namespace of its own; returns counts
    (articles, matched, events, revisions, level changes). With ``backlog`` every source's articles are processed
    in one batch, as a first poll of a feed that already lists them all would, instead of one at a time. When the
    files are labelled (JSON Lines with ``event_key``), the clustering is scored as well (see ``events.scoring``).
    Each alert is printed to ``timeline`` (default ``out``) as it is enqueued; the totals and scores to ``out``."""
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
        run = Run(app, clock, out if timeline is None else timeline)
        if backlog:
            await run.all_at_once(articles)
        else:
            await run.one_by_one(articles, speed=speed)
        counts = run.counts
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
    labels = read_labels(paths)
    if labels:
        print_score(labels, run.placed, run.first_types, out)
    return counts


class Run:
    """Articles through the app's processor, each alert printed as it is enqueued; what went where is kept."""

    def __init__(self, app: App, clock: ReplayClock, out: TextIO) -> None:
        self.app, self.clock, self.out = app, clock, out
        self.reader = OutboxTail(app.redis, app.store.keys)
        self.counts = {"articles": 0, "matched": 0, "events": 0, "revisions": 0, "level_changes": 0}
        self.placed: dict[str, str] = {}  # article id -> event id
        self.first_types: dict[str, str] = {}  # event id -> the type its first alert carried

    async def one_by_one(self, articles: list[Article], *, speed: float) -> None:
        """In publication order, the clock at each article's time (``speed`` > 0: with pauses)."""
        previous: datetime | None = None
        for article in articles:
            when = _when(article)
            if speed > 0 and previous is not None:
                await asyncio.sleep(min(_MAX_PAUSE_S, max(0.0, (when - previous).total_seconds()) / speed))
            previous = when
            self.clock.moment = max(self.clock.moment, when)
            await self._process([article])

    async def all_at_once(self, articles: list[Article]) -> None:
        """One batch per source, newest first as feeds list them, the clock after the newest article."""
        self.clock.moment = max((_when(a) for a in articles), default=self.clock.moment) + timedelta(minutes=1)
        sources: dict[str, list[Article]] = {}
        for article in articles:
            sources.setdefault(article.feed, []).append(article)
        for batch in sources.values():
            await self._process(sorted(batch, key=_when, reverse=True))

    async def _process(self, batch: list[Article]) -> None:
        result = await self.app.processor.process(batch)
        self.counts["articles"] += result.articles
        self.counts["matched"] += result.matched
        self.placed.update(result.placed)
        for alert in await self.reader.new_alerts():
            if alert["kind"] == "escalation":
                self.counts["level_changes"] += 1
            else:
                self.counts["events" if alert["revision"] == 1 else "revisions"] += 1
                self.first_types.setdefault(alert["event_id"], alert["event_type"])
            print(_line(alert, self.clock.moment), file=self.out, flush=True)


def read_labels(paths: list[Path]) -> dict[str, dict[str, Any]]:
    """Labelled rows (``id`` -> row) of the JSON Lines files among ``paths`` that carry ``event_key``."""
    files = [f for p in paths for f in ([p] if p.is_file() else sorted(p.rglob("*.jsonl"))) if f.suffix == ".jsonl"]
    labels: dict[str, dict[str, Any]] = {}
    for file in files:
        for line in file.read_text(encoding="utf-8").splitlines():
            row = json.loads(line) if line.strip() else {}
            if "event_key" in row and "id" in row:
                labels[str(row["id"])] = row
    return labels


def print_score(
    labels: dict[str, dict[str, Any]], placed: dict[str, str], first_types: dict[str, str], out: TextIO
) -> StreamScore:
    """Article precision/recall and the clustering's scores against the labels."""
    order = {article_id: n for n, article_id in enumerate(placed)}  # reading order: the first alert comes first
    ids = sorted(labels, key=lambda i: order.get(i, len(order)))
    rows = [
        Placement(i, _positive(labels[i]), str(labels[i]["event_key"]), labels[i].get("event_type"), placed.get(i))
        for i in ids
    ]
    tp = sum(1 for p in rows if p.label and p.event_id)
    fp = sum(1 for p in rows if not p.label and p.event_id)
    fn = sum(1 for p in rows if p.label and not p.event_id)
    score = score_stream(rows, first_types)
    print(
        f"articles: precision {tp / max(1, tp + fp):.3f} recall {tp / max(1, tp + fn):.3f} (tp {tp} fp {fp} fn {fn})\n"
        f"events: recall {score.event_recall:.3f} ({score.events_alerted}/{score.events}), B3 F1 {score.b3_f1} "
        f"(P {score.b3_precision} R {score.b3_recall}), split {score.split}, merged {score.merged}, "
        f"first alert's type {score.first_type_accuracy:.3f}, negatives alerted {score.negatives_alerted}",
        file=out,
    )
    for key, extra in sorted(score.split_keys.items()):
        print(f"  split  {key}: {extra + 1} events", file=out)
    for group in score.merged_groups:
        print(f"  merged {' + '.join(group)}", file=out)
    for key, wrong in sorted(score.wrong_first_type.items()):
        print(f"  type   {key}: {wrong}", file=out)
    return score


def _positive(row: dict[str, Any]) -> bool:
    label = row.get("label")
    return bool(label) if isinstance(label, bool) else label is not None


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
