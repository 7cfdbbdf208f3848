"""Digest schedules: five-field cron expressions as APScheduler triggers, and their fire times.

The daemon schedules each digest with ``cron_trigger``, and the digests compute their windows from ``fires`` of
the same trigger, so the two always agree on when a window starts (the claim that sends a digest once is keyed on
that start). ``CONFIG_CHECKS`` lets ``monitor.config.load_config`` report a schedule that cannot run at its line.

Two differences between APScheduler 3 and standard cron are closed here rather than passed on to users:
APScheduler numbers weekdays from Monday = 0 where cron has Sunday = 0 (so ``* * * * 1`` would fire on
Tuesdays), and it ANDs a restricted day-of-month with a restricted day-of-week where cron ORs them. Weekday
numbers are translated to names, and restricting both fields is refused.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import partial

from apscheduler.triggers.cron import CronTrigger

from monitor.config import DigestConfig, SectionCheck
from monitor.digests.window import MAX_LOOKBACK, Fires

__all__ = ["CONFIG_CHECKS", "check_schedule", "cron_trigger", "fires", "latest_fire", "next_fire"]

_CRON_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


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


def fires(cron: str, timezone: str) -> Fires:
    """The fire times of ``cron`` in ``timezone``, as the digests take them (``monitor.digests.window.FiresOf``).

    Raises ``ValueError`` for a bad expression or time zone, as ``cron_trigger`` does.
    """
    trigger = cron_trigger(cron, timezone)
    return Fires(latest=partial(latest_fire, trigger), after=partial(next_fire, trigger))


#: The checks ``load_config`` cannot make without this layer: every digest's schedule must be one APScheduler runs.
CONFIG_CHECKS: tuple[SectionCheck[DigestConfig], ...] = (
    SectionCheck(DigestConfig, lambda digest: check_schedule(digest.cron, digest.timezone)),
)
