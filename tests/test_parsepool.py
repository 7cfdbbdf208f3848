"""The parser workers: a stuck parse costs only its own feed, shutdown does not wait for parses, workers die with
the daemon even when it is SIGKILLed, and they log like the daemon."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.core.errors import ParseError
from monitor.parsing.pool import ParserPool
from tests.support.articles import ESCALATION, rss

ROOT = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 1, 1, tzinfo=UTC)
# Markup in every title sends the feed to feedparser, which needs seconds for 12,000 items.
SLOW = rss(ESCALATION[:1]).replace(b"</channel>", b"<item><title>a <b>b</b></title></item>" * 12_000 + b"</channel>")
#: A deadline for what must succeed (a worker starting, a small feed): minutes of margin on a loaded 2-core machine.
LONG_S = 30.0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _gone(pids: list[int], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while any(_alive(p) for p in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


async def test_feeds_queued_behind_a_stuck_parse_are_parsed_by_the_new_workers() -> None:
    """The deadlines are measured against the parses, not against whatever else the machine is doing: the worker is
    started first, under a deadline no loaded machine misses; the stuck parse alone gets a short one (a tenth of
    what SLOW takes on an idle core, so it is always overrun); the feeds queued behind it, re-sent to a new worker
    that has to start, get the long one again."""
    pool = ParserPool(workers=1, memory_mb=512, timeout_s=LONG_S)
    try:
        await pool.parse(rss(ESCALATION[:1]), headers={}, feed="warm", url="http://x/", fetched=NOW)
        pool.timeout_s = 0.1
        stuck = asyncio.create_task(pool.parse(SLOW, headers={}, feed="slow", url="http://x/slow", fetched=NOW))
        await asyncio.sleep(0)  # the slow parse is sent to the only worker, with its deadline; these queue behind it
        pool.timeout_s = LONG_S
        queued = [
            pool.parse(rss(ESCALATION[:2]), headers={}, feed=f"ok{i}", url="http://x/", fetched=NOW) for i in range(5)
        ]
        results = await asyncio.gather(stuck, *queued, return_exceptions=True)
    finally:
        pool.close()
    assert isinstance(results[0], ParseError) and results[0].reason == "parsing took longer than 0.1 s"
    assert [len(r) for r in results[1:] if isinstance(r, list)] == [2] * 5, results[1:]


async def test_close_does_not_wait_for_a_running_parse() -> None:
    pool = ParserPool(workers=1, memory_mb=512, timeout_s=60)
    running = asyncio.create_task(pool.parse(SLOW, headers={}, feed="slow", url="http://x/", fetched=NOW))
    await asyncio.sleep(0.3)
    pids = list(getattr(pool._pool, "_processes", {}))
    assert pids
    started = time.monotonic()
    await asyncio.to_thread(pool.close)
    assert time.monotonic() - started < 2
    with pytest.raises((ParseError, asyncio.CancelledError)):
        await running
    assert await asyncio.to_thread(_gone, pids, 5)


_CHILD = textwrap.dedent(
    """
    import asyncio, os, sys, time
    from datetime import UTC, datetime
    sys.path.insert(0, {root!r})
    from monitor.parsing.pool import ParserPool

    BROKEN = b"<rss version='2.0'><channel><title>t</title><item><title>Half an item</title>"

    async def main():
        pool = ParserPool(workers=2, memory_mb=512, timeout_s=30, log_level="info", log_format="json")
        await asyncio.gather(*(
            pool.parse(BROKEN, headers={{}}, feed=f"f{{i}}", url="http://x/", fetched=datetime.now(UTC))
            for i in range(4)
        ))
        print(" ".join(str(p) for p in pool._pool._processes), flush=True)
        time.sleep(60)

    asyncio.run(main())
    """
)


def test_workers_die_with_a_killed_daemon_and_log_json_on_stderr() -> None:
    with subprocess.Popen(
        [sys.executable, "-c", _CHILD.format(root=str(ROOT))],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as child:
        try:
            assert child.stdout is not None
            line = child.stdout.readline()
            workers = [int(p) for p in line.split()]
            assert len(workers) == 2 and all(_alive(p) for p in workers), line
            child.send_signal(signal.SIGKILL)
            child.wait(10)
            assert _gone(workers, 10), "parser workers outlived the killed daemon"
            assert child.stderr is not None
            logged = [json.loads(line) for line in child.stderr.read().splitlines() if line.startswith("{")]
            assert any(entry.get("event") == "feed_malformed" for entry in logged), logged
        finally:
            if child.poll() is None:
                child.kill()
