"""``monitor run``: the scheduler and the delivery loops, with a clean, bounded shutdown.

The only module that runs APScheduler (3.x) jobs. Each feed is a chain of one-off jobs: every poll schedules the
next after the delay it chose (adaptive, with jitter; see
``monitor.fetching.schedule``); each sink has one delivery task.
SIGTERM or SIGINT sets ``should_exit``; shutdown then finishes within ``SHUTDOWN_S``, and a second SIGINT forces it.
SIGHUP reloads the configuration and the rules (``reload``): a bad new one is reported and the last good one kept.
With metrics enabled, ``open_endpoints`` serves ``/metrics``, ``/healthz`` and ``/readyz`` (``monitor.service.health``).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import structlog
from apscheduler.executors.asyncio import AsyncIOExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from monitor.config import Config, FeedConfig
from monitor.core.errors import ConfigError, StartupError, StoreError
from monitor.detection.rulefile import RuleSet
from monitor.service.clockwatch import ClockWatch, shift_jobs
from monitor.service.health import HealthServer
from monitor.service.metrics import Metrics
from monitor.service.reload import FeedChanges, feed_changes, restart_needed
from monitor.service.root import App, dashboard_installer
from monitor.service.sink_tasks import SinkTasks
from monitor.storage.backlog import read_backlog
from monitor.storage.connection import ping
from monitor.storage.readiness import outbox_length, probe_write, redis_primary

__all__ = ["HEARTBEAT_EVERY_S", "HEARTBEAT_STALE_S", "SHUTDOWN_S", "Daemon"]

SHUTDOWN_S = 8.0
TRIM_EVERY_S = 300
ESCALATION_EVERY_S = 900
#: The scheduler's heartbeat job runs this often; readiness fails once the last beat is older than
#: ``HEARTBEAT_STALE_S`` (three intervals): a scheduler that stopped running jobs, or a starved event loop.
HEARTBEAT_EVERY_S = 5.0
HEARTBEAT_STALE_S = 3 * HEARTBEAT_EVERY_S
#: How long readiness waits for each Redis step, well inside the health server's ``PROBE_TIMEOUT_S``.
REDIS_STEP_S = 1.0
log = structlog.get_logger(__name__)


#: Reads the configuration and the rules again (in a worker thread); raises ``ConfigError`` with every problem.
Loader = Callable[[], tuple[Config, RuleSet]]


class Daemon:
    """``loader`` enables SIGHUP reloads; ``on_reload`` is told of each configuration about to be applied (the CLI
    uses it to redact new secrets from the logs); ``metrics`` is served by ``open_endpoints``."""

    def __init__(
        self,
        app: App,
        *,
        metrics: Metrics | None = None,
        loader: Loader | None = None,
        on_reload: Callable[[Config], None] | None = None,
    ) -> None:
        self.app = app
        self.should_exit = asyncio.Event()
        self.force_exit = False
        self.scheduler: AsyncIOScheduler | None = None
        self.endpoints: HealthServer | None = None
        self._polls: set[asyncio.Task[object]] = set()
        self._sink_tasks = SinkTasks()
        self._metrics = metrics
        self._loader = loader
        self._on_reload = on_reload
        self._reload_lock = asyncio.Lock()
        self._reloads: set[asyncio.Task[bool]] = set()
        #: When the scheduler last ran its heartbeat job (the app's clock); None before it was built.
        self.heartbeat: datetime | None = None
        self._clock_watch: ClockWatch | None = None

    async def _beat(self) -> None:
        """The heartbeat job: a coroutine, so it proves both that the scheduler fires jobs and that the loop runs."""
        self.heartbeat = self.app.clock.now()
        await self.app.check_generation()  # a Redis emptied while no feed is being read is noticed here

    def _clock_stepped(self, step: timedelta) -> None:
        if self.scheduler is not None and self.scheduler.running:
            shift_jobs(self.scheduler, step, self.app.clock.now())

    async def _poll(self, feed: FeedConfig) -> None:
        """One poll, then the next one is scheduled after the delay the poll chose (adaptive, see schedule.py)."""
        task = asyncio.current_task()
        if task is None or self.should_exit.is_set():
            return
        self._polls.add(task)
        try:
            await self.app.poll_feed(feed)
            await self.app.extend_lease(feed)
        except asyncio.CancelledError:
            if not self.should_exit.is_set():
                raise
            # Stopping, and this poll outlasted the grace period: it is abandoned (its articles were not claimed,
            # so the next start fetches them again). Not re-raised: APScheduler would log it as a failed job.
            log.info("feed_poll_abandoned", feed=feed.name)
        finally:
            self._polls.discard(task)
            self._schedule_feed(feed, self.app.next_delays.get(feed.name, float(feed.interval_s)))

    def _schedule_feed(self, feed: FeedConfig, delay_s: float) -> None:
        if self.scheduler is None or not self.scheduler.running or self.should_exit.is_set():
            return
        # The current definition: a reload may have changed or removed the feed while it was being polled.
        current = self.app.feed(feed.name)
        if current is None:
            return
        feed = current
        self.scheduler.add_job(
            self._poll,
            "date",
            run_date=self.app.clock.now() + timedelta(seconds=delay_s),
            args=[feed],
            id=feed.name,
            name=feed.name,
            replace_existing=True,
            max_instances=1,
            misfire_grace_time=None,  # however late (a paused process, a clock step): a missed poll ends its chain
        )

    def _on_signal(self, signum: int) -> None:
        if self.should_exit.is_set() and signum == signal.SIGINT:
            self.force_exit = True
        log.info("shutdown_requested", signal=signal.Signals(signum).name)
        self.should_exit.set()

    def install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._on_signal, signum)
        loop.add_signal_handler(signal.SIGHUP, self._on_hangup)

    def _on_hangup(self) -> None:
        if self.should_exit.is_set():
            return  # stopping anyway; the next start reads the files
        log.info("reload_requested", signal="SIGHUP")
        task = asyncio.get_running_loop().create_task(self.reload())
        self._reloads.add(task)
        task.add_done_callback(self._reloads.discard)

    def _schedule(self) -> AsyncIOScheduler:
        scheduler = AsyncIOScheduler(timezone=UTC, executors={"default": AsyncIOExecutor()})
        now = self.app.clock.now()
        for feed in self.app.config.feeds:
            # First polls all at once (the fetch concurrency bounds them), then each feed follows its own adaptive
            # delay: what they bring back (a new feed's items, the stories missed while the daemon was down) is
            # gathered and read oldest story first across feeds (``processing.coalesce``).
            scheduler.add_job(
                self._poll,
                "date",
                run_date=now,
                args=[feed],
                id=feed.name,
                name=feed.name,
                max_instances=1,
                misfire_grace_time=None,
            )
        self.heartbeat = now  # the scheduler is built now; a beat follows each HEARTBEAT_EVERY_S
        scheduler.add_job(
            self._beat, "interval", id="heartbeat", seconds=HEARTBEAT_EVERY_S, max_instances=1, coalesce=True
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
        self._schedule_digests(scheduler, now)
        return scheduler

    def _schedule_digests(self, scheduler: AsyncIOScheduler, now: datetime) -> None:
        digests = self.app.config.digests
        if not digests:
            return
        # Imported here so that a config without digests never loads the e-mail stack.
        from monitor.digests.send import CATCH_UP_EVERY_S, digest_sender
        from monitor.service.cron import cron_trigger, fires
        from monitor.storage.digests import DigestStore

        store = DigestStore(self.app.redis, self.app.store.keys)
        sender = digest_sender(self.app.config, store, self.app.clock, fires=fires)
        for digest in digests:
            # The schedule's cron, Sunday = 0 as in crontab (see monitor.service.cron); a late fire still sends.
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
        # Sends a latest window no one sent (failed send, crash after claim, restart after the fire); first at
        # start, where a fresh install only records that its digests begin. Claims stop any second send.
        scheduler.add_job(
            sender.catch_up,
            "interval",
            args=[digests],
            id="digest-catch-up",
            seconds=CATCH_UP_EVERY_S,
            next_run_time=now + timedelta(seconds=1),
            max_instances=1,
            coalesce=True,
        )

    async def serve(self) -> None:
        """Run until ``should_exit`` is set, then stop everything within ``SHUTDOWN_S``."""
        await self.app.start()
        self.scheduler = self._schedule()
        self.scheduler.start()
        self._clock_watch = ClockWatch(self.app.clock, self._clock_stepped)
        self._clock_watch.start()
        for deliverer in self.app.deliverers:
            self._sink_tasks.start(deliverer)
        log.info(
            "monitor_started",
            replica=self.app.replica,
            feeds=len(self.app.config.feeds),
            rules=len(self.app.ruleset.rules),
            sinks=[s.name for s in self.app.sinks],
            metrics_port=self.endpoints.port if self.endpoints else None,
        )
        await self.should_exit.wait()
        await self.shutdown()

    async def shutdown(self) -> None:
        if self._clock_watch is not None:
            await self._clock_watch.stop()
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        self._sink_tasks.signal_all()
        pending: list[asyncio.Task[object]] = [*self._sink_tasks.tasks, *self._polls, *self._reloads]
        if pending and not self.force_exit:
            _, late = await asyncio.wait(pending, timeout=SHUTDOWN_S)
        else:
            late = set(pending)
        for task in late:
            task.cancel()
        for task in late:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if not self.force_exit:
            await self._release_leases()
        await self.close_endpoints()
        log.info("monitor_stopped", unfinished=len(late))

    async def _release_leases(self) -> None:
        """Hand this replica's feed leases back, so another replica (or this one restarted) polls them at once."""
        with contextlib.suppress(StoreError, TimeoutError):
            async with asyncio.timeout(2.0):
                await self.app.release_leases(self.app.config.feeds)

    # -- SIGHUP ------------------------------------------------------------------------------------------

    async def reload(self) -> bool:
        """Apply the configuration and rules as they are now on disk; True when applied. A bad configuration (or
        rule pack, or a sink that cannot be built) changes nothing: ``config_reload_failed`` lists every problem
        as ``path:line: reason`` and the daemon goes on with what it had; so does any other exception (a bug)."""
        if self._loader is None:
            log.warning("config_reload_failed", problems=["this daemon was started without a configuration file"])
            return False
        async with self._reload_lock:
            try:
                config, ruleset = await asyncio.to_thread(self._loader)
                change = await self.app.prepare_reload(config, ruleset)
            except ConfigError as exc:
                log.error("config_reload_failed", problems=[str(p) for p in exc.problems])
                self.app.observer.config_reloaded(False)
                return False
            except Exception as exc:  # whatever else loading or building raised: a reload never takes the daemon down
                log.error("config_reload_failed", problems=[f"{type(exc).__name__}: {exc}"])
                self.app.observer.config_reloaded(False)
                return False
            old = self.app.config
            feeds = feed_changes(old, config)
            if self._on_reload is not None:
                self._on_reload(config)
            for deliverer in change.started:
                # Before the switch, so a new sink's group exists before the new config enqueues anything.
                with contextlib.suppress(StoreError):
                    await deliverer.ensure_group()
            self.app.apply_reload(change)
            self._reschedule(feeds)
            await self._sink_tasks.stop(change.stopped, SHUTDOWN_S)
            # Before serve() every deliverer is started there; after should_exit none may start.
            if self.scheduler is not None and not self.should_exit.is_set():
                for deliverer in change.started:
                    self._sink_tasks.start(deliverer)
            log.info(
                "config_reloaded",
                feeds=len(config.feeds),
                feeds_added=[f.name for f in feeds.added],
                feeds_removed=[f.name for f in feeds.removed],
                feeds_changed=[f.name for f in feeds.changed],
                rules=len(ruleset.rules),
                sinks_started=[d.sink.name for d in change.started],
                sinks_stopped=[d.sink.name for d in change.stopped],
            )
            later = restart_needed(old, config)
            if later:
                log.warning("config_restart_needed", sections=later)
            self.app.observer.config_reloaded(True)
            return True

    def _reschedule(self, feeds: FeedChanges) -> None:
        if self.scheduler is None:
            return
        for feed in feeds.removed:
            with contextlib.suppress(JobLookupError):
                self.scheduler.remove_job(feed.name)
        for feed in [*feeds.added, *feeds.changed]:
            self._schedule_feed(feed, 0.0)

    # -- /metrics, /healthz, /readyz ---------------------------------------------------------------------

    async def open_endpoints(self) -> None:
        """Serve the metrics and health endpoints (when ``metrics.enabled``). Call before waiting for Redis, so
        that liveness answers meanwhile. An address that cannot be bound is logged as an error, not fatal: alerts
        matter more than their metrics, and the failing health check makes the problem visible."""
        settings = self.app.config.metrics
        if not settings.enabled or self._metrics is None:
            return
        server = HealthServer(
            host=settings.host,
            port=settings.port,
            metrics=self._metrics,
            readiness=self.readiness,
            before_scrape=self._read_backlog,
            extend=dashboard_installer(self.app),
        )
        try:
            port = await server.start()
        except StartupError as exc:
            log.error("metrics_unavailable", reason=str(exc))
            return
        self.endpoints = server
        paths = ["/metrics", "/healthz", "/readyz", *(["/"] if self.app.config.web.enabled else [])]
        log.info("metrics_serving", host=settings.host, port=port, paths=paths)

    async def close_endpoints(self) -> None:
        if self.endpoints is not None:
            await self.endpoints.stop()

    async def readiness(self) -> str | None:
        """None when ready, else the reason (one line): the scheduler ran its heartbeat within ``HEARTBEAT_STALE_S``,
        Redis answers PING, the primary takes a write (``probe_write``) and the outbox stream can be read."""
        if self.should_exit.is_set():
            return "shutting down"
        if self.scheduler is None or not self.scheduler.running or self.heartbeat is None:
            return "scheduler not running (starting, or waiting for Redis)"
        age = (self.app.clock.now() - self.heartbeat).total_seconds()
        if age > HEARTBEAT_STALE_S:
            return f"scheduler heartbeat is {age:.0f}s old (expected every {HEARTBEAT_EVERY_S:g}s)"
        redis, keys, stamp = self.app.redis, self.app.store.keys, self.heartbeat.isoformat()
        steps: tuple[tuple[str, Callable[[], Awaitable[object]]], ...] = (
            ("Redis did not answer PING", lambda: ping(redis)),
            ("Redis refused a write", lambda: probe_write(redis, keys, self.app.replica or "-", stamp)),
            ("the outbox stream cannot be read", lambda: outbox_length(redis, keys)),
        )
        for failure, step in steps:
            try:
                async with asyncio.timeout(REDIS_STEP_S):
                    await step()
            except StoreError as exc:  # named after the client's own error, e.g. ConnectionError or ReadOnlyError
                return f"{failure} ({type(exc.__cause__ or exc).__name__})"
            except TimeoutError:
                return f"{failure} within {REDIS_STEP_S:g}s"
        return None

    async def _read_backlog(self) -> None:
        assert self._metrics is not None
        now_ms = int(self.app.clock.now().timestamp() * 1000)
        with contextlib.suppress(StoreError):
            self._metrics.set_redis_primary(await redis_primary(self.app.redis, self.app.store.keys))
        try:
            backlog = await read_backlog(self.app.redis, self.app.store.keys)
        except Exception:
            self._metrics.set_backlog([], now_ms)  # no stale figures while Redis cannot be read
            raise
        self._metrics.set_backlog(backlog, now_ms)
