"""Delivery under faults: a stream of escalation items, a webhook that fails, the daemon and Redis SIGKILLed.

Items appear in loopback feeds one after another. The webhook receiver checks every signature and answers 503
for 15 s; the daemon is SIGKILLed when 40% of the items have appeared and Redis when 70% have (each restarted at
once, Redis on the same append-only file). Reported: items alerted (an alert whose articles include the item),
distinct events, invalid signatures, and the latency from an item appearing to its first alert (median, p95,
max). Run it with and without ``--no-faults`` to compare.

    .venv/bin/python benchmarks/chaos.py [--items 40] [--spacing 0.5] [--no-faults]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hmac
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

from aiohttp import web

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402

from monitor.delivery.signing import sign  # noqa: E402
from monitor.storage.connection import EmbeddedRedis  # noqa: E402

SECRET = "whsec_" + base64.b64encode(b"chaos-benchmark-secret-0123456789").decode()
# Bases: an attack (or a strike) at one base is one event; at another base, another.
PLACES = [
    "Ain al-Asad",
    "Harir",
    "Camp Taji",
    "Victory Base",
    "Union III",
    "the K-1 base",
    "Q-West",
    "Camp Speicher",
    "Balad Air Base",
    "Camp Cooke",
]
TEMPLATES = [
    ("Rockets hit {p} base hosting US troops, coalition says", "Several rockets landed at {p} overnight."),
    ("Drone attack targets US forces at {p}", "A one-way drone struck near {p}; the coalition assessed damage."),
    ("Rocket fire on {p}, where US troops are based", "Two more rockets fell inside {p}, officials said."),
]


def items(count: int) -> list[tuple[str, str, str]]:
    out = []
    for i in range(count):
        title, text = TEMPLATES[i % len(TEMPLATES)]
        place = PLACES[(i // len(TEMPLATES)) % len(PLACES)]
        out.append((f"chaos-{i}", title.format(p=place) + f" ({i})", text.format(p=place)))
    return out


class World:
    def __init__(self, stream: list[tuple[str, str, str]], feeds: int, faults: bool) -> None:
        self.stream = stream
        self.feeds = feeds
        self.faults = faults
        self.revealed: dict[str, float] = {}
        self.first_alert: dict[str, float] = {}  # event id -> arrival of its first alert
        self.event_items: dict[str, set[str]] = {}
        self.invalid = 0
        self.failing_until = 0.0

    async def feed(self, request: web.Request) -> web.Response:
        n = int(request.match_info["n"])
        entries = "".join(
            f"<item><title>{title}</title><guid>{guid}</guid><link>https://chaos.example/{guid}</link>"
            f"<pubDate>{format_datetime(datetime.now(UTC))}</pubDate><description>{text}</description></item>"
            for k, (guid, title, text) in enumerate(self.stream)
            if guid in self.revealed and k % self.feeds == n
        )
        body = f"<rss version='2.0'><channel><title>c{n}</title>{entries}</channel></rss>"
        return web.Response(text=body, content_type="application/rss+xml")

    async def hook(self, request: web.Request) -> web.Response:
        body = await request.read()
        msg_id, stamp = request.headers.get("webhook-id", ""), request.headers.get("webhook-timestamp", "0")
        if not any(
            hmac.compare_digest(sign(SECRET, msg_id, int(stamp), body), s)
            for s in request.headers.get("webhook-signature", "").split()
        ):
            self.invalid += 1
            return web.Response(status=401)
        if time.monotonic() < self.failing_until:
            return web.Response(status=503)
        alert = json.loads(body)
        if alert.get("kind") == "event":
            self.first_alert.setdefault(alert["event_id"], time.monotonic())
            guids = {a["url"].rsplit("/", 1)[-1] for a in alert["articles"]}
            self.event_items.setdefault(alert["event_id"], set()).update(guids)
        return web.Response(status=204)


def kill_redis(server: EmbeddedRedis) -> None:
    """SIGKILL the server (a crash, not a shutdown) and start it again on the same append-only file."""
    pid = int(redis.Redis(unix_socket_path=str(server.socket)).info("server")["process_id"])
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.2)
    server.stop()
    server.start()


def start_daemon(config: Path, redis_url: str, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "monitor", "run", "-c", str(config)],
            cwd=ROOT,
            env={**os.environ, "REDIS_URL": redis_url},
            stdout=out,
            stderr=out,
        )


async def main(count: int, spacing: float, faults: bool, feeds: int) -> None:
    world = World(items(count), feeds, faults)
    app = web.Application()
    app.router.add_get("/feed/{n}.xml", world.feed)
    app.router.add_post("/hook", world.hook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    folder = Path(tempfile.mkdtemp(prefix="chaos-"))
    config = folder / "monitor.yaml"
    config.write_text(
        "fetch: {allow_private_networks: true, timeout_s: 5}\n"
        "feeds:\n"
        + "".join(
            f"  - {{name: c{n}, url: 'http://127.0.0.1:{port}/feed/{n}.xml', interval_s: 1, adaptive: false}}\n"
            for n in range(feeds)
        )
        + f"alerts:\n  max_retry_delay_s: 5\n  sinks:\n    - {{type: webhook, url: 'http://127.0.0.1:{port}/hook', "
        f"secret: '{SECRET}'}}\nescalation: {{thresholds: [1000, 2000, 3000, 4000]}}\nlog: {{format: json}}\n"
        f"rules: [{ROOT / 'rules'}]\n"
    )
    server = EmbeddedRedis(folder / "redis")
    redis_url = server.start()
    daemon = start_daemon(config, redis_url, folder / "daemon.log")
    await asyncio.sleep(2.0)
    began = time.monotonic()
    if faults:
        world.failing_until = began + 15
    for i, (guid, _, _) in enumerate(world.stream):
        world.revealed[guid] = time.monotonic()
        if faults and i == int(count * 0.4):
            daemon.send_signal(signal.SIGKILL)
            daemon.wait()
            daemon = start_daemon(config, redis_url, folder / "daemon.log")
            print(f"daemon SIGKILLed and restarted after item {i}", flush=True)
        if faults and i == int(count * 0.7):
            kill_redis(server)
            print(f"Redis SIGKILLed and restarted after item {i}", flush=True)
        await asyncio.sleep(spacing)
    # Settle: until no new event has arrived for 10 s (or 90 s in all).
    deadline = time.monotonic() + 90
    seen = -1
    while time.monotonic() < deadline:
        if len(world.first_alert) == seen:
            break
        seen = len(world.first_alert)
        await asyncio.sleep(10)
    daemon.send_signal(signal.SIGTERM)
    daemon.wait(timeout=15)
    server.stop()
    await runner.cleanup()
    latencies = sorted(
        arrived - min(world.revealed[g] for g in world.event_items[event] if g in world.revealed)
        for event, arrived in world.first_alert.items()
    )
    p95 = latencies[int(0.95 * (len(latencies) - 1))] if latencies else float("nan")
    covered = set().union(*world.event_items.values()) if world.event_items else set()
    print(
        f"{'faults' if faults else 'no faults'}: {len(world.first_alert)} events alerted, covering "
        f"{len(covered)}/{count} items; invalid signatures {world.invalid}; latency from an event's first item to "
        f"its alert: median {statistics.median(latencies):.2f} s, p95 {p95:.2f} s, max {latencies[-1]:.2f} s"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=40)
    parser.add_argument("--spacing", type=float, default=0.5, help="seconds between items appearing")
    parser.add_argument("--feeds", type=int, default=4)
    parser.add_argument("--no-faults", action="store_true")
    args = parser.parse_args()
    asyncio.run(main(args.items, args.spacing, not args.no_faults, args.feeds))
