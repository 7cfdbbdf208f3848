"""The file sink: appends each alert as one JSON line, for scripts that tail or batch-process alerts."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

from monitor.core.errors import DeliveryError

__all__ = ["FileSink"]


class FileSink:
    """Appends alerts to a JSON Lines file, creating it (and its folder) on first use.

    Each line is written with one ``write`` on an ``O_APPEND`` descriptor, so lines from concurrent writers
    (several replicas sharing a disk) do not interleave. An ``OSError`` (disk full, permissions) raises
    ``DeliveryError``: the outbox retries it, since such conditions are often fixed without a restart.
    """

    def __init__(self, name: str, path: Path, *, min_severity: int | None = None) -> None:
        self.name = name
        self.path = path
        self.min_severity = min_severity
        # Keeps lines in delivery order when the outbox sends several alerts at once.
        self._lock = asyncio.Lock()

    def _append(self, line: bytes) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)

    async def send(self, alert: dict[str, Any]) -> None:
        """Append one line; the write runs in a thread so a slow disk never stalls the event loop."""
        line = json.dumps(alert, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"
        async with self._lock:
            try:
                await asyncio.to_thread(self._append, line)
            except OSError as exc:
                raise DeliveryError(f"cannot append to {self.path}: {exc.strerror or type(exc).__name__}") from exc

    async def close(self) -> None:
        """Nothing is held open between alerts."""
