"""``monitor run``: the scheduler and the delivery loops, with a clean, bounded shutdown.

The only module that imports APScheduler (3.x). Each feed is one interval job (``max_instances=1``, coalesced,
first run at once, a little jitter so feeds do not fire in lockstep); each sink has one delivery task. SIGTERM
or SIGINT sets ``should_exit``; shutdown then finishes within ``SHUTDOWN_S``, and a second SIGINT forces it.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from datetime import UTC, datetime

import structlog
from apscheduler.executors.asyncio import AsyncIOExecutor
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from monitor.app import App
from monitor.config import FeedConfig

__all__ = ["SHUTDOWN_S", "Daemon"]

SHUTDOWN_S = 8.0
TRIM_EVERY_S = 300
ESCALATION_EVERY_S = 900
log = structlog.get_logger(__name__)


class Daemon:
    def __init__(self, app: App) -> None:
        self.app = app
        self.should_exit = asyncio.Event()
        self.force_exit = False
        self.scheduler: AsyncIOScheduler | None = None
        self._polls: set[asyncio.Task[object]] = set()

    async def _poll(self, feed: FeedConfig) -> None:
        task = asyncio.current_task()
        if task is None or self.should_exit.is_set():
            return
        self._polls.add(task)
        try:
            await self.app.poll_feed(feed)
        finally:
            self._polls.discard(task)

    def _on_signal(self, signum: int) -> None:
        if self.should_exit.is_set() and signum == signal.SIGINT:
            self.force_exit = True
        log.info("shutdown_requested", signal=signal.Signals(signum).name)
        self.should_exit.set()

    def install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._on_signal, signum)

    def _schedule(self) -> AsyncIOScheduler:
        scheduler = AsyncIOScheduler(timezone=UTC, executors={"default": AsyncIOExecutor()})
        now = datetime.now(UTC)
        for feed in self.app.config.feeds:
            scheduler.add_job(
                self._poll,
                "interval",
                args=[feed],
                id=feed.name,
                name=feed.name,
                seconds=feed.interval_s,
                jitter=min(feed.interval_s * 0.1, 30),
                next_run_time=now,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=max(feed.interval_s, 30),
            )
        scheduler.add_job(
            self.app.trim_outbox, "interval", id="trim-outbox", seconds=TRIM_EVERY_S, max_instances=1, coalesce=True
        )
        scheduler.add_job(
            self.app.refresh_escalation,
            "interval",
            id="escalation",
            seconds=ESCALATION_EVERY_S,
            max_instances=1,
            coalesce=True,
        )
        digests = self.app.config.digests
        if digests:
            # Imported here so that a config without digests never loads the e-mail stack.
            from datetime import timedelta

            from monitor.digest_send import CATCH_UP_EVERY_S, digest_sender
            from monitor.digest_window import cron_trigger

            sender = digest_sender(self.app.config, self.app.redis, self.app.store.keys, self.app.clock)
            for digest in digests:
                # The schedule's cron, Sunday = 0 as in crontab (see digest_window); a late fire still sends.
                scheduler.add_job(
                    sender.send_scheduled,
                    cron_trigger(digest.cron, digest.timezone),
                    args=[digest],
                    id=f"digest-{digest.name}",
                    name=f"digest {digest.name}",
                    max_instances=1,
                    coalesce=True,
                    misfire_grace_time=3600,
                )
            # Sends a latest window that no one sent (a failed send, a crash after claiming, a restart after the
            # fire time); first right at start. Claims keep it from sending anything twice.
            scheduler.add_job(
                sender.catch_up,
                "interval",
                args=[digests],
                id="digest-catch-up",
                seconds=CATCH_UP_EVERY_S,
                next_run_time=now + timedelta(seconds=5),
                max_instances=1,
                coalesce=True,
            )
        return scheduler

    async def serve(self) -> None:
        """Run until ``should_exit`` is set, then stop everything within ``SHUTDOWN_S``."""
        await self.app.start()
        self.scheduler = self._schedule()
        self.scheduler.start()
        deliveries = [
            asyncio.create_task(d.run(self.should_exit), name=f"deliver-{d.sink.name}") for d in self.app.deliverers
        ]
        log.info(
            "monitor_started",
            feeds=len(self.app.config.feeds),
            rules=len(self.app.ruleset.rules),
            sinks=[s.name for s in self.app.sinks],
        )
        await self.should_exit.wait()
        await self.shutdown(deliveries)

    async def shutdown(self, deliveries: list[asyncio.Task[None]]) -> None:
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        pending: list[asyncio.Task[object]] = [*deliveries, *self._polls]
        if pending and not self.force_exit:
            _, late = await asyncio.wait(pending, timeout=SHUTDOWN_S)
        else:
            late = set(pending)
        for task in late:
            task.cancel()
        for task in late:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        log.info("monitor_stopped", unfinished=len(late))
