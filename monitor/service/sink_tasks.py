"""The daemon's delivery tasks: one per sink, each with a stop signal of its own, so that a reload can stop the
deliverer of a changed sink (letting its in-flight sends finish) while every other sink keeps delivering."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable

import structlog

from monitor.delivery.outbox import Deliverer

__all__ = ["SinkTasks"]

log = structlog.get_logger(__name__)


class SinkTasks:
    def __init__(self) -> None:
        self._running: dict[Deliverer, tuple[asyncio.Event, asyncio.Task[None]]] = {}

    @property
    def tasks(self) -> list[asyncio.Task[None]]:
        return [task for _, task in self._running.values()]

    def start(self, deliverer: Deliverer) -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(deliverer.run(stop), name=f"deliver-{deliverer.sink.name}")
        self._running[deliverer] = (stop, task)

    def signal_all(self) -> None:
        """Ask every deliverer to stop (the daemon's shutdown waits for the tasks itself)."""
        for stop, _ in self._running.values():
            stop.set()

    async def stop(self, deliverers: Iterable[Deliverer], timeout_s: float) -> None:
        """Stop these deliverers and close their sinks; sends still running after ``timeout_s`` are cancelled
        (their entries stay pending in Redis and the next deliverer of that sink re-reads them)."""
        stopping = [(d, *self._running.pop(d)) for d in deliverers if d in self._running]
        for _, stop, _ in stopping:
            stop.set()
        tasks = [task for _, _, task in stopping]
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=timeout_s)
            for task in late:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for deliverer, _, _ in stopping:
            with contextlib.suppress(Exception):
                await deliverer.sink.close()
            log.info("sink_stopped", sink=deliverer.sink.name)
