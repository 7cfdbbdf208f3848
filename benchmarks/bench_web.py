"""The dashboard with 10,000 events stored: how long ``/`` (and the JSON of the chart and of a page of events) takes
to answer, against a baseline measured in the same run (never part of the test suite).

The events are written the way the pipeline writes them (``EventStore.commit``: the event's JSON with its MinHash
signatures and sources, the events index, one alert each in the alert log) over 30 days, with a month of escalation
index samples every half hour, into the embedded Redis server in a temporary folder. The dashboard is served by
the daemon's own HTTP server (``HealthServer`` with the dashboard installed) and fetched over loopback.

Baseline: a plain Redis read of what ``/`` shows (the same page of the events index and its ``MGET``, the same range
of the alert log, the escalation hash), with no decoding, templating or HTTP: the ratio of medians says what the
dashboard adds to the reads it cannot avoid. The two are interleaved, each figure a median over ``--repeat`` runs.

    .venv/bin/python benchmarks/bench_web.py [--events 10000] [--repeat 40]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from monitor.config import Config, RedisConfig  # noqa: E402
from monitor.detection.rulefile import load_rules  # noqa: E402
from monitor.events.cluster import EventState, Source  # noqa: E402
from monitor.service.health import HealthServer  # noqa: E402
from monitor.service.metrics import Metrics  # noqa: E402
from monitor.service.root import build_app, dashboard_installer  # noqa: E402
from monitor.storage.connection import EmbeddedRedis, Redis, connect  # noqa: E402
from monitor.storage.dashboard import DashboardStore  # noqa: E402
from monitor.storage.events import EventStore  # noqa: E402
from monitor.storage.keys import Keys  # noqa: E402

NOW = datetime.now(UTC).replace(microsecond=0)
TYPES = [
    "us_strike_in_iraq",
    "attack_on_us_forces_in_iraq",
    "iran_retaliation_or_threat",
    "us_embassy_or_diplomatic_incident",
]
FEEDS = ["wire", "regional", "agency", "broadcaster"]


class Clock:
    def now(self) -> datetime:
        return NOW

    def monotonic(self) -> float:
        return time.monotonic()


def synthetic_event(n: int, rng: random.Random) -> EventState:
    first = NOW - timedelta(seconds=rng.uniform(0, 30 * 86400))
    sources = [
        Source(
            url=f"https://{feed}.example.org/{n}/{i}",
            title=f"Report {n}.{i}: rockets hit a base hosting US troops",
            feed=feed,
            published=(first + timedelta(minutes=17 * i)).isoformat(),
            seen=(first + timedelta(minutes=17 * i + 2)).isoformat(),
            independent=True,
            language="en",
        )
        for i, feed in enumerate(rng.sample(FEEDS, rng.randint(1, 3)))
    ]
    signature = [rng.getrandbits(32) for _ in range(64)]
    return EventState(
        id=f"ev_bench_{n:06d}", family=TYPES[n % 4], event_type=TYPES[n % 4], severity=rng.randint(3, 5),
        revision=1, first_seen=first.isoformat(), updated=sources[-1].seen, title=sources[0].title,
        summary="Several rockets struck the base overnight; the coalition said nobody was hurt. " * 3,
        entities=["united_states", "iraq", "ain_al_asad"], salient=["ain_al_asad"], evidence=["rockets", "base"],
        sources=sources, confirmed=False, casualties=None, signature=signature,
        signatures=[signature for _ in sources], first_published=sources[0].published,
        last_published=sources[-1].published,
    )  # fmt: skip


async def fill(redis: Redis, keys: Keys, count: int) -> None:
    rng = random.Random(18)
    events, store = EventStore(redis, keys), DashboardStore(redis, keys)
    for n in range(count):
        event = synthetic_event(n, rng)
        alert = {"id": f"{event.id}.r1", "kind": "event", "event_id": event.id, "revision": 1,
                 "title": event.title, "severity": event.severity, "updated": event.updated}  # fmt: skip
        await events.commit(
            article_id=f"a{n}", fingerprint=None, event=event, bands=[], salient=[], alert=alert, now=NOW
        )
    for step in range(30 * 48):  # what the daemon keeps: a sample per half hour (and one at each level change)
        at = NOW - timedelta(minutes=30 * step)
        await store.record_index(at, 3 + 2 * rng.random(), 3, changed=True)


async def median_ms(runs: list[float]) -> float:
    return round(statistics.median(runs) * 1000, 2)


async def timed(call: Callable[[], Awaitable[object]]) -> float:
    start = time.perf_counter()
    await call()
    return time.perf_counter() - start


async def main(count: int, repeat: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as folder:
        server = EmbeddedRedis(Path(folder))
        redis = connect(server.start(), RedisConfig())
        try:
            return await measure(redis, count, repeat)
        finally:
            await redis.aclose()
            server.stop()


async def measure(redis: Redis, count: int, repeat: int) -> dict[str, object]:
    keys = Keys()
    started = time.perf_counter()
    await fill(redis, keys, count)
    filled_s = time.perf_counter() - started
    config = Config.model_validate({"alerts": {"sinks": [{"type": "console"}]}, "metrics": {"port": 0}})
    app = await build_app(config, load_rules([ROOT / "rules"]), clock=Clock(), redis=redis, stdout=io.StringIO())
    http_server = HealthServer(host="127.0.0.1", port=0, metrics=Metrics(), readiness=_ready,
                               extend=dashboard_installer(app))  # fmt: skip
    port = await http_server.start()
    base = f"http://127.0.0.1:{port}"
    since = (NOW - timedelta(hours=96)).timestamp()

    async def baseline() -> None:  # the reads behind "/" and nothing else
        ids = await redis.zrevrangebyscore(keys.events, "+inf", since, start=0, num=50)
        await redis.mget([keys.event(i.decode()) for i in ids])
        await redis.xrevrange(keys.alert_log, count=100, min=f"{int(time.time() * 1000) - 86_400_000}-0")
        await redis.hgetall(keys.escalation)

    figures: dict[str, list[float]] = {"baseline": [], "/": [], "/api/escalation": [], "/api/events": []}
    try:
        async with aiohttp.ClientSession() as http:

            async def get(path: str) -> None:
                async with http.get(base + path) as response:
                    assert response.status == 200, (path, response.status)
                    await response.read()

            for _ in range(3):  # warm up: connections, templates compiled, scripts loaded
                await get("/")
                await baseline()
            for _ in range(repeat):
                figures["baseline"].append(await timed(baseline))
                for path in ("/", "/api/escalation", "/api/events"):
                    figures[path].append(await timed(lambda p=path: get(p)))
    finally:
        await http_server.stop()
        await app.close()
    medians = {name: await median_ms(runs) for name, runs in figures.items()}
    return {
        "events": count,
        "fill_s": round(filled_s, 1),
        "repeat": repeat,
        "median_ms": medians,
        "ratio_overview_to_baseline": round(medians["/"] / medians["baseline"], 1),
        "overview_under_200ms": medians["/"] < 200,
    }


async def _ready() -> str | None:
    return None


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=40)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.events, args.repeat)), indent=2))
