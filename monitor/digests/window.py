"""The time window each digest covers, from plain fire times: no scheduler here.

A digest's schedule reaches this package as ``Fires``, two plain functions of time (the latest fire at or before a
moment, the first one after it). ``monitor.service.cron`` builds them from the five-field cron expression with the
same APScheduler trigger the daemon schedules the digest with, so the two always agree on when a window starts (the
claim that sends a digest once is keyed on that start).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from monitor.core.clock import utc_iso

__all__ = ["MAX_LOOKBACK", "Fires", "FiresOf", "LatestFire", "Window", "preview_window", "scheduled_window"]

#: How far back a previous fire is looked for; a schedule with longer gaps (``0 0 29 2 *``) gets a window of this
#: length at most, which is also longer than the alert log keeps anything.
MAX_LOOKBACK = timedelta(days=400)

#: The latest fire of a schedule at or before a moment (UTC), or None when there was none within ``MAX_LOOKBACK``.
LatestFire = Callable[[datetime], datetime | None]


@dataclass(frozen=True, slots=True)
class Window:
    """The half-open time range ``[start, end)`` one digest covers, in UTC."""

    start: datetime
    end: datetime

    @property
    def key(self) -> str:
        """What names the window in its claim: the start, as ISO-8601 UTC."""
        return utc_iso(self.start)

    @property
    def length(self) -> timedelta:
        return self.end - self.start


@dataclass(frozen=True, slots=True)
class Fires:
    """When one schedule fires, in UTC: ``latest(now)`` is the last fire at or before ``now`` (None if none within
    ``MAX_LOOKBACK``), ``after(moment)`` the first fire strictly after ``moment`` (None if it never fires again)."""

    latest: LatestFire
    after: Callable[[datetime], datetime | None]


#: The fire times of a digest's schedule from its cron expression and time zone (``monitor.service.cron.fires``);
#: raises ``ValueError`` for a schedule that cannot run, with the reason.
FiresOf = Callable[[str, str], Fires]


def scheduled_window(latest: LatestFire, now: datetime) -> Window | None:
    """The window the latest fire at or before ``now`` closes: from the fire before it up to it."""
    end = latest(now)
    if end is None:
        return None
    start = latest(end - timedelta(seconds=1)) or end - MAX_LOOKBACK
    return Window(start, end)


def preview_window(latest: LatestFire, now: datetime) -> Window:
    """What a digest sent at ``now`` would cover: since the latest scheduled fire (or a day) up to ``now``."""
    start = latest(now - timedelta(seconds=1))
    return Window(start or now - timedelta(days=1), now)
