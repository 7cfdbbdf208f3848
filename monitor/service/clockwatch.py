"""Keeping the scheduler's timetable when the wall clock steps (NTP, a VM resumed, an operator's ``date -s``).

APScheduler 3 times its jobs in wall-clock time: after a step back of an hour every job waits an hour more (the
feeds freeze), and after a step forward every one-off poll is overdue. ``ClockWatch`` compares the wall clock
with the monotonic one every few seconds; when they part by more than ``STEP_S`` it logs ``clock_stepped`` and
moves every job's next run by the step, so each keeps the delay it had (no freeze, no burst). Polls are scheduled
without a misfire grace (see ``Daemon``), so one that falls due in the moment before the step is noticed still runs.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import datetime, timedelta

import structlog
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.cron import CronTrigger

from monitor.core.clock import Clock

__all__ = ["STEP_S", "ClockWatch", "shift_jobs"]

log = structlog.get_logger(__name__)

#: A difference between the two clocks larger than this, over one look, is a step (a loaded machine delays a look
#: by a fraction of a second, and both clocks see that delay alike).
STEP_S = 2.0


def shift_jobs(scheduler: BaseScheduler, step: timedelta, now: datetime) -> int:
    """Move the next run of every job timed by a delay (polls, interval jobs) before the step by ``step``; the
    number moved. Cron jobs (digests) are left alone: "at 07:00" means the wall clock's 07:00, stepped or not.

    A job rescheduled in the moment between the step and this call (a poll that ran and chose its next delay) is
    already timed by the new clock and must not move again: jobs of the old timeline lie about ``step`` away from
    those of the new one, so a job counts as old when its next run is on the far side of ``now - step / 2``."""
    moved = 0
    middle = now - step / 2
    for job in scheduler.get_jobs():
        if job.next_run_time is None or isinstance(job.trigger, CronTrigger):
            continue
        if (job.next_run_time < middle) == (step > timedelta(0)):
            job.modify(next_run_time=job.next_run_time + step)
            moved += 1
    scheduler.wakeup()
    return moved


class ClockWatch:
    """Looks at both clocks every ``every_s`` (monotonic) seconds and reports each step to ``on_step``."""

    def __init__(self, clock: Clock, on_step: Callable[[timedelta], None], *, every_s: float = 1.0) -> None:
        self.clock = clock
        self.on_step = on_step
        self.every_s = every_s
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        wall, mono = self.clock.now(), self.clock.monotonic()
        while True:
            await asyncio.sleep(self.every_s)
            now, then = self.clock.now(), self.clock.monotonic()
            step = (now - wall) - timedelta(seconds=then - mono)
            if abs(step.total_seconds()) > STEP_S:
                log.warning("clock_stepped", step_s=round(step.total_seconds(), 3))
                try:
                    self.on_step(step)
                except Exception:  # the watch must outlive a failing callback
                    log.exception("clock_step_handling_failed")
            wall, mono = now, then
