"""Hostile feeds: does ``monitor run`` stay up, stay below 300 MB, and still alert from the healthy feeds?

Everything is on 127.0.0.1. A feed server in its own process serves, each feed on a port of its own (so that
``per_host_concurrency`` treats them as different sites, as they would be on the internet):

* **healthy feeds** (``--healthy``, default 36): each gains a new item every ``--interval`` seconds, and 16
  escalation stories written for this benchmark appear in them over the run, each in one feed and, one and a half
  intervals later, the same wire copy (same title and text, another URL) in a second feed: one event, one alert;
* **hostile feeds**, the heavy ones in ``--copies`` copies (default 3) so that they overlap in time: gzip and
  deflate bombs (``Content-Encoding``, 4 GiB of zeros in 4 MiB), a raw ``.gz`` body bomb without
  ``Content-Encoding``, a raw ``.gz`` body that inflates to a valid 19 MB feed, "billion laughs", one 1 MB entity
  referenced 100,000 times, a 10,000-item feed without validators, a 50 MB plain body (chunked, no
  Content-Length), huge titles and attribute values (9.5 MB in all), 200,000 nested elements, a slow loris (one
  byte every 0.5 s, forever) and a TCP server that accepts and never answers; once each: a redirect loop, an HTML
  page, an empty 200, "billion laughs" in UTF-16, and three wrong encodings.

The monitor is the real daemon (``python -m monitor run``) in a subprocess with the shipped defaults (fetch and
parser limits, embedded Redis as its child), every feed every ``--interval`` s (``adaptive: false``), and a
signed webhook sink: a receiver in this process checks every signature with the reference ``standardwebhooks``
package. Every ``--sample-ms`` the sampler reads ``/proc/<pid>/smaps_rollup`` of the daemon and all its
descendants (forkserver, parser workers, resource tracker, ``redis-server``): PSS (pages shared between forked
workers counted once) and RSS. The figure is the peak of the per-sample sum. ``--workers N`` sets ``fetch.workers``
(the shipped default, auto, starts none below 5,000 feeds); with fetch workers the children of the daemon's
forkserver are the fetch workers (reported as ``parser_worker``), and their own forkservers, parser workers and
resource trackers are ``other``.

Two runs in one invocation: a baseline with the healthy feeds only, then healthy + hostile. Reported per run: peak
PSS and RSS, with and without Redis, and per process kind (sampling goes on until the daemon has exited); whether
the daemon kept its PID, and how long it took to exit on SIGTERM (what was still alive after 10 s); for every feed
the polls and how they ended (``feed_fetched``, ``feed_failed`` with its reason, or "lost": an exception escaped the
poll into APScheduler's job log), and for the healthy feeds the time between polls; the alerts received with a valid
signature against the stories expected (one alert per story), with their latency from the story appearing.
``--solo`` instead runs each hostile kind alone with the healthy feeds, to see which one costs what.

    .venv/bin/python benchmarks/bench_hostile.py                      # about 4 minutes
    .venv/bin/python benchmarks/bench_hostile.py --duration 120 --copies 4 --json out.json
    .venv/bin/python benchmarks/bench_hostile.py --solo --duration 40 --settle 20  # every kind alone: ~14 min
    .venv/bin/python benchmarks/bench_hostile.py --solo items-10k huge-values

Run on demand, never in the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import itertools
import json
import multiprocessing
import os
import random
import re
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.bench_fetch import WORDS as FILLER_WORDS
from benchmarks.bench_fetch import _descendants

ROOT = Path(__file__).resolve().parents[1]
LIMIT_MB = 300
SECRET = "whsec_" + base64.b64encode(b"hostile-benchmark-secret-0123456789").decode()
HOOK_PATH = "/hooks/hostile"
JOB_ERROR = re.compile(r'Job "([^ ]+) \(trigger')

# Escalation stories written for this benchmark (fictional; each names its own base or place, so no two are one
# event). `monitor scan` classifies every one as alerting with the shipped rules.
STORIES = [
    (
        "Rockets slam into Ain al-Asad air base hosting US troops",
        "Three rockets landed inside the sprawling base in Anbar late on Tuesday, a coalition spokesman said; "
        "damage was being assessed.",
    ),
    (
        "Drone attack targets US forces at Harir base north of Erbil",
        "An explosive-laden drone was brought down over the airfield used by American troops, Kurdish security "
        "officials said.",
    ),
    (
        "Mortar rounds hit Camp Taji, wounding two American soldiers",
        "Several mortar shells fell inside the camp north of the capital, where US service members train Iraqi units.",
    ),
    (
        "Rocket attack on Q-West airfield used by US troops south of Mosul",
        "Two Katyusha rockets struck near the runway at Qayyarah West, an Iraqi military statement said.",
    ),
    (
        "Attack drones strike Camp Speicher, where American advisers are stationed",
        "Security sources in Tikrit said two drones hit a hangar at the base after dark; no injuries were reported.",
    ),
    (
        "US airstrikes hit Kataib Hezbollah weapons depots in Jurf al-Sakhar",
        "The Pentagon said American jets struck storage sites of the Iran-backed group south of the capital in "
        "response to recent attacks.",
    ),
    (
        "US airstrike hits militia command post near Akashat in western Anbar",
        "Central Command said American jets destroyed a headquarters that an Iran-backed militia used to plan "
        "attacks on coalition troops.",
    ),
    (
        "American drone strike near Musayyib destroys militia rocket launchers",
        "A US MQ-9 hit a truck loaded with launch rails in Babil province, local officials said.",
    ),
    (
        "Harakat al-Nujaba commander killed in US drone strike in Baghdad",
        "A senior leader of the Iran-aligned faction died when a missile hit his car in the east of the capital, "
        "the group confirmed.",
    ),
    (
        "Iraqi parliament votes to end the US-led coalition mission in Iraq",
        "Lawmakers approved a resolution calling on the government to set a date for all foreign forces to leave "
        "the country.",
    ),
    (
        "Iran's Revolutionary Guards vow revenge on US forces in Iraq",
        "The IRGC said American bases in the region would pay a heavy price after the killing of its allies in Iraq.",
    ),
    (
        "Rockets land inside US embassy compound in Baghdad's Green Zone",
        "Sirens sounded across the fortified district as the embassy's C-RAM defences fired at incoming projectiles.",
    ),
    (
        "US raises Iraq travel advisory to Level 4: Do Not Travel",
        "The State Department told Americans not to travel to Iraq and ordered the departure of non-emergency staff "
        "from Erbil.",
    ),
    (
        "Rocket barrage targets Victory Base near Baghdad airport housing US troops",
        "Five rockets were fired at the logistics hub beside the airport; the coalition reported no casualties.",
    ),
    (
        "Explosive drone hits Balad Air Base, where US contractors work",
        "The drone struck a building on the air base north of the capital, Iraqi security officials said.",
    ),
    (
        "Roadside bomb hits convoy carrying US troops near Kirkuk K-1 base",
        "An improvised device exploded beside a coalition convoy leaving the K-1 base; one vehicle was damaged.",
    ),
]
# Filler for every other item: words no rule cares about (the same as bench_fetch's feeds).
WORDS = FILLER_WORDS

#: Hostile feeds served in ``--copies`` copies (they overlap in time), then those served once.
HEAVY = [
    "gzip-bomb",
    "deflate-bomb",
    "gz-body-bomb",
    "gz-body-19mb-feed",
    "billion-laughs",
    "big-entity",
    "items-10k",
    "plain-50mb",
    "huge-values",
    "deep-nesting",
    "slow-loris",
    "hang",
]
LIGHT = [
    "redirect-loop",
    "html-page",
    "empty-200",
    "billion-laughs-utf16",
    "enc-cp1252-labelled-utf8",
    "enc-utf16-labelled-utf8",
    "enc-unknown-charset",
]


# -- what the feed server serves --------------------------------------------------------------------------------


def zero_bomb(mib: int, *, gzip: bool) -> bytes:
    """A valid gzip (or zlib) stream of ``mib`` MiB of zeros in about ``mib`` KiB. After a full flush the
    compressor forgets its history, so every further MiB of zeros compresses to the same bytes."""
    zeros = bytes(1 << 20)
    packer = zlib.compressobj(9, zlib.DEFLATED, 31 if gzip else 15)
    first = packer.compress(zeros) + packer.flush(zlib.Z_FULL_FLUSH)
    repeat = packer.compress(zeros) + packer.flush(zlib.Z_FULL_FLUSH)
    final_block = zlib.compressobj(9, zlib.DEFLATED, -15).flush()
    size = mib << 20
    if gzip:
        crc = 0
        for _ in range(mib):
            crc = zlib.crc32(zeros, crc)
        trailer = struct.pack("<II", crc, size & 0xFFFFFFFF)
    else:
        # Adler-32 of n zero bytes: a stays 1, b grows by 1 per byte.
        trailer = struct.pack(">I", ((size % 65521) << 16) | 1)
    return first + repeat * (mib - 1) + final_block + trailer


def filler(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def rss(items: list[str], title: str = "Feed", *, head: str = "<?xml version='1.0' encoding='utf-8'?>") -> str:
    return (
        f"{head}<rss version='2.0'><channel><title>{title}</title><link>https://news.example.org/</link>"
        f"<description>d</description>{''.join(items)}</channel></rss>"
    )


def item(guid: str, title: str, text: str, when: float, link: str | None = None) -> str:
    return (
        f"<item><title>{escape(title)}</title><guid isPermaLink='false'>{guid}</guid>"
        f"<link>{link or 'https://news.example.org/' + guid}</link><description>{escape(text)}</description>"
        f"<pubDate>{format_datetime(datetime.fromtimestamp(when, UTC))}</pubDate></item>"
    )


def filler_items(prefix: str, count: int, now: float, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [item(f"{prefix}-{i}", filler(rng, 7).capitalize(), filler(rng, 30), now - i) for i in range(count)]


def hostile_bodies() -> dict[str, tuple[bytes, dict[str, str]]]:
    """Kind -> (body, headers) for every hostile feed whose answer is a fixed body."""
    now = time.time()
    xml = {"Content-Type": "application/rss+xml"}
    bodies: dict[str, tuple[bytes, dict[str, str]]] = {}
    bodies["gzip-bomb"] = (zero_bomb(4096, gzip=True), {**xml, "Content-Encoding": "gzip"})
    bodies["deflate-bomb"] = (zero_bomb(4096, gzip=False), {**xml, "Content-Encoding": "deflate"})
    bodies["gz-body-bomb"] = (zero_bomb(4096, gzip=True), {"Content-Type": "application/x-gzip"})
    # A valid feed whose gzip body (sent without Content-Encoding) inflates to just under the parser's 20 MB bound.
    parts, size, i = [], 0, 0
    rng = random.Random(19)
    head = rss([], "Big gz").split("</channel>")[0]
    while size < 19_000_000:
        part = item(f"gz-{i}", filler(rng, 7).capitalize(), filler(rng, 25), now - i)
        parts.append(part)
        size += len(part)
        i += 1
    big = (head + "".join(parts) + "</channel></rss>").encode()
    bodies["gz-body-19mb-feed"] = (zlib.compress(big, 6, wbits=31), {"Content-Type": "application/x-gzip"})
    laughs = "".join(f"<!ENTITY lol{n} '{f'&lol{n - 1};' * 10}'>" for n in range(1, 10))
    doctype = f"<!DOCTYPE rss [<!ENTITY lol0 'lol'>{laughs}]>"
    laughs_feed = rss(
        [item("laugh-1", "&lol9;", "&lol9; &lol9;", now).replace("&amp;", "&")],
        "&lol9;",
        head="<?xml version='1.0' encoding='utf-8'?>" + doctype,
    )
    bodies["billion-laughs"] = (laughs_feed.encode(), xml)
    utf16_feed = laughs_feed.replace("encoding='utf-8'", "encoding='utf-16'")
    bodies["billion-laughs-utf16"] = (utf16_feed.encode("utf-16"), {"Content-Type": "application/rss+xml"})
    entity = f"<!DOCTYPE rss [<!ENTITY big '{'A' * 1_000_000}'>]>"
    refs = "&big;" * 20_000
    bodies["big-entity"] = (
        rss(
            [item(f"ent-{n}", "Entity", "x", now).replace("<description>x", f"<description>{refs}") for n in range(5)],
            "&big;",
            head="<?xml version='1.0' encoding='utf-8'?>" + entity,
        ).encode(),
        xml,
    )
    bodies["items-10k"] = (rss(filler_items("tenk", 10_000, now, 10), "Ten thousand").encode(), xml)
    huge = "W" * 2_000_000
    huge_items = [
        f"<item><title>{huge}</title><guid>huge-1</guid><description>{'D' * 1_000_000}</description></item>",
        f"<item><title>{huge}</title><guid>huge-2</guid>"
        f"<enclosure url='https://news.example.org/{huge}' length='1' type='audio/mpeg'/>"
        f"<category domain='{huge}'>news</category></item>",
    ]
    bodies["huge-values"] = (
        rss(huge_items, "Huge")
        .replace("<rss version='2.0'>", "<rss version='2.0' xmlns:x='urn:x' x:a='" + "A" * 500_000 + "'>")
        .encode(),
        xml,
    )
    depth = 200_000
    nested = "<x>" * depth + "deep" + "</x>" * depth
    bodies["deep-nesting"] = (
        rss([item("deep-1", "Deep", "d", now).replace("</item>", nested + "</item>")], "Deep").encode(),
        xml,
    )
    bodies["html-page"] = (
        b"<!doctype html><html><head><title>Home</title></head><body>"
        + b"<p>No feed here.</p>" * 2000
        + b"</body></html>",
        {"Content-Type": "text/html; charset=utf-8"},
    )
    bodies["empty-200"] = (b"", xml)
    calm = filler_items("enc", 20, now, 11)
    accented = "".join(calm).replace("market", "march\u00e9 \u201cquoted\u201d")
    bodies["enc-cp1252-labelled-utf8"] = (
        rss([accented]).encode("cp1252"),
        {"Content-Type": "application/rss+xml; charset=utf-8"},
    )
    bodies["enc-utf16-labelled-utf8"] = (
        rss(calm).encode("utf-16-le"),
        {"Content-Type": "application/rss+xml; charset=utf-8"},
    )
    bodies["enc-unknown-charset"] = (
        rss(calm, head="<?xml version='1.0' encoding='x-klingon'?>").encode(),
        {"Content-Type": "application/rss+xml; charset=x-no-such-charset"},
    )
    return bodies


@dataclass(frozen=True)
class Plan:
    """One run: its tag, when it started (wall clock), the poll interval and when each story appears."""

    run: str
    t0: float
    interval: float
    healthy: list[str]
    # (story index, copy 0/1, healthy feed index, seconds after t0)
    releases: list[tuple[int, int, int, float]]


def story_releases(healthy: int, duration: float, interval: float) -> list[tuple[int, int, int, float]]:
    """Stories appear between 10% and 65% of the run; each one's wire copy 1.5 intervals later, in another feed."""
    out = []
    for k in range(len(STORIES)):
        at = duration * (0.10 + 0.55 * k / len(STORIES))
        first = (k * 5) % healthy
        second = (first + healthy // 2 + 1) % healthy
        out.append((k, 0, first, at))
        out.append((k, 1, second, at + 1.5 * interval))
    return out


def healthy_body(plan: Plan, index: int, now: float) -> bytes:
    name = plan.healthy[index]
    cycle = int((now - plan.t0) // plan.interval)
    entries: list[tuple[float, str]] = []
    for c in range(max(0, cycle - 19), cycle + 1):
        rng = random.Random(f"{plan.run}-{name}-{c}")
        when = plan.t0 + c * plan.interval
        guid = f"{plan.run}-{name}-{c}"
        entries.append((when, item(guid, filler(rng, 7).capitalize(), filler(rng, 30), when)))
    for k, copy, feed, offset in plan.releases:
        if feed == index and plan.t0 + offset <= now:
            title, text = STORIES[k]
            guid = f"{plan.run}-story{k}-{copy}"
            link = f"https://news.example.org/{plan.run}/story{k}/{name}"
            entries.append((plan.t0 + offset, item(guid, title, text, plan.t0 + offset, link)))
    entries.sort(key=lambda e: e[0], reverse=True)
    return rss([e[1] for e in entries], f"Healthy {name}").encode()


def serve(out: multiprocessing.Queue, names: list[str], hang_names: list[str]) -> None:  # type: ignore[type-arg]
    """Runs in its own process: every feed in ``names`` on a port of its own (``/feed/<name>``), the names in
    ``hang_names`` on raw TCP servers that accept and never answer, and a control port (``POST /plan``)."""
    from aiohttp import web

    bodies = hostile_bodies()
    plain = (b"All work and no play makes a dull feed. " * 26)[:1024] * (50 * 1024)
    state: dict[str, Any] = {"plan": None}
    counts: Counter[str] = Counter()

    async def feed(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        counts[name] += 1
        kind = name.rsplit(".", 1)[0]
        plan: Plan | None = state["plan"]
        if plan is not None and name in plan.healthy:
            data = healthy_body(plan, plan.healthy.index(name), time.time())
            etag = '"' + hashlib.md5(data).hexdigest()[:16] + '"'
            if request.headers.get("If-None-Match") == etag:
                return web.Response(status=304, headers={"ETag": etag})
            return web.Response(body=data, headers={"ETag": etag, "Content-Type": "application/rss+xml"})
        if kind == "redirect-loop":
            raise web.HTTPFound(f"/feed/{name}")
        if kind == "slow-loris":
            resp = web.StreamResponse(headers={"Content-Type": "application/rss+xml"})
            await resp.prepare(request)
            drip = b"<?xml version='1.0'?><rss version='2.0'><channel><title>"
            n = 0
            with contextlib.suppress(ConnectionResetError):  # the client gave up
                while True:
                    await resp.write(drip[n : n + 1] if n < len(drip) else b"x")
                    n += 1
                    await asyncio.sleep(0.5)
            return resp
        if kind == "plain-50mb":
            resp = web.StreamResponse(headers={"Content-Type": "text/plain"})
            resp.enable_chunked_encoding()
            await resp.prepare(request)
            with contextlib.suppress(ConnectionResetError):  # the client stopped reading at its cap
                for start in range(0, len(plain), 256 * 1024):
                    await resp.write(plain[start : start + 256 * 1024])
                await resp.write_eof()
            return resp
        if kind in bodies:
            data, headers = bodies[kind]
            return web.Response(body=data, headers=headers)
        return web.Response(status=404)

    async def set_plan(request: web.Request) -> web.Response:
        raw = await request.json()
        releases = [tuple(r) for r in raw["releases"]]
        state["plan"] = Plan(raw["run"], raw["t0"], raw["interval"], raw["healthy"], releases)
        counts.clear()
        return web.json_response({"ok": True})

    async def stats(request: web.Request) -> web.Response:
        return web.json_response(dict(counts))

    hung: list[asyncio.StreamWriter] = []

    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        counts[f"{writer.get_extra_info('sockname')[1]}"] += 1
        hung.append(writer)
        with contextlib.suppress(Exception):
            while await reader.read(65536):
                pass
        hung.remove(writer)
        writer.close()

    def bound() -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        return sock

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/feed/{name}", feed)
        app.router.add_post("/plan", set_plan)
        app.router.add_get("/stats", stats)
        runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=1.0)
        await runner.setup()
        ports: dict[str, int] = {}
        for name in ["control", *names]:
            sock = bound()
            ports[name] = sock.getsockname()[1]
            await web.SockSite(runner, sock, backlog=1024).start()
        servers = []  # referenced, so that they live as long as the loop
        for name in hang_names:
            sock = bound()
            ports[name] = sock.getsockname()[1]
            servers.append(await asyncio.start_server(never_answer, sock=sock))
        out.put(ports)
        await asyncio.Event().wait()

    asyncio.run(main())


# -- the webhook receiver ---------------------------------------------------------------------------------------


@dataclass
class Receiver:
    received: list[tuple[float, dict[str, Any], str]] = field(default_factory=list)  # (wall time, alert, id)
    invalid: list[str] = field(default_factory=list)

    async def handle(self, request: Any) -> Any:
        from aiohttp import web
        from standardwebhooks.webhooks import Webhook, WebhookVerificationError

        body = await request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        try:
            Webhook(SECRET).verify(body, headers)
        except WebhookVerificationError as exc:
            self.invalid.append(str(exc))
            return web.Response(status=401)
        self.received.append((time.time(), json.loads(body), headers.get("webhook-id", "")))
        return web.Response(status=204)


# -- sampling memory ---------------------------------------------------------------------------------------------


def _ppid(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def rollup(pid: int) -> tuple[int, int]:
    """(PSS, RSS) in kB from smaps_rollup."""
    pss = rss_kb = 0
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            pss = int(line.split()[1])
        elif line.startswith("Rss:"):
            rss_kb = int(line.split()[1])
    return pss, rss_kb


class Sampler(threading.Thread):
    """Every ``period`` s: PSS and RSS of the daemon and each descendant, by process kind."""

    def __init__(self, proc: subprocess.Popen[bytes], period: float) -> None:
        super().__init__(daemon=True)
        self.proc = proc
        self.period = period
        self.stop = threading.Event()
        # (wall time, {kind: [pss, rss, processes]}, largest parser worker PSS)
        self.samples: list[tuple[float, dict[str, list[int]], int]] = []
        self.kinds: dict[int, str] = {}
        self.died_at: float | None = None
        self.workers_seen: set[int] = set()

    def kind(self, pid: int, ppid: int) -> str:
        if pid == self.proc.pid:
            return "daemon"
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        if b"redis-server" in cmd:
            return "redis"
        if b"resource_tracker" in cmd:
            return "resource_tracker"
        if b"forkserver" in cmd and ppid == self.proc.pid:
            return "forkserver"
        if self.kinds.get(ppid) == "forkserver":
            return "parser_worker"
        return "other"

    def run(self) -> None:
        while not self.stop.is_set():
            started = time.monotonic()
            if self.proc.poll() is not None and self.died_at is None:
                self.died_at = time.time()
            by_kind: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
            biggest_worker = 0
            for pid in _descendants(self.proc.pid):
                try:
                    ppid = _ppid(pid)
                    if pid not in self.kinds:
                        self.kinds[pid] = self.kind(pid, ppid)
                    pss, rss_kb = rollup(pid)
                except (OSError, ValueError, IndexError):
                    continue  # it exited between the listing and the read
                kind = self.kinds[pid]
                if kind == "parser_worker":
                    self.workers_seen.add(pid)
                    biggest_worker = max(biggest_worker, pss)
                slot = by_kind[kind]
                slot[0] += pss
                slot[1] += rss_kb
                slot[2] += 1
            self.samples.append((time.time(), dict(by_kind), biggest_worker))
            self.stop.wait(max(0.0, self.period - (time.monotonic() - started)))


# -- one run ----------------------------------------------------------------------------------------------------


@dataclass
class RunResult:
    name: str
    feeds: dict[str, str]  # feed name -> kind ("healthy" or a hostile kind)
    samples: list[tuple[float, dict[str, list[int]], int]]
    workers_seen: int
    pid_kept: bool
    died_at: float | None
    exit_code: int | None
    stop_s: float
    alive_at_10s: list[str]  # processes still there 10 s after SIGTERM
    log_events: list[dict[str, Any]]
    bad_lines: list[str]
    alerts: list[tuple[float, dict[str, Any], str]]
    invalid_signatures: list[str]
    releases: list[tuple[int, int, int, float]]
    t0: float
    ended_at: float  # when SIGTERM was sent


def write_config(
    folder: Path, name: str, ports: dict[str, int], feeds: list[str], hook: str, interval: int, workers: int | None
) -> Path:
    chosen = "" if workers is None else f", workers: {workers}"  # None: the shipped default (the cores)
    lines = [
        f"redis: {{url: embedded, data_dir: '{folder / ('redis-' + name)}'}}",
        f"rules: ['{ROOT / 'rules'}']",
        f"fetch: {{allow_private_networks: true{chosen}}}",
        "feeds:",
        *(
            f"  - {{name: {feed}, url: 'http://127.0.0.1:{ports[feed]}/feed/{feed}', interval_s: {interval}, "
            "adaptive: false}"
            for feed in feeds
        ),
        "alerts:",
        "  sinks:",
        f"    - {{type: webhook, url: '{hook}', secret: '${{HOOK_SECRET}}'}}",
        "log: {format: json}",
        "metrics: {port: 0}",
    ]
    path = folder / f"monitor-{name}.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def start_daemon(config: Path, folder: Path, name: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "MONITOR_CONFIG", "MONITOR_REPLICA")}
    env["HOOK_SECRET"] = SECRET
    with (folder / f"{name}.stderr").open("wb") as err, (folder / f"{name}.stdout").open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "monitor", "run", "-c", str(config)], cwd=ROOT, env=env, stdout=out, stderr=err
        )


def read_log(folder: Path, name: str) -> tuple[list[dict[str, Any]], list[str]]:
    events, bad = [], []
    for stream in ("stderr", "stdout"):
        path = folder / f"{name}.{stream}"
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                bad.append(f"{stream}: {line[:300]}")
                continue
            if isinstance(event, dict):
                events.append(event)
    return events, bad


def process_state(pid: int, kinds: dict[int, str]) -> str:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu_s = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return f"{kinds.get(pid, '?')} {pid} state {fields[0]} cpu {cpu_s:.1f}s"


def stop_daemon(proc: subprocess.Popen[bytes], kinds: dict[int, str]) -> tuple[int | None, float, list[str]]:
    """SIGTERM; if it has not exited after 10 s (the README's promise), what is still alive; SIGKILL at 20 s."""
    began = time.monotonic()
    alive: list[str] = []
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            for pid in _descendants(proc.pid):
                with contextlib.suppress(OSError, ValueError, IndexError):
                    alive.append(process_state(pid, kinds))
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                # Its children would outlive it (Redis in its own session, the forkserver and its workers): they
                # were started for this run, so they go too, each by its PID.
                children = [pid for pid in _descendants(proc.pid) if pid != proc.pid]
                proc.kill()
                proc.wait()
                for pid in children:
                    with contextlib.suppress(OSError):
                        os.kill(pid, signal.SIGKILL)
                return None, time.monotonic() - began, alive
    return proc.returncode, time.monotonic() - began, alive


def post_json(port: int, path: str, payload: dict[str, Any]) -> None:
    import urllib.request

    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=json.dumps(payload).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:  # loopback only
        answer.read()


async def one_run(
    name: str,
    feeds: dict[str, str],
    ports: dict[str, int],
    hook: str,
    receiver: Receiver,
    folder: Path,
    args: argparse.Namespace,
) -> RunResult:
    healthy = [f for f, kind in feeds.items() if kind == "healthy"]
    releases = story_releases(len(healthy), args.duration, args.interval)
    config = write_config(folder, name, ports, list(feeds), hook, args.interval, args.workers)
    receiver.received.clear()
    receiver.invalid.clear()
    t0 = time.time()
    post_json(
        ports["control"],
        "/plan",
        {
            "run": name,
            "t0": t0,
            "interval": args.interval,
            "healthy": healthy,
            "releases": releases,
        },
    )
    proc = start_daemon(config, folder, name)
    pid = proc.pid
    sampler = Sampler(proc, args.sample_ms / 1000)
    sampler.start()
    try:
        deadline = time.monotonic() + args.duration
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            await asyncio.sleep(0.5)
        # Settle: the last stories' alerts may still be on their way.
        settle = time.monotonic() + args.settle
        while time.monotonic() < settle and proc.poll() is None:
            stories = {story_of(alert) for _, alert, _ in receiver.received if alert.get("kind") == "event"}
            if len(stories - {None}) >= len(STORIES):
                break
            await asyncio.sleep(0.5)
    except BaseException:  # interrupted: leave no daemon behind
        sampler.stop.set()
        stop_daemon(proc, sampler.kinds)
        raise
    ended_at = time.time()
    pid_kept = proc.poll() is None and proc.pid == pid
    exit_code, stop_s, alive_at_10s = await asyncio.to_thread(stop_daemon, proc, sampler.kinds)
    sampler.stop.set()
    sampler.join()
    await asyncio.sleep(0.5)  # a delivery answered during shutdown
    events, bad = read_log(folder, name)
    return RunResult(
        name=name,
        feeds=feeds,
        samples=sampler.samples,
        workers_seen=len(sampler.workers_seen),
        pid_kept=pid_kept,
        died_at=sampler.died_at,
        exit_code=exit_code,
        stop_s=stop_s,
        alive_at_10s=alive_at_10s,
        log_events=events,
        bad_lines=bad,
        alerts=list(receiver.received),
        invalid_signatures=list(receiver.invalid),
        releases=releases,
        t0=t0,
        ended_at=ended_at,
    )


def story_of(alert: dict[str, Any]) -> int | None:
    for article in alert.get("articles") or ():
        url = str(article.get("url", ""))
        if "/story" in url:
            with contextlib.suppress(ValueError):
                return int(url.split("/story")[1].split("/")[0])
    return None


# -- reporting ----------------------------------------------------------------------------------------------------


def mb(kb: float) -> float:
    return kb / 1024


def memory_summary(result: RunResult) -> dict[str, Any]:
    samples = result.samples
    if not samples:
        return {}

    def total(sample: dict[str, list[int]], which: int, redis: bool) -> int:
        return sum(v[which] for k, v in sample.items() if redis or k != "redis")

    out: dict[str, Any] = {"samples": len(samples)}
    for label, which, redis in (
        ("pss_total", 0, True),
        ("pss_no_redis", 0, False),
        ("rss_total", 1, True),
        ("rss_no_redis", 1, False),
    ):
        values = [total(s[1], which, redis) for s in samples]
        peak = max(range(len(values)), key=values.__getitem__)
        out[label] = {
            "peak_mb": round(mb(values[peak]), 1),
            "at_s": round(samples[peak][0] - result.t0, 1),
            "median_mb": round(mb(statistics.median(values)), 1),
        }
        if label == "pss_total":
            out["pss_total"]["by_kind_at_peak"] = {k: round(mb(v[0]), 1) for k, v in sorted(samples[peak][1].items())}
            out["peak_time"] = samples[peak][0]
    kinds = sorted({k for s in samples for k in s[1]})
    out["by_kind"] = {
        k: {
            "peak_pss_mb": round(mb(max(s[1].get(k, [0, 0, 0])[0] for s in samples)), 1),
            "peak_rss_mb": round(mb(max(s[1].get(k, [0, 0, 0])[1] for s in samples)), 1),
            "max_processes": max(s[1].get(k, [0, 0, 0])[2] for s in samples),
        }
        for k in kinds
    }
    out["largest_worker_pss_mb"] = round(mb(max(s[2] for s in samples)), 1)
    over = [s for s in samples if total(s[1], 0, True) > LIMIT_MB * 1024]
    out["samples_over_limit_pss"] = len(over)
    out["samples_over_limit_pss_no_redis"] = sum(1 for s in samples if total(s[1], 0, False) > LIMIT_MB * 1024)
    return out


def feed_outcomes(result: RunResult) -> dict[str, dict[str, Any]]:
    """Per feed: polls ``fetched``, ``failed`` (cleanly, by reason), ``crashed`` (``feed_crashed``), ``lost`` (an
    exception escaped the poll into APScheduler, e.g. a CancelledError: no ``feed_failed``, nothing recorded) and
    ``when`` (the time each poll ended), all before SIGTERM."""
    per: dict[str, dict[str, Any]] = {
        f: {"fetched": 0, "failed": Counter(), "crashed": 0, "lost": Counter(), "items": 0, "when": []}
        for f in result.feeds
    }
    for event in result.log_events:
        if stamp_of(event) >= result.ended_at:
            continue
        feed = event.get("feed")
        name = str(event.get("event"))
        job = JOB_ERROR.match(name)
        if job and job.group(1) in per:
            tail = str(event.get("exception") or "").strip().splitlines()
            per[job.group(1)]["lost"][tail[-1] if tail else "?"] += 1
            per[job.group(1)]["when"].append(stamp_of(event))
            continue
        if feed not in per:
            continue
        if name in ("feed_fetched", "feed_failed", "feed_crashed", "feed_store_failed"):
            per[feed]["when"].append(stamp_of(event))
        if name == "feed_fetched":
            per[feed]["fetched"] += 1
            per[feed]["items"] = max(per[feed]["items"], int(event.get("items") or 0))
        elif name == "feed_failed":
            per[feed]["failed"][str(event.get("reason"))] += 1
        elif name in ("feed_crashed", "feed_store_failed"):
            per[feed]["crashed"] += 1
    return per


def polls(outcome: dict[str, Any]) -> int:
    return outcome["fetched"] + sum(outcome["failed"].values()) + outcome["crashed"] + sum(outcome["lost"].values())


def alert_summary(result: RunResult) -> dict[str, Any]:
    released_at = {}
    for k, copy, _, offset in result.releases:
        if copy == 0:
            released_at[k] = result.t0 + offset
    events = [(t, a, i) for t, a, i in result.alerts if a.get("kind") == "event"]
    first: dict[int, float] = {}
    per_story: Counter[int] = Counter()
    unexpected = []
    revisions = 0
    ids = Counter(i for _, _, i in result.alerts)
    for at, alert, _ in events:
        story = story_of(alert)
        if story is None:
            unexpected.append(alert.get("title", "")[:80])
            continue
        if int(alert.get("revision", 1)) > 1:
            revisions += 1
            continue
        per_story[story] += 1
        first.setdefault(story, at)
    latencies = sorted(first[k] - released_at[k] for k in first)
    return {
        "expected": len(STORIES),
        "alerted": len(first),
        "missing": sorted(set(range(len(STORIES))) - set(first)),
        "duplicates": {k: n for k, n in per_story.items() if n > 1},
        "revisions": revisions,
        "unexpected_event_alerts": unexpected,
        "feed_notices": sum(1 for _, a, _ in result.alerts if a.get("kind") == "feed"),
        "escalation_alerts": sum(1 for _, a, _ in result.alerts if a.get("kind") == "escalation"),
        "requests_accepted": len(result.alerts),
        "redelivered_ids": sum(n - 1 for n in ids.values() if n > 1),
        "invalid_signatures": len(result.invalid_signatures),
        "latency_s": {
            "median": round(statistics.median(latencies), 2) if latencies else None,
            "max": round(latencies[-1], 2) if latencies else None,
        },
    }


def stamp_of(event: dict[str, Any]) -> float:
    with contextlib.suppress(ValueError, TypeError):
        return datetime.fromisoformat(str(event.get("timestamp")).replace("Z", "+00:00")).timestamp()
    return 0.0


def timeline(result: RunResult, step: float = 10.0) -> str:
    """The highest total PSS in each ``step`` seconds of the run."""
    peaks: dict[int, int] = {}
    for at, sample, _ in result.samples:
        slot = int((at - result.t0) // step)
        peaks[slot] = max(peaks.get(slot, 0), sum(v[0] for v in sample.values()))
    return " ".join(f"{mb(peaks[k]):.0f}" for k in sorted(peaks))


def near_peak(result: RunResult, peak: float) -> list[str]:
    """Feeds whose polls ended from 2 s before to 6 s after the memory peak (a poll logs when it ends)."""
    found = []
    for event in result.log_events:
        if event.get("event") not in ("feed_fetched", "feed_failed", "parser_worker_replaced"):
            continue
        stamp = event.get("timestamp")
        if not stamp:
            continue
        with contextlib.suppress(ValueError):
            when = datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp()
            if peak - 2 <= when <= peak + 6:
                detail = event.get("reason") or f"items={event.get('items')}"
                found.append(f"{when - peak:+.1f}s {event['event']} {event.get('feed')}: {detail}")
    return found


def gaps(outcomes: dict[str, dict[str, Any]], feeds: list[str]) -> list[float]:
    """Seconds between the ends of consecutive polls of each feed."""
    out: list[float] = []
    for f in feeds:
        when = sorted(outcomes[f]["when"])
        out.extend(b - a for a, b in itertools.pairwise(when))
    return sorted(out)


def report(result: RunResult) -> dict[str, Any]:
    memory = memory_summary(result)
    outcomes = feed_outcomes(result)
    alerts = alert_summary(result)
    levels = Counter(str(e.get("level")) for e in result.log_events)
    replaced = Counter(str(e.get("reason")) for e in result.log_events if e.get("event") == "parser_worker_replaced")
    stayed_up = result.pid_kept and (result.died_at is None or result.died_at >= result.ended_at)
    print(f"\n=== {result.name}: {len(result.feeds)} feeds, {result.ended_at - result.t0:.0f} s ===")
    print(
        f"daemon: {'stayed up, same PID throughout' if stayed_up else 'DID NOT STAY UP'}"
        f"{'' if stayed_up or result.died_at is None else f' (gone {result.died_at - result.t0:.1f} s in)'}; "
        f"SIGTERM -> {'exit ' + str(result.exit_code) if result.exit_code is not None else 'no exit, SIGKILLed'} "
        f"after {result.stop_s:.1f} s; parser worker processes seen: {result.workers_seen}; "
        f"parser_worker_replaced: {dict(replaced) or 0}"
    )
    if result.alive_at_10s:
        print(f"  still alive 10 s after SIGTERM: {'; '.join(result.alive_at_10s)}")
    if memory:
        print(f"memory, {memory['samples']} samples (peak of the per-sample sum; median in brackets):")
        for label in ("pss_total", "pss_no_redis", "rss_total", "rss_no_redis"):
            m = memory[label]
            late = " after SIGTERM" if result.t0 + m["at_s"] > result.ended_at else ""
            print(f"  {label:<13} {m['peak_mb']:7.1f} MB at {m['at_s']:5.1f} s{late}  ({m['median_mb']:.1f})")
        print(f"  PSS by kind at the peak: {memory['pss_total']['by_kind_at_peak']}")
        for kind, m in memory["by_kind"].items():
            print(
                f"  {kind:<16} peak PSS {m['peak_pss_mb']:7.1f} MB, RSS {m['peak_rss_mb']:7.1f} MB, "
                f"up to {m['max_processes']} process(es)"
            )
        print(f"  largest single parser worker PSS: {memory['largest_worker_pss_mb']} MB")
        print(
            f"  samples over {LIMIT_MB} MB PSS: {memory['samples_over_limit_pss']} "
            f"(without Redis: {memory['samples_over_limit_pss_no_redis']})"
        )
        print(f"  total PSS, highest in each 10 s (MB): {timeline(result)}")
        window = near_peak(result, memory["peak_time"])
        if window:
            print("  polls ending around the PSS peak:")
            for line in window[:12]:
                print(f"    {line}")
    print(
        f"alerts: {alerts['alerted']}/{alerts['expected']} stories alerted with a valid signature; missing "
        f"{alerts['missing'] or 'none'}; duplicates {alerts['duplicates'] or 'none'}; revisions {alerts['revisions']}; "
        f"unexpected {len(alerts['unexpected_event_alerts'])}; invalid signatures {alerts['invalid_signatures']}; "
        f"latency from story to alert median {alerts['latency_s']['median']} s, max {alerts['latency_s']['max']} s; "
        f"feed-down notices {alerts['feed_notices']}, escalation alerts {alerts['escalation_alerts']}"
    )
    healthy = [f for f, k in result.feeds.items() if k == "healthy"]
    h_polls = sum(polls(outcomes[f]) for f in healthy)
    h_failed: Counter[str] = Counter()
    h_lost: Counter[str] = Counter()
    for f in healthy:
        h_failed.update(outcomes[f]["failed"])
        h_lost.update(outcomes[f]["lost"])
    h_gaps = gaps(outcomes, healthy)
    gap_text = (
        f"median {statistics.median(h_gaps):.1f} s, p95 {h_gaps[int(0.95 * (len(h_gaps) - 1))]:.1f} s, "
        f"max {h_gaps[-1]:.1f} s"
        if h_gaps
        else "n/a"
    )
    print(
        f"healthy feeds: {len(healthy)}, {h_polls} polls ({h_polls / max(1, len(healthy)):.1f} each; "
        f"time between polls {gap_text}); failed {sum(h_failed.values())}"
        f"{' ' + str(dict(h_failed)) if h_failed else ''}; lost (exception escaped the poll) "
        f"{sum(h_lost.values())}{' ' + str(dict(h_lost)) if h_lost else ''}; "
        f"crashed {sum(outcomes[f]['crashed'] for f in healthy)}"
    )
    by_kind: dict[str, list[str]] = defaultdict(list)
    for f, kind in result.feeds.items():
        if kind != "healthy":
            by_kind[kind].append(f)
    if by_kind:
        print(
            "hostile feeds (polls per copy; polls = fetched + failed cleanly + lost + crashed; reasons; "
            "lost = an exception escaped the poll, no feed_failed):"
        )
    table = {}
    for kind, names in by_kind.items():
        fetched = sum(outcomes[f]["fetched"] for f in names)
        failed: Counter[str] = Counter()
        lost: Counter[str] = Counter()
        for f in names:
            failed.update(outcomes[f]["failed"])
            lost.update(outcomes[f]["lost"])
        crashed = sum(outcomes[f]["crashed"] for f in names)
        items = max(outcomes[f]["items"] for f in names)
        per_copy = "/".join(str(polls(outcomes[f])) for f in names)
        total = sum(polls(outcomes[f]) for f in names)
        reasons = "; ".join(f"{n}x {r}" for r, n in failed.most_common())
        reasons += "".join(f"; {n}x lost: {r}" for r, n in lost.most_common())
        print(
            f"  {kind:<25} x{len(names)} ({per_copy}): {total:3d} = {fetched} fetched"
            f"{f' ({items} items)' if fetched else ''} + {sum(failed.values())} failed + {sum(lost.values())} lost"
            f" + {crashed} crashed{'  | ' + reasons.lstrip('; ') if reasons else ''}"
        )
        table[kind] = {
            "copies": len(names),
            "polls": total,
            "fetched": fetched,
            "items": items,
            "failed": dict(failed),
            "lost": dict(lost),
            "crashed": crashed,
        }
    print(f"log lines by level: {dict(levels)}; non-JSON lines (stdout and stderr): {len(result.bad_lines)}")
    for line in result.bad_lines[:4]:
        print(f"    {line[:200]}")
    serious = [
        e for e in result.log_events if e.get("level") in ("error", "critical") or e.get("event") == "feed_crashed"
    ]
    during = [e for e in serious if stamp_of(e) < result.ended_at]
    print(f"error lines while running: {len(during)}; after SIGTERM: {len(serious) - len(during)}")
    for event in (during or serious)[:3]:
        tail = str(event.get("exception") or "").strip().splitlines()
        print(f"    {str(event.get('event'))[:120]} ... {tail[-1] if tail else ''}")
    return {
        "name": result.name,
        "feeds": len(result.feeds),
        "stayed_up": stayed_up,
        "exit_code": result.exit_code,
        "stop_s": round(result.stop_s, 2),
        "alive_at_10s": result.alive_at_10s,
        "memory": {k: v for k, v in memory.items() if k != "peak_time"},
        "alerts": alerts,
        "healthy": {
            "polls": h_polls,
            "failed": dict(h_failed),
            "lost": dict(h_lost),
            "gap_median_s": round(statistics.median(h_gaps), 2) if h_gaps else None,
            "gap_max_s": round(h_gaps[-1], 2) if h_gaps else None,
        },
        "hostile": table,
        "levels": dict(levels),
        "parser_worker_replaced": dict(replaced),
        "workers_seen": result.workers_seen,
    }


def compare(base: dict[str, Any], hostile: dict[str, Any]) -> None:
    print("\n=== hostile mix against the baseline ===")
    for label in ("pss_total", "pss_no_redis", "rss_total", "rss_no_redis"):
        b = base["memory"][label]["peak_mb"]
        h = hostile["memory"][label]["peak_mb"]
        print(f"  peak {label:<13} baseline {b:7.1f} MB, hostile {h:7.1f} MB: +{h - b:.1f} MB, x{h / b:.2f}")
    peak = hostile["memory"]["pss_total"]["peak_mb"]
    a = hostile["alerts"]
    ok_alerts = a["alerted"] == a["expected"] and not a["duplicates"] and not a["invalid_signatures"]
    clean_stop = hostile["exit_code"] == 0 and hostile["stop_s"] < 10
    print(
        f"  promise: stays up {'yes' if hostile['stayed_up'] else 'NO'} "
        f"(SIGTERM {'within 10 s, exit 0' if clean_stop else 'NOT within 10 s with exit 0'}); peak PSS below "
        f"{LIMIT_MB} MB {'yes' if peak < LIMIT_MB else 'NO'} ({peak:.1f} MB, "
        f"{hostile['memory']['pss_no_redis']['peak_mb']:.1f} without Redis); healthy alerts "
        f"{'yes' if ok_alerts else 'NO'} ({a['alerted']}/{a['expected']}, latency median "
        f"{a['latency_s']['median']} s, max {a['latency_s']['max']} s, against "
        f"{base['alerts']['latency_s']['median']} s and {base['alerts']['latency_s']['max']} s in the baseline)"
    )


def solo_line(kind: str, r: dict[str, Any]) -> str:
    m, a, h = r["memory"], r["alerts"], r["healthy"]
    by = m["by_kind"]
    return (
        f"{kind:<25} {m['pss_total']['peak_mb']:6.1f} {by.get('daemon', {}).get('peak_pss_mb', 0):6.1f} "
        f"{by.get('parser_worker', {}).get('peak_pss_mb', 0):6.1f} {m['largest_worker_pss_mb']:6.1f} "
        f"{'yes' if r['stayed_up'] else 'NO':>3} {r['exit_code']!s:>4} {r['stop_s']:5.1f} "
        f"{a['alerted']:2d}/{a['expected']} {a['latency_s']['median']!s:>6} {a['latency_s']['max']!s:>6} "
        f"{h['polls']:5d} {sum(h['failed'].values()) + sum(h['lost'].values()):4d} "
        f"{sum(r['parser_worker_replaced'].values()):4d}"
    )


def build_feeds(args: argparse.Namespace, kinds: list[str]) -> dict[str, str]:
    feeds = {f"healthy-{i:02d}": "healthy" for i in range(args.healthy)}
    for kind in kinds:
        for c in range(args.copies if kind in HEAVY else 1):
            feeds[f"{kind}.{c}"] = kind
    return feeds


def code_version() -> tuple[str, bool]:
    """The commit, and whether monitor/ has uncommitted changes (others may be editing it)."""
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain", "monitor"], capture_output=True, text=True
    ).stdout.strip()
    return commit.stdout.strip(), bool(dirty)


async def main(args: argparse.Namespace) -> None:
    from aiohttp import web

    began = time.monotonic()
    folder = Path(tempfile.mkdtemp(prefix="bench-hostile-"))
    all_feeds = build_feeds(args, HEAVY + LIGHT)
    hang = [f for f, kind in all_feeds.items() if kind == "hang"]
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    server = context.Process(target=serve, args=(queue, [f for f in all_feeds if f not in hang], hang), daemon=True)
    server.start()
    ports: dict[str, int] = await asyncio.to_thread(queue.get, True, 120)
    receiver = Receiver()
    app = web.Application()
    app.router.add_post(HOOK_PATH, receiver.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    await web.SockSite(runner, sock).start()
    hook = f"http://127.0.0.1:{sock.getsockname()[1]}{HOOK_PATH}"
    commit, dirty = code_version()
    print(
        f"bench_hostile: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, commit {commit}"
        f"{' with uncommitted changes in monitor/' if dirty else ''}, Python {sys.version.split()[0]}, "
        f"{os.cpu_count()} CPUs; duration {args.duration:g} s + up to {args.settle:g} s settle per run, "
        f"interval {args.interval} s, {args.healthy} healthy feeds, {args.copies} copies of {len(HEAVY)} heavy "
        f"hostile kinds + {len(LIGHT)} light; data in {folder}",
        flush=True,
    )
    results = {}
    try:
        if args.solo is not None:
            runs = {kind: [kind] for kind in (args.solo or HEAVY + LIGHT)}
        else:
            runs = {"baseline": [], "hostile": HEAVY + LIGHT}
            if args.only:
                runs = {args.only: runs[args.only]}
        for name, kinds in runs.items():
            result = await one_run(name, build_feeds(args, kinds), ports, hook, receiver, folder, args)
            results[name] = report(result)
            sys.stdout.flush()
        if args.solo is not None:
            print(
                "\n=== one hostile kind at a time, with the healthy feeds (MB of PSS; latency in s) ===\n"
                f"{'kind':<25} {'total':>6} {'daemon':>6} {'wrkrs':>6} {'1 wrkr':>6} {'up':>3} {'exit':>4} "
                f"{'stop':>5} {'alerts':>5} {'lat.md':>6} {'max':>6} {'polls':>5} {'fail':>4} {'repl':>4}"
            )
            for kind, r in results.items():
                print(solo_line(kind, r))
        elif len(results) == 2:
            compare(results["baseline"], results["hostile"])
    finally:
        await runner.cleanup()
        server.kill()
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    print(f"\nbench_hostile took {time.monotonic() - began:.0f} s")
    if args.json:
        await asyncio.to_thread(Path(args.json).write_text, json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=90, help="seconds each run polls (default 90)")
    parser.add_argument("--copies", type=int, default=3, help="copies of each heavy hostile feed (default 3)")
    parser.add_argument("--healthy", type=int, default=36, help="healthy feeds (default 36)")
    parser.add_argument("--interval", type=int, default=4, help="poll interval of every feed, s (default 4)")
    parser.add_argument(
        "--settle",
        type=float,
        default=60,
        help="after the duration, at most this long for the last alerts (default 60)",
    )
    parser.add_argument("--sample-ms", type=float, default=100, help="memory sampling period (default 100)")
    parser.add_argument("--only", choices=["baseline", "hostile"], help="one run instead of both")
    parser.add_argument("--workers", type=int, help="fetch.workers (default: the shipped one, none below 5,000 feeds)")
    parser.add_argument(
        "--solo",
        nargs="*",
        choices=HEAVY + LIGHT,
        metavar="KIND",
        help="instead: one run per hostile kind (default every kind), each with the healthy feeds, and a table",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (configs, logs, Redis data)")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    asyncio.run(main(parser.parse_args()))
