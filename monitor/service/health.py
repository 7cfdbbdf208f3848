"""The daemon's small HTTP server: ``/metrics`` (Prometheus), ``/healthz`` (alive) and ``/readyz`` (ready).

- ``/healthz`` answers 200 whenever the event loop runs: a wedged loop cannot answer at all, which is what a
  liveness probe or the image's HEALTHCHECK needs to see.
- ``/readyz`` answers 200 only when the daemon says it is ready (its scheduler ran lately, the Redis primary takes
  a write and the outbox stream can be read; see ``Daemon.readiness``), else 503 with a one-line JSON ``reason``:
  a load balancer or orchestrator stops counting on this replica meanwhile.
- Everything else is the dashboard's when it is enabled (``extend``; see ``monitor.web``).
- ``/metrics`` refreshes what is read from Redis at scrape time (the outbox backlog) and the ``monitor_ready``
  gauge (the same check as ``/readyz``), then renders the registry.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from monitor.core.errors import StartupError
from monitor.service.metrics import Metrics

__all__ = ["HealthServer", "Readiness"]

#: Returns None when ready, else why not (short, safe to publish: it is served without authentication).
Readiness = Callable[[], Awaitable[str | None]]
#: Bounds what a probe or a scrape waits for Redis; a probe must answer well inside its own timeout.
PROBE_TIMEOUT_S = 2.0

log = structlog.get_logger(__name__)


class HealthServer:
    """``start()`` binds (port 0 picks a free one, see ``port``); ``stop()`` closes."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        metrics: Metrics,
        readiness: Readiness,
        before_scrape: Callable[[], Awaitable[None]] | None = None,
        extend: Callable[[web.Application], None] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self._metrics = metrics
        self._readiness = readiness
        self._before_scrape = before_scrape
        self._extend = extend  # adds more to serve (the dashboard, see ``monitor.web``)
        self._runner: web.AppRunner | None = None

    async def start(self) -> int:
        """Bind and serve; returns the port. Raises ``StartupError`` when the address cannot be bound."""
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._scrape)
        if self._extend is not None:
            self._extend(app)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0, handle_signals=False)
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self.port).start()
        except OSError as exc:
            await runner.cleanup()
            raise StartupError(
                f"cannot serve metrics on {self.host}:{self.port}: {exc.strerror or exc} "
                "(change metrics.port, use 0 for any free port, or set metrics.enabled: false)"
            ) from exc
        self._runner = runner
        self.port = runner.addresses[0][1]
        return self.port

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "alive"})

    async def _check_ready(self) -> str | None:
        """The readiness check, bounded by ``PROBE_TIMEOUT_S``; sets the ``monitor_ready`` gauge."""
        try:
            reason = await asyncio.wait_for(self._readiness(), PROBE_TIMEOUT_S)
        except TimeoutError:
            reason = f"readiness check took more than {PROBE_TIMEOUT_S:g}s"
        self._metrics.set_ready(reason is None)
        return reason

    async def _readyz(self, request: web.Request) -> web.Response:
        reason = await self._check_ready()
        if reason is None:
            return web.json_response({"status": "ready"})
        return web.json_response({"status": "not ready", "reason": reason}, status=503)

    async def _scrape(self, request: web.Request) -> web.Response:
        if self._before_scrape is not None:
            try:
                await asyncio.wait_for(self._before_scrape(), PROBE_TIMEOUT_S)
            except Exception as exc:  # a Redis outage must not break the scrape: the counters are still worth it
                log.warning("metrics_refresh_failed", error=type(exc).__name__, detail=str(exc)[:200])
        await self._check_ready()
        return web.Response(body=self._metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})
