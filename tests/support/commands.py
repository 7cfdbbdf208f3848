"""``monitor`` as a short-lived child process with bounded memory, for tests of what a command prints and how it
exits when its input is hostile (an unbounded loader then fails the test, not the machine).

done = run_monitor("check", "-c", str(path), env={"REDIS_URL": url})
assert done.returncode == 2 and done.stderr == "..."
"""

from __future__ import annotations

import resource
import subprocess
import sys

__all__ = ["MEMORY_LIMIT", "run_monitor"]

#: Address space a command may map: several times what ``monitor check`` of the shipped pack needs.
MEMORY_LIMIT = 1 << 30


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def run_monitor(
    *args: str, env: dict[str, str] | None = None, timeout_s: float = 30
) -> subprocess.CompletedProcess[str]:
    """``python -m monitor ARGS`` in an environment of ``env`` alone (and ``PATH``)."""
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        env={"PATH": "/usr/bin:/bin", **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout_s,
        preexec_fn=_limit_memory,
    )
