"""Full fetch cycles over thousands of loopback feeds: wall time and CPU per feed, 200s against 304s.

A feed server runs in its own process on 127.0.0.1 and serves N feeds of 20 items with ETags; before
each measured cycle it changes 10% of them. The monitor polls them all with the real pipeline (aiohttp fetcher,
parser workers, matcher, events in an embedded Redis). Reported per cycle: wall time, the monitor's CPU (its own
process plus its parser workers) per feed, and the split of 200 and 304 answers. The first cycle (every feed new)
is reported apart. At the end: Redis's ``used_memory`` growth per feed (everything the cycles stored: feed state,
validators, leases, claimed articles, events) and the RSS and PSS of the monitor process and its parser workers.
Peers (rss2email, feed2exec) are timed on the same kind of feeds by ``bench_peers.py``.

Run on demand, never in the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import io
import multiprocessing
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

WORDS = [
    "market",
    "council",
    "harvest",
    "festival",
    "rainfall",
    "bridge",
    "museum",
    "election",
    "transit",
    "orchestra",
    "library",
    "vaccine",
    "airline",
    "rally",
    "budget",
    "satellite",
    "reservoir",
    "marathon",
    "exhibition",
    "factory",
]
ESCALATION = [
    ("Rockets hit base hosting US troops in western Iraq", "Several rockets struck the base overnight."),
    ("US drone strike in Baghdad kills militia commander", "A US strike hit a car carrying a Kataib Hezbollah leader."),
]


def feed_body(index: int, version: int) -> bytes:
    rng = random.Random(index * 1000 + version)
    items = []
    for j in range(20):
        if rng.random() < 0.01:
            title, text = ESCALATION[rng.randrange(2)]
        else:
            title = " ".join(rng.choice(WORDS) for _ in range(7)).capitalize()
            text = " ".join(rng.choice(WORDS) for _ in range(30))
        guid = f"f{index}-v{version}-{j}"
        items.append(
            f"<item><title>{title}</title><link>https://feeds.example/{guid}</link><guid>{guid}</guid>"
            f"<pubDate>{format_datetime(datetime.now(UTC))}</pubDate><description>{text}</description></item>"
        )
    return (
        f"<?xml version='1.0'?><rss version='2.0'><channel><title>Feed {index}</title>"
        f"<link>https://feeds.example/{index}</link><description>d</description>{''.join(items)}"
        "</channel></rss>"
    ).encode()


def serve(port_out: multiprocessing.Queue, feeds: int) -> None:  # type: ignore[type-arg]  # runs in its own process
    """N feeds at ``/f/<i>.xml`` with ETags, ``POST /change`` to change a share of them, and ``GET /stats``: the 200
    and 304 answers (and conditional requests) since the last call, which resets them."""
    from aiohttp import web

    versions = [0] * feeds
    cache: dict[int, tuple[bytes, str]] = {}
    counts = {"200": 0, "304": 0, "conditional": 0}

    def body(i: int) -> tuple[bytes, str]:
        if i not in cache or cache[i][1] != str(versions[i]):
            cache[i] = (feed_body(i, versions[i]), str(versions[i]))
        return cache[i]

    async def feed(request: web.Request) -> web.Response:
        i = int(request.match_info["i"])
        data, version = body(i)
        etag = f'"{i}-{version}-{hashlib.md5(data).hexdigest()[:8]}"'
        if "If-None-Match" in request.headers or "If-Modified-Since" in request.headers:
            counts["conditional"] += 1
        if request.headers.get("If-None-Match") == etag:
            counts["304"] += 1
            return web.Response(status=304, headers={"ETag": etag})
        counts["200"] += 1
        return web.Response(body=data, content_type="application/rss+xml", headers={"ETag": etag})

    async def change(request: web.Request) -> web.Response:
        share = float(request.query.get("share", "0.1"))
        rng = random.Random(int(request.query.get("seed", "1")))
        for i in rng.sample(range(feeds), int(feeds * share)):
            versions[i] += 1
        return web.Response(text="ok")

    async def stats(request: web.Request) -> web.Response:
        out = dict(counts)
        for key in counts:
            counts[key] = 0
        return web.json_response(out)

    app = web.Application()
    app.router.add_get("/f/{i}.xml", feed)
    app.router.add_post("/change", change)
    app.router.add_get("/stats", stats)

    async def main() -> None:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=4096)
        await site.start()
        port_out.put(runner.addresses[0][1])
        await asyncio.Event().wait()

    asyncio.run(main())


def _cpu_of(pids: list[int]) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def _split_cpu(me: int, server: int, fetchers: list[int]) -> dict[str, float]:
    """CPU seconds so far of the monitor process, its fetch workers (``fetchers``), the parser processes (and the
    forkservers), the embedded redis-server, and the feed server (which is not ours and not counted in the per-feed
    figures)."""
    split = {
        "monitor": _cpu_of([me]),
        "fetch workers": _cpu_of(fetchers),
        "parser workers": 0.0,
        "redis": 0.0,
        "feed server": _cpu_of([server]),
    }
    for pid in _descendants(me):
        if pid in (me, server) or pid in fetchers:
            continue
        split["redis" if _comm(pid).startswith("redis") else "parser workers"] += _cpu_of([pid])
    return split


def _memory_kb(pid: int) -> tuple[int, int]:
    """(RSS, PSS) of a process in kB from /proc (PSS 0 where smaps_rollup cannot be read); (0, 0) once it has gone."""
    rss = pss = 0
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                pss = int(line.split()[1])
    return rss, pss


def _memory_report(me: int, server: int, fetchers: list[int]) -> str:
    """The monitor process's RSS and PSS, each fetch worker's, and the other processes' together (parser workers,
    forkservers, resource trackers)."""
    own = _memory_kb(me)
    others = [
        _memory_kb(pid)
        for pid in _descendants(me)
        if pid not in (me, server) and pid not in fetchers and not _comm(pid).startswith("redis")
    ]
    rss, pss = sum(w[0] for w in others), sum(w[1] for w in others)
    lines = [f"monitor process RSS {own[0] / 1024:.0f} MB (PSS {own[1] / 1024:.0f} MB)"]
    for pid in fetchers:
        worker = _memory_kb(pid)
        lines.append(f"fetch worker {pid} RSS {worker[0] / 1024:.0f} MB (PSS {worker[1] / 1024:.0f} MB)")
    lines.append(
        f"{len(others)} parser processes (workers, forkservers, resource trackers) "
        f"RSS {rss / 1024:.0f} MB (PSS {pss / 1024:.0f} MB)"
    )
    return "; ".join(lines)


def _comm(pid: int) -> str:
    """The process's command name, or "" once it has gone."""
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


async def run(feeds: int, cycles: int, concurrency: int, workers: int) -> None:
    import aiohttp

    from monitor.config import Config
    from monitor.core.clock import SystemClock
    from monitor.detection.rulefile import load_rules
    from monitor.service.root import build_app
    from monitor.storage.connection import EmbeddedRedis, connect

    context = multiprocessing.get_context("spawn")
    ports = context.Queue()
    server = context.Process(target=serve, args=(ports, feeds), daemon=True)
    server.start()
    port = ports.get(timeout=30)
    data = Path(tempfile.mkdtemp(prefix="bench-redis-"))
    redis_server = EmbeddedRedis(data)
    url = redis_server.start()
    config = Config.model_validate(
        {
            "fetch": {
                "allow_private_networks": True,
                "concurrency": concurrency,
                "per_host_concurrency": concurrency,
                "timeout_s": 60,
                "workers": workers,
            },
            "feeds": [{"name": f"f{i}", "url": f"http://127.0.0.1:{port}/f/{i}.xml"} for i in range(feeds)],
            "alerts": {"sinks": []},
            "log": {"level": "warning"},
        }
    )
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    app = await build_app(
        config,
        load_rules([ROOT / "rules"]),
        clock=SystemClock(),
        redis=connect(url, config.redis),
        stdout=io.StringIO(),
        redis_url=url,  # as ``monitor run``: with ``workers`` > 0 the feeds are polled in fetch workers
    )
    await app.start()
    me = os.getpid()
    used_before = int((await app.redis.info("memory"))["used_memory"])
    rows = []
    async with aiohttp.ClientSession() as control:
        for cycle in range(cycles + 1):
            if cycle:
                await (await control.post(f"http://127.0.0.1:{port}/change?share=0.1&seed={cycle}")).read()
            fetchers = _fetchers(app)
            before = _split_cpu(me, server.pid, fetchers)
            t0 = time.perf_counter()
            results = await app.cycle()
            wall = time.perf_counter() - t0
            after = _split_cpu(me, server.pid, fetchers if cycle else _fetchers(app))
            spent = {kind: after[kind] - before.get(kind, 0.0) for kind in after}
            cpu = spent["monitor"] + spent["fetch workers"] + spent["parser workers"] + spent["redis"]
            changed = sum(1 for r in results if r is not None and r.articles)
            failed = sum(1 for r in results if r is None)
            rows.append((cycle, wall, cpu, changed, failed))
            label = "first (all new)" if cycle == 0 else f"cycle {cycle}"
            split = ", ".join(f"{kind} {seconds:.1f}" for kind, seconds in spent.items())
            print(
                f"{label:>16}: {wall:6.2f} s wall, {cpu / feeds * 1000:6.3f} ms CPU per feed "
                f"({changed} answered 200 with content, {feeds - changed - failed} 304, {failed} failed)\n"
                f"{'':>18}CPU s: {split}",
                flush=True,
            )
    steady = rows[1:]
    if steady:
        print(
            f"\nsteady state, median of {len(steady)} cycles: {statistics.median(r[1] for r in steady):.2f} s wall "
            f"for {feeds} feeds ({statistics.median(r[1] for r in steady) / feeds * 1000:.3f} ms per feed), "
            f"{statistics.median(r[2] for r in steady) / feeds * 1000:.3f} ms CPU per feed"
        )
    used_after = int((await app.redis.info("memory"))["used_memory"])
    print(
        f"Redis used_memory {used_before / 2**20:.1f} -> {used_after / 2**20:.1f} MB: "
        f"{(used_after - used_before) / feeds:.0f} bytes per feed (state, validators, leases, seen articles, events)\n"
        + _memory_report(me, server.pid, _fetchers(app))
    )
    await app.close()
    redis_server.stop()
    server.kill()


def _fetchers(app: object) -> list[int]:
    """The fetch workers' process ids (none with ``--workers 0``)."""
    return list(getattr(getattr(app, "poller", None), "pids", []))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--feeds", type=int, default=2000)
    parser.add_argument("--cycles", type=int, default=3, help="measured cycles after the first (default 3)")
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--workers", type=int, default=0, help="fetch.workers (default 0: in the monitor process)")
    args = parser.parse_args()
    asyncio.run(run(args.feeds, args.cycles, args.concurrency, args.workers))


if __name__ == "__main__":
    main()
