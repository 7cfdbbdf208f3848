"""Redis restarted empty in the middle of a stream (issue 17, RELIABILITY.md §3.3 "Redis restart without
persistence"): a real ``monitor run`` daemon, a throwaway redis-server without persistence that the test SIGKILLs
and starts again, a loopback feed and a dozen sinks (six signed webhook receivers, six JSONL files).

Before the generation marker, every article still in the feed alerted again after the restart with the same ids;
now the daemon notices the loss, re-reads the feed silently up to its last read and alerts only what is new."""

from __future__ import annotations

import asyncio
import json
import time
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.support.articles import ESCALATION, Item, rss
from tests.support.daemons import log_events, start_daemon, stop_daemon, wait_for_log
from tests.support.feedserver import FeedServer
from tests.support.redis_process import RedisProcess
from tests.support.webhook_receiver import WebhookReceiver

ROOT = Path(__file__).resolve().parents[1]
SECRET = "whsec_" + "d2lwZS10ZXN0LXNlY3JldC0wMTIzNDU2Nzg5YWI="


def config_text(tmp_path: Path, feed_url: str, hooks: list[str], files: list[Path]) -> str:
    sinks = [{"type": "webhook", "name": f"hook{n}", "url": url, "secret": SECRET} for n, url in enumerate(hooks)]
    sinks += [{"type": "file", "name": f"file{n}", "path": str(path)} for n, path in enumerate(files)]
    config = {
        "rules": [str(ROOT / "rules")],
        "redis": {"data_dir": str(tmp_path / "state"), "socket_timeout_s": 2, "connect_timeout_s": 2},
        "log": {"format": "json"},
        "escalation": {"thresholds": [1000, 2000, 3000, 4000]},  # event alerts only: one per article here
        "fetch": {"allow_private_networks": True, "timeout_s": 5},
        "feeds": [{"name": "wire", "url": feed_url, "interval_s": 1, "adaptive": False}],
        "alerts": {"sinks": sinks, "max_attempts": 50, "max_retry_delay_s": 0.5},
    }
    return json.dumps(config)  # JSON is YAML


def file_ids(path: Path) -> list[str]:
    if not path.exists():
        return []
    return [json.loads(line)["id"] for line in path.read_text().splitlines() if line.strip()]


async def until(condition: object, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"not within {timeout_s}s: {what}"
        await asyncio.sleep(0.1)


@pytest.mark.timeout(180)
async def test_redis_restarted_empty_mid_stream_repeats_nothing_and_loses_nothing(tmp_path: Path) -> None:
    server = RedisProcess(tmp_path / "redis")
    url = server.start()
    files = [tmp_path / f"alerts{n}.jsonl" for n in range(6)]
    log = tmp_path / "daemon.log"
    early = datetime.now(UTC) - timedelta(minutes=30)
    old = [Item(i.guid, i.title, i.description, early) for i in ESCALATION[:3]]
    async with AsyncExitStack() as stack:
        feeds = await stack.enter_async_context(FeedServer())
        hooks = [await stack.enter_async_context(WebhookReceiver(SECRET)) for _ in range(6)]
        feeds.set_feed("/wire.xml", rss(old))
        path = tmp_path / "monitor.yaml"
        path.write_text(config_text(tmp_path, feeds.url("/wire.xml"), [h.url for h in hooks], files))
        proc = await start_daemon(path, log, REDIS_URL=url, MONITOR_REPLICA="wipe")
        try:
            # Phase 1: the three stories alert once on every sink.
            await until(lambda: all(len(h.alerts) >= 3 for h in hooks), 60, "three alerts on every webhook")
            await until(lambda: all(len(file_ids(f)) >= 3 for f in files), 30, "three alerts in every file")
            before = sorted(a["id"] for a in hooks[0].alerts)
            await asyncio.sleep(1.5)  # a poll or two more (304s): nothing new

            server.restart()  # SIGKILL; back without its data
            # The feed's validators went with the data: its next poll is a full read of the old stories.
            await wait_for_log(log, "feed_fetched", count=2, timeout_s=60)
            # Phase 2: two genuinely new stories, published after the loss, in the same feed as the old ones.
            fresh = [Item(i.guid, i.title, i.description, datetime.now(UTC)) for i in ESCALATION[3:]]
            feeds.set_feed("/wire.xml", rss(old + fresh))
            await until(lambda: all(len(h.alerts) >= 5 for h in hooks), 60, "five alerts on every webhook")
            await until(lambda: all(len(file_ids(f)) >= 5 for f in files), 30, "five alerts in every file")
            await asyncio.sleep(3)  # a few more polls: anything repeated would arrive now
        finally:
            assert await stop_daemon(proc) == 0
        server.stop()
    expected = sorted(before + [a["id"] for a in hooks[0].alerts if a["id"] not in before])
    assert len(expected) == 5, expected
    for n, hook in enumerate(hooks):
        assert sorted(a["id"] for a in hook.alerts) == expected, f"webhook {n}"
        assert hook.invalid_signatures == []
    for path_ in files:
        assert sorted(file_ids(path_)) == expected, path_.name
    lost = [e for e in log_events(log) if e.get("event") == "redis_state_lost"]
    assert len(lost) == 1 and lost[0]["level"] == "warning" and lost[0]["feeds_reread_silently"] == 1
    assert [e["feed"] for e in log_events(log) if e.get("event") == "feed_reread_silently"] == ["wire"]
