"""The Redis side of a fetch cycle alone: CPU of one burst of ``begin_poll`` then ``finish_poll`` calls for N feeds,
the calls of a burst joined into one script call per batch (as the daemon sends them) against one call each in the
same pipelines (as before ``BatchedScript``), alternating, in one process against an embedded Redis.

    .venv/bin/python benchmarks/bench_pollstate.py --feeds 2000 --rounds 7

Reported: the median CPU of this process (redis-py, asyncio, the batcher) and of Redis per feed, each way.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


async def burst(store: Any, feeds: int, at: datetime) -> None:
    from monitor.core.models import PollResult, Validators

    names = [f"f{i}" for i in range(feeds)]
    await asyncio.gather(*(store.begin_poll(n, lease_token="bench/1/aa", lease_ttl_ms=60_000) for n in names))
    result = PollResult(
        at=at, ok=True, status=304, items=0, latency_s=0.01, interval_s=300.0, validators=Validators('"e"', "x")
    )
    await asyncio.gather(*(store.finish_poll(n, result, lease_token="bench/1/aa", lease_ttl_ms=60_000) for n in names))


async def redis_cpu(redis: Any) -> float:
    info = await redis.info("cpu")
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


async def run(feeds: int, rounds: int) -> None:
    from monitor.config import RedisConfig
    from monitor.storage import pollstate
    from monitor.storage.batch import ScriptBatch
    from monitor.storage.connection import EmbeddedRedis, connect
    from monitor.storage.keys import Keys

    server = EmbeddedRedis(Path(tempfile.mkdtemp(prefix="bench-pollstate-")))
    redis = connect(server.start(), RedisConfig())
    store = pollstate.PollState(redis, Keys(), batch=ScriptBatch(redis))
    at = datetime.now(UTC)
    batched = (pollstate._BEGIN, pollstate._FINISH)
    ways = {"joined": batched, "one call each": (batched[0].one, batched[1].one)}
    figures: dict[str, list[tuple[float, float]]] = {way: [] for way in ways}
    await burst(store, feeds, at)  # warm: scripts loaded, keys exist
    for _ in range(rounds):
        for way, (begin, finish) in ways.items():
            pollstate._BEGIN, pollstate._FINISH = begin, finish  # type: ignore[assignment]
            try:
                cpu, served = time.process_time(), await redis_cpu(redis)
                await burst(store, feeds, at)
                figures[way].append((time.process_time() - cpu, await redis_cpu(redis) - served))
            finally:
                pollstate._BEGIN, pollstate._FINISH = batched
    for way, rows in figures.items():
        ours = statistics.median(r[0] for r in rows) / feeds * 1e6
        theirs = statistics.median(r[1] for r in rows) / feeds * 1e6
        print(f"{way:>14}: {ours:6.1f} µs CPU per feed here, {theirs:5.1f} µs in Redis (median of {rounds})")
    await redis.aclose()
    server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--feeds", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    asyncio.run(run(args.feeds, args.rounds))


if __name__ == "__main__":
    main()
