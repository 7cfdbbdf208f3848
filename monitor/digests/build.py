"""What a digest says, computed purely from alert-log entries: no Redis, no clock, no SMTP.

The alert log holds every alert the pipeline enqueued, in order: ``kind: event`` alerts (a new event is revision 1,
its updates share the ``event_id``) and ``kind: escalation`` alerts (a change of the escalation level). A digest
shows, for one window, each event once (its latest revision there), grouped by event type and ordered by
severity; the level changes; and the escalation trend as ``TREND_BUCKETS`` steps.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from monitor.delivery.sinks.view import SEVERITY_COLOURS, AlertView
from monitor.digests.window import Window

__all__ = ["TREND_BUCKETS", "Digest", "DigestEvent", "DigestGroup", "LogEntry", "build_digest", "sparkline"]

TREND_BUCKETS = 24
_SPARKS = {1: "▁", 2: "▂", 3: "▄", 4: "▆", 5: "█"}


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One alert-log entry: when it was logged (from its stream id) and the alert payload."""

    at: datetime
    alert: dict[str, Any]

    @classmethod
    def from_stream(cls, entry_id: bytes | str, fields: dict[bytes, bytes]) -> LogEntry | None:
        """Parse an ``XRANGE`` entry; None for one that is not a JSON object (skipped, never fatal)."""
        text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
        try:
            millis = int(text.split("-", 1)[0])
            alert = json.loads(fields.get(b"alert", b""))
        except ValueError:
            return None
        if not isinstance(alert, dict):
            return None
        return cls(datetime.fromtimestamp(millis / 1000, UTC), alert)


@dataclass(frozen=True, slots=True)
class DigestEvent:
    """One event as the digest lists it: its latest revision in the window, and how many it had there."""

    view: AlertView
    revisions: int
    new: bool
    first_seen: str

    @property
    def meta(self) -> str:
        """ "first seen 04 Jan 10:00 · 3 alerts · ongoing": when, how often updated, whether it began earlier."""
        parts = [f"first seen {self.first_seen}"] if self.first_seen else []
        if self.revisions > 1:
            parts.append(f"{self.revisions} alerts")
        if not self.new:
            parts.append("ongoing")
        return " · ".join(parts)


@dataclass(frozen=True, slots=True)
class DigestGroup:
    """The events of one type, most severe first, with their count per severity."""

    event_type: str | None
    label: str
    events: list[DigestEvent]
    by_severity: dict[int, int]

    @property
    def top_severity(self) -> int:
        return max(e.view.severity for e in self.events)


@dataclass(frozen=True, slots=True)
class Escalation:
    """A change of the escalation level in the window."""

    at: str
    view: AlertView


@dataclass(frozen=True, slots=True)
class TrendStep:
    """One step of the trend chart: the highest level seen in it, and its start as a label."""

    label: str
    level: int

    @property
    def colour(self) -> str:
        return SEVERITY_COLOURS[self.level]


@dataclass(frozen=True, slots=True)
class Digest:
    name: str
    window: Window
    timezone: str
    window_label: str
    groups: list[DigestGroup]
    escalations: list[Escalation]
    trend: list[TrendStep]
    level_start: int
    level_end: int
    hidden: int = 0
    min_severity: int = 1
    by_severity: dict[int, int] = field(default_factory=dict)

    @property
    def severities(self) -> list[int]:
        """The severities a digest can show, most severe first (the columns of its summary table)."""
        return list(range(5, self.min_severity - 1, -1))

    @property
    def step_label(self) -> str:
        """How long one trend step is: "1 h", "15 min", "7 d"."""
        seconds = self.window.length.total_seconds() / TREND_BUCKETS
        if seconds >= 86400:
            return f"{round(seconds / 86400, 1):g} d"
        if seconds >= 3600:
            return f"{round(seconds / 3600, 1):g} h"
        return f"{max(1, round(seconds / 60))} min"

    @property
    def events(self) -> int:
        return sum(len(g.events) for g in self.groups)

    @property
    def new_events(self) -> int:
        return sum(e.new for g in self.groups for e in g.events)

    @property
    def peak(self) -> int:
        return max([self.level_start, self.level_end, *(s.level for s in self.trend)])

    @property
    def empty(self) -> bool:
        return not self.groups and not self.escalations

    @property
    def sparkline(self) -> str:
        return sparkline(s.level for s in self.trend)

    @property
    def subject(self) -> str:
        when = self.window.end.astimezone(_zone(self.timezone)).strftime("%d %b %Y %H:%M")
        if self.empty:
            what = "no new alerts"
        else:
            what = f"{self.events} event{'s' if self.events != 1 else ''}"
            if self.escalations:
                what += f", {len(self.escalations)} level change{'s' if len(self.escalations) != 1 else ''}"
        level = f"level {self.level_end}" + (f" (peak {self.peak})" if self.peak > self.level_end else "")
        return f"Escalation digest {self.name}, {when}: {what}, {level}"


def sparkline(levels: Iterable[int]) -> str:
    """Levels 1-5 as block characters, one per step: ``▁▁▂▄▆█``."""
    return "".join(_SPARKS.get(level, "?") for level in levels)


def _zone(name: str) -> tzinfo:
    return ZoneInfo(name)


def _local(moment: datetime, zone: tzinfo, fmt: str) -> str:
    return moment.astimezone(zone).strftime(fmt)


def _when(value: str | None, zone: tzinfo) -> str:
    if not value:
        return ""
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return _local(moment, zone, "%d %b %H:%M")


def _level(alert: dict[str, Any]) -> int | None:
    value = alert.get("escalation_level")
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return min(5, max(1, value))


def _trend(window: Window, entries: Sequence[LogEntry], start_level: int, zone: tzinfo) -> list[TrendStep]:
    """The highest level in each of ``TREND_BUCKETS`` equal steps; a step without alerts keeps the level before."""
    step = window.length / TREND_BUCKETS
    long_window = window.length.total_seconds() > 2 * 86400
    samples = [(e.at, lvl) for e in entries if (lvl := _level(e.alert)) is not None]
    steps: list[TrendStep] = []
    carried = start_level
    index = 0
    for n in range(TREND_BUCKETS):
        begins = window.start + step * n
        ends = window.start + step * (n + 1)
        level = carried
        while index < len(samples) and samples[index][0] < ends:
            level = max(level, samples[index][1])
            carried = samples[index][1]
            index += 1
        label = _local(begins, zone, "%d %b" if long_window else "%H:%M")
        steps.append(TrendStep(label, level))
    return steps


def _latest_events(entries: Sequence[LogEntry]) -> tuple[dict[str, AlertView], dict[str, int], set[str]]:
    latest: dict[str, AlertView] = {}
    revisions: dict[str, int] = {}
    first_revisions: set[str] = set()
    for entry in entries:
        if entry.alert.get("kind", "event") != "event":
            continue
        view = AlertView.of(entry.alert)
        key = view.event_id or view.id
        revisions[key] = revisions.get(key, 0) + 1
        if view.revision == 1:
            first_revisions.add(key)
        if key not in latest or view.revision >= latest[key].revision:  # ties: the later entry wins
            latest[key] = view
    return latest, revisions, first_revisions


def _group(event_type: str | None, events: list[DigestEvent]) -> DigestGroup:
    """One type's events, most severe first and newest first within a severity, with their count per severity."""
    events.sort(key=lambda e: e.view.updated or "", reverse=True)
    events.sort(key=lambda e: e.view.severity, reverse=True)
    counts: dict[int, int] = {}
    for item in events:
        counts[item.view.severity] = counts.get(item.view.severity, 0) + 1
    return DigestGroup(event_type, events[0].view.type_label, events, counts)


def _groups(
    entries: Sequence[LogEntry], window: Window, zone: tzinfo, min_severity: int, wanted: set[str] | None
) -> tuple[list[DigestGroup], int]:
    """Each event once (its latest revision), grouped by type, the most severe group first; and how many events
    were left out (below ``min_severity``, or not of a ``wanted`` type)."""
    latest, revisions, first_revisions = _latest_events(entries)
    by_type: dict[str | None, list[DigestEvent]] = {}
    hidden = 0
    for key, view in latest.items():
        if view.severity < min_severity or (wanted is not None and view.event_type not in wanted):
            hidden += 1
            continue
        new = key in first_revisions or (view.first_seen or "") >= window.key
        item = DigestEvent(view, revisions[key], new, _when(view.first_seen, zone))
        by_type.setdefault(view.event_type, []).append(item)
    groups = [_group(event_type, events) for event_type, events in by_type.items()]
    groups.sort(key=lambda g: (-g.top_severity, -len(g.events), g.label))
    return groups, hidden


def _start_level(level_before: int | None, escalations: Sequence[Escalation], entries: Sequence[LogEntry]) -> int:
    """The level when the window opened: ``level_before``, else the first level change's previous level, else the
    first alert's level, else 1 (calm)."""
    if level_before is not None:
        return level_before
    if escalations and escalations[0].view.previous_level is not None:
        return escalations[0].view.previous_level
    return next((lvl for e in entries if (lvl := _level(e.alert)) is not None), 1)


def _totals(groups: Sequence[DigestGroup]) -> dict[int, int]:
    totals: dict[int, int] = {}
    for group in groups:
        for severity, count in group.by_severity.items():
            totals[severity] = totals.get(severity, 0) + count
    return totals


def build_digest(
    name: str,
    window: Window,
    entries: Sequence[LogEntry],
    *,
    timezone: str = "UTC",
    min_severity: int = 1,
    event_types: Sequence[str] | None = None,
    level_before: int | None = None,
) -> Digest:
    """The digest of ``entries`` (alert-log entries inside ``window``, in log order).

    ``level_before`` is the escalation level when the window opened (from the last entry before it); without
    one, the first level change's previous level, or the first alert's level, or 1 (calm) stands in.
    """
    zone = _zone(timezone)
    entries = sorted((e for e in entries if window.start <= e.at < window.end), key=lambda e: e.at)
    groups, hidden = _groups(entries, window, zone, min_severity, set(event_types) if event_types else None)
    escalations = [
        Escalation(_local(e.at, zone, "%d %b %H:%M"), AlertView.of(e.alert))
        for e in entries
        if e.alert.get("kind") == "escalation"
    ]
    start_level = _start_level(level_before, escalations, entries)
    end_level = next((lvl for e in reversed(entries) if (lvl := _level(e.alert)) is not None), start_level)
    label = f"{_local(window.start, zone, '%a %d %b %Y %H:%M')} – {_local(window.end, zone, '%a %d %b %Y %H:%M')}"
    return Digest(
        name=name,
        window=window,
        timezone=timezone,
        window_label=f"{label} ({timezone})",
        groups=groups,
        escalations=escalations,
        trend=_trend(window, entries, start_level, zone),
        level_start=start_level,
        level_end=end_level,
        hidden=hidden,
        min_severity=min_severity,
        by_severity=_totals(groups),
    )
