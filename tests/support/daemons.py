"""``monitor run`` as a real child process, for the tests that need whole daemons (replicas, reloads, start-up).

proc = await start_daemon(config_path, log_path, REDIS_URL=url, MONITOR_REPLICA="r1")
await wait_for_log(log_path, "monitor_started")
await stop_daemon(proc)          # SIGTERM, then the exit code
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["log_events", "start_daemon", "stop_daemon", "wait_for_log"]


async def start_daemon(
    config: Path, log: Path, *, drop: tuple[str, ...] = (), **env: str
) -> asyncio.subprocess.Process:
    """Start ``monitor run -c config`` with ``env`` added to this process's environment (less ``drop``); its
    stdout and stderr are appended to ``log``."""
    child_env = {k: v for k, v in os.environ.items() if k not in drop}
    child_env.update(env)
    with log.open("ab") as out:  # the child keeps its own copy of the descriptor
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "monitor", "run", "-c", str(config), env=child_env, stdout=out, stderr=out
        )


async def stop_daemon(proc: asyncio.subprocess.Process, timeout_s: float = 12) -> int:
    """SIGTERM and wait; SIGKILL if it does not stop in time. Returns the exit code."""
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), timeout_s)
        except TimeoutError:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return proc.returncode


def log_events(log: Path) -> list[dict[str, Any]]:
    """The JSON log lines written so far (other lines are skipped)."""
    events = []
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            event = json.loads(line)
            if isinstance(event, dict):
                events.append(event)
    return events


def _matching(log: Path, event: str, fields: dict[str, Any]) -> list[dict[str, Any]]:
    if not log.exists():
        return []
    return [e for e in log_events(log) if e.get("event") == event and all(e.get(k) == v for k, v in fields.items())]


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:] if log.exists() else "(no log)"


async def wait_for_log(
    log: Path, event: str, *, count: int = 1, timeout_s: float = 20, **fields: Any
) -> dict[str, Any]:
    """Wait until ``log`` holds ``count`` events named ``event`` with these field values; returns the last one."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = _matching(log, event, fields)
        if len(found) >= count:
            return found[count - 1]
        if time.monotonic() > deadline:
            raise AssertionError(f"no {event} {fields or ''} in {log} within {timeout_s}s; log ends:\n{_tail(log)}")
        await asyncio.sleep(0.05)
