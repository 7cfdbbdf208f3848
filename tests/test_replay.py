"""``monitor replay`` (the backtest timeline, in a namespace of its own) and ``monitor events``."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import redis.asyncio as aioredis

ROOT = Path(__file__).resolve().parents[1]

ARCHIVE = [
    {
        "id": "r1",
        "title": "US drone strike in Baghdad kills Kataib Hezbollah commander",
        "url": "https://a.example/1",
        "summary": "A US strike on a car in Baghdad's Mashtal district killed a senior Kataib Hezbollah leader.",
        "published": "2024-02-07T18:40:00Z",
    },
    {
        "id": "r2",
        "title": "Kataib Hezbollah leader among three dead in American drone attack on Baghdad car",
        "url": "https://b.example/2",
        "published": "2024-02-08T09:00:00Z",
        "summary": "Iraqi officials said three people, including a senior Kataib Hezbollah commander, died in Mashtal.",
    },
    {
        "id": "r3",
        "title": "Rockets hit Ain al-Asad air base hosting US troops",
        "url": "https://c.example/3",
        "summary": "Several rockets struck the base in Anbar; the coalition said two service members were hurt.",
        "published": "2024-02-20T03:00:00Z",
    },
    {
        "id": "r4",
        "title": "Bakery wins regional bread prize",
        "url": "https://d.example/4",
        "summary": "Judges praised the sourdough.",
        "published": "2024-02-21T10:00:00Z",
    },
]


async def run(*args: str, redis_url: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "monitor",
        *args,
        env={**os.environ, "REDIS_URL": redis_url},
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode or 0, out.decode(), err.decode()


async def test_replay_prints_the_timeline_and_leaves_nothing_behind(
    redis: aioredis.Redis, redis_url: str, tmp_path: Path
) -> None:
    archive = tmp_path / "archive.jsonl"
    archive.write_text("".join(json.dumps(a) + "\n" for a in reversed(ARCHIVE)))  # replay sorts by date
    code, out, err = await run("replay", "-r", str(ROOT / "rules"), str(archive), redis_url=redis_url)
    assert code == 0, err
    lines = [line for line in out.splitlines() if line[:4] == "2024"]
    kinds = [line.split()[2] for line in lines]
    assert kinds.count("NEW") == 2 and "REVISION" in kinds and "LEVEL" in kinds, out
    assert lines[0].startswith("2024-02-07 18:40Z  NEW") and "high_value_target_killed" in lines[0]
    assert "4 articles, 3 matched, 2 events" in out
    assert [k async for k in redis.scan_iter(match="{replay-*")] == []
    assert await redis.exists("{monitor}:outbox") == 0  # the live namespace was never touched


async def test_events_lists_recent_events(redis: aioredis.Redis, redis_url: str, tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from monitor.config import Config
    from monitor.detection.matcher import Matcher
    from monitor.detection.rulefile import load_rules
    from monitor.processing.policies import policies
    from monitor.processing.processor import Processor
    from monitor.storage.events import EventStore
    from monitor.storage.keys import Keys
    from tests.test_events import STRIKE, FakeClock

    clock = FakeClock(datetime.now(UTC))
    event_policy, escalation_policy = policies(Config().events, Config().escalation)
    processor = Processor(
        Matcher(load_rules([ROOT / "rules"])),
        EventStore(redis, Keys()),
        clock,
        max_age_hours=0,
        event_policy=event_policy,
        escalation_policy=escalation_policy,
    )
    await processor.process(STRIKE)
    config = tmp_path / "monitor.yaml"
    config.write_text(f"rules: [{ROOT / 'rules'}]\n")
    code, out, err = await run("events", "-c", str(config), redis_url=redis_url)
    assert code == 0, err
    assert "escalation level" in out and "high_value_target_killed" in out and "3 sources" in out
    code, out, _ = await run("events", "-c", str(config), "--json", redis_url=redis_url)
    (record,) = [json.loads(line) for line in out.splitlines()]
    assert record["revision"] == 3 and record["independent_outlets"] == 3
