"""Digest schedules: five-field cron expressions as APScheduler triggers, and the time window each fire covers.

The daemon schedules digests with ``cron_trigger`` and ``monitor digest`` computes windows with the same trigger,
so the two always agree on when a window starts (the claim that sends a digest once is keyed on that start).
Besides the daemon, this is the only module that imports APScheduler, and only for its cron arithmetic.

Two differences between APScheduler 3 and standard cron are closed here rather than passed on to users:
APScheduler numbers weekdays from Monday = 0 where cron has Sunday = 0 (so ``* * * * 1`` would fire on
Tuesdays), and it ANDs a restricted day-of-month with a restricted day-of-week where cron ORs them. Weekday
numbers are translated to names, and restricting both fields is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from apscheduler.triggers.cron import CronTrigger

from monitor.core.clock import utc_iso

__all__ = ["Window", "check_schedule", "cron_trigger", "latest_fire", "next_fire", "preview_window", "scheduled_window"]

#: How far back a previous fire is looked for; a schedule with longer gaps (``0 0 29 2 *``) gets a window of this
#: length at most, which is also longer than the alert log keeps anything.
MAX_LOOKBACK = timedelta(days=400)
_CRON_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


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


def _day(token: str) -> int:
    """0-7 (7 is Sunday again, kept as 7 so that ``5-7`` is a forward range) or a three-letter name."""
    token = token.strip().lower()
    if token.isdigit() and 0 <= int(token) <= 7:
        return int(token)
    if token in _CRON_DAYS:
        return _CRON_DAYS.index(token)
    raise ValueError(f"bad day of week {token!r} (0-7 or sun-sat)")


def _weekdays(field: str) -> str:
    """A cron day-of-week field (Sunday = 0 or 7) as an explicit list of APScheduler's day names."""
    if field in ("*", "?"):
        return "*"
    days: set[int] = set()
    for part in field.split(","):
        body, _, step_text = part.partition("/")
        step = int(step_text) if step_text.isdigit() else 1
        if step < 1 or (step_text and not step_text.isdigit()):
            raise ValueError(f"bad step in day of week {part!r}")
        if body == "*":
            low, high = 0, 6
        elif "-" in body:
            first, last = body.split("-", 1)
            low, high = _day(first), _day(last)
        else:
            low = _day(body)
            high = 6 if step_text else low
        if low > high:
            raise ValueError(f"day-of-week range {part!r} runs backwards")
        days.update(d % 7 for d in range(low, high + 1, step))
    # APScheduler's own order (mon first) keeps the expression readable in logs.
    return ",".join(_CRON_DAYS[d] for d in sorted(days, key=lambda d: (d - 1) % 7))


def cron_trigger(cron: str, timezone: str) -> CronTrigger:
    """The trigger for a standard five-field cron expression evaluated in ``timezone`` (an IANA name).

    Raises ``ValueError`` for a bad expression or time zone.
    """
    fields = cron.split()
    if len(fields) != 5:
        raise ValueError("must be a five-field cron expression, e.g. '0 7 * * *'")
    minute, hour, day, month, weekday = fields
    if day not in ("*", "?") and weekday not in ("*", "?"):
        raise ValueError("restrict the day of the month or the day of the week, not both")
    try:
        return CronTrigger.from_crontab(f"{minute} {hour} {day} {month} {_weekdays(weekday)}", timezone=timezone)
    except ValueError:
        raise
    except Exception as exc:  # zoneinfo's ZoneInfoNotFoundError and friends
        raise ValueError(f"unknown time zone {timezone!r}") from exc


def check_schedule(cron: str, timezone: str) -> str | None:
    """Why ``cron`` in ``timezone`` cannot be scheduled, or None (for config validation)."""
    try:
        cron_trigger(cron, timezone)
    except ValueError as exc:
        return str(exc)
    return None


def latest_fire(trigger: CronTrigger, now: datetime) -> datetime | None:
    """The last fire time at or before ``now`` (UTC), or None if there was none within ``MAX_LOOKBACK``.

    APScheduler only computes forward, so this looks back over a doubling span until a fire falls in it, then
    steps forward to the last one: a few steps for any regular schedule.
    """
    span = timedelta(minutes=2)
    while span <= MAX_LOOKBACK * 2:
        fire = trigger.get_next_fire_time(None, now - span)
        if fire is not None and fire <= now:
            while True:
                later = trigger.get_next_fire_time(fire, fire + timedelta(seconds=1))
                if later is None or later > now:
                    return fire.astimezone(UTC)
                fire = later
        span *= 2
    return None


def next_fire(trigger: CronTrigger, after: datetime) -> datetime | None:
    """The first fire time strictly after ``after`` (UTC)."""
    fire = trigger.get_next_fire_time(None, after + timedelta(seconds=1))
    return fire.astimezone(UTC) if fire is not None else None


def scheduled_window(trigger: CronTrigger, now: datetime) -> Window | None:
    """The window the latest fire at or before ``now`` closes: from the fire before it up to it."""
    end = latest_fire(trigger, now)
    if end is None:
        return None
    start = latest_fire(trigger, end - timedelta(seconds=1)) or end - MAX_LOOKBACK
    return Window(start, end)


def preview_window(trigger: CronTrigger, now: datetime) -> Window:
    """What a digest sent at ``now`` would cover: since the latest scheduled fire (or a day) up to ``now``."""
    start = latest_fire(trigger, now - timedelta(seconds=1))
    return Window(start or now - timedelta(days=1), now)
