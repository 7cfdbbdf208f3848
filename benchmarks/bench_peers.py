"""Our monitor against three peer feed readers from PyPI, feed2exec, rss2email and reader, on the same loopback feeds.

Each tool gets its own feed server process on 127.0.0.1 (the feeds of ``bench_fetch``: N feeds of 20 items with
ETags, 304 on a matching If-None-Match) that also counts its 200 and 304 answers. Every tool runs one cold cycle
(every feed new to it), then ``--warm`` warm cycles, each after the same 10% of feeds changed on every server (the
``/change`` endpoint, same seed). In each round the tools run one after another, in an order rotated each round, so
a burst of load on this shared machine hits all of them alike.

* rss2email: ``r2e -c CFG -d DATA run --no-send``; its config also sets ``sendmail = /bin/true``.
* feed2exec: ``feed2exec --config INI --database DB fetch`` with the ``null`` output plugin on every feed.
* reader (lemon24's library, Python >= 3.12): one long-lived process, as an application embedding the library runs
  it, doing ``update_feeds(scheduled=False, workers=32)`` per cycle; its CPU is that process's (all its threads),
  from /proc. It has its own virtualenv, ``benchmarks/.reader-venv``, made with ``$READER_PYTHON`` or pyenv's 3.12.
* ours: ``App.cycle()`` of the real pipeline (aiohttp fetcher, parser workers, matcher, events in an embedded
  Redis), set up as ``bench_fetch`` does.

rss2email and feed2exec are run per cycle as the cron jobs they are designed to be, so their figures include their
process start (shown apart as the cost of ``--version``). Their CPU is user+sys of the process and every child it
waited for (``os.wait4``); ours is the monitor process plus its descendants (parser workers, embedded Redis), from
/proc, as ``bench_fetch`` measures it. The peers live in their own virtualenvs (``benchmarks/.peers-venv`` and
``.reader-venv``), created with pinned versions on first use (PyPI needed then). No peer sends mail and nothing
leaves loopback.

    .venv/bin/python benchmarks/bench_peers.py                # 300 feeds, 3 warm cycles: about 70 s
    .venv/bin/python benchmarks/bench_peers.py --feeds 1000 --warm 5

Run on demand, never in the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import configparser
import io
import json
import multiprocessing
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from benchmarks.bench_fetch import _comm, _cpu_of, _descendants, serve  # noqa: E402

VENV = HERE / ".peers-venv"
PINS = ["feed2exec==0.23.0", "rss2email==3.14"]
# reader needs Python >= 3.12: its own virtualenv, made with the first of these interpreters that exists.
READER_VENV = HERE / ".reader-venv"
READER_PIN = "reader==3.27"
READER_PYTHONS = (
    os.environ.get("READER_PYTHON", ""),
    str(Path.home() / ".pyenv" / "versions" / "3.12.1" / "bin" / "python3.12"),
    "python3.12",
    "python3.13",
)
SHARE = 0.1
MAIL_TO = "bench@localhost.invalid"


def ensure_venv() -> Path:
    """The peers' virtualenv, created and filled with the pinned versions if a tool is missing."""
    bin_dir = VENV / "bin"
    if not ((bin_dir / "r2e").exists() and (bin_dir / "feed2exec").exists()):
        print(f"creating {VENV.relative_to(ROOT)} and installing {' '.join(PINS)} ...", flush=True)
        subprocess.run(["python3", "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(bin_dir / "python"), "-m", "pip", "install", "--quiet", *PINS], check=True)
    return bin_dir


def ensure_reader_venv() -> Path:
    """reader's virtualenv (Python >= 3.12), created and filled with the pinned version if missing."""
    bin_dir = READER_VENV / "bin"
    if not (bin_dir / "python").exists() or subprocess.run([str(bin_dir / "python"), "-c", "import reader"]).returncode:
        python = next((p for p in READER_PYTHONS if p and shutil.which(p)), None)
        if python is None:
            raise RuntimeError("reader needs Python >= 3.12: set READER_PYTHON to one")
        print(f"creating {READER_VENV.relative_to(ROOT)} with {python} and installing {READER_PIN} ...", flush=True)
        subprocess.run([python, "-m", "venv", "--clear", str(READER_VENV)], check=True)
        subprocess.run([str(bin_dir / "python"), "-m", "pip", "install", "--quiet", READER_PIN], check=True)
    return bin_dir


def reader_versions(bin_dir: Path) -> dict[str, str]:
    code = (
        "import importlib.metadata as m, json, sys\n"
        "print(json.dumps({'reader': m.version('reader'), 'reader python': sys.version.split()[0]}))"
    )
    out = subprocess.run([str(bin_dir / "python"), "-c", code], check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def peer_versions(bin_dir: Path) -> dict[str, str]:
    code = (
        "import importlib.metadata as m, json, sys\n"
        "print(json.dumps({n: m.version(n) for n in ('rss2email', 'feed2exec', 'feedparser', 'requests')}"
        " | {'python': sys.version.split()[0]}))"
    )
    out = subprocess.run([str(bin_dir / "python"), "-c", code], check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def peer_env(home: Path) -> dict[str, str]:
    """The environment of a peer: no proxy variables, a throw-away HOME and XDG folders."""
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_DATA_HOME=str(home / ".local" / "share"),
        XDG_CACHE_HOME=str(home / ".cache"),
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
    )
    return env


def run_measured(argv: list[str], env: dict[str, str], log: Path) -> tuple[float, float]:
    """Run ``argv`` to its end: wall seconds and CPU seconds (user+sys of it and every child it waited for)."""
    with log.open("ab") as out:
        out.write(f"\n$ {' '.join(argv)}\n".encode())
        out.flush()
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        tail = log.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"{argv[0]} exited {proc.returncode}; end of {log}:\n{tail}")
    return wall, usage.ru_utime + usage.ru_stime


def start_up_cpu(argv: list[str], env: dict[str, str], log: Path) -> float:
    """Median CPU seconds of three runs of ``argv`` (``TOOL --version``: interpreter start and imports)."""
    return statistics.median(run_measured(argv, env, log)[1] for _ in range(3))


@dataclass
class Cycle:
    wall: float
    cpu: float
    ok: int  # 200 answers
    not_modified: int  # 304 answers
    conditional: int  # requests that carried If-None-Match or If-Modified-Since
    new_items: int


@dataclass
class Tool:
    name: str
    port: int
    feeds: int
    work: Path
    bin_dir: Path = Path()  # the peers' virtualenv
    env: dict[str, str] = field(default_factory=dict)  # a peer's environment
    start_cpu: float | None = None
    cycles: list[Cycle] = field(default_factory=list)

    def url(self, i: int) -> str:
        return f"http://127.0.0.1:{self.port}/f/{i}.xml"

    async def setup(self) -> None: ...

    async def cycle(self) -> tuple[float, float, int]:
        """Run one cycle: wall seconds, CPU seconds, items new to the tool."""
        raise NotImplementedError

    async def close(self) -> None: ...


@dataclass
class Rss2Email(Tool):
    def _cmd(self, *args: str) -> list[str]:
        return [str(self.bin_dir / "r2e"), "-c", str(self.work / "r2e.cfg"), "-d", str(self.work / "r2e.json"), *args]

    def _setup(self) -> None:
        env, log = self.env, self.work / "r2e.log"
        run_measured(self._cmd("new", MAIL_TO), env, log)
        run_measured(self._cmd("add", "f0", self.url(0)), env, log)
        # The other feeds as `r2e add` writes them (one [feed.NAME] section with its url), in one go: 300 runs of
        # `r2e add` would take a minute. rss2email picks up config-only feeds on load. Mail cannot leave: every run
        # is --no-send, and sendmail is /bin/true anyway.
        config = configparser.RawConfigParser()
        config.read(self.work / "r2e.cfg")
        config["DEFAULT"].update({"email-protocol": "sendmail", "sendmail": "/bin/true", "verbose": "warning"})
        for i in range(1, self.feeds):
            config[f"feed.f{i}"] = {"url": self.url(i)}
        with (self.work / "r2e.cfg").open("w") as out:
            config.write(out)
        listed = subprocess.run(self._cmd("list"), env=env, check=True, capture_output=True, text=True).stdout
        if len(listed.splitlines()) != self.feeds:
            raise RuntimeError(f"r2e list shows {len(listed.splitlines())} feeds, expected {self.feeds}")
        self.start_cpu = start_up_cpu([str(self.bin_dir / "r2e"), "--version"], env, log)

    def _seen(self) -> int:
        data = json.loads((self.work / "r2e.json").read_text())
        return sum(len(feed.get("seen", {})) for feed in data["feeds"])

    def _cycle(self) -> tuple[float, float, int]:
        before = self._seen()
        wall, cpu = run_measured(self._cmd("run", "--no-send"), self.env, self.work / "r2e.log")
        return wall, cpu, self._seen() - before

    async def setup(self) -> None:
        await asyncio.to_thread(self._setup)

    async def cycle(self) -> tuple[float, float, int]:
        return await asyncio.to_thread(self._cycle)


@dataclass
class Feed2Exec(Tool):
    def _cmd(self, *args: str) -> list[str]:
        ini, db = str(self.work / "f2e.ini"), str(self.work / "f2e.db")
        return [str(self.bin_dir / "feed2exec"), "--config", ini, "--database", db, *args]

    def _setup(self) -> None:
        env, log = self.env, self.work / "f2e.log"
        run_measured(self._cmd("add", "f0", self.url(0), "--output", "null"), env, log)
        # The others as `feed2exec add` writes them ([NAME] with url and output), in one go as for rss2email. The
        # null output plugin does nothing with an item; feed2exec still records its guid as seen.
        config = configparser.RawConfigParser()
        config.read(self.work / "f2e.ini")
        output = config["f0"]["output"]
        for i in range(1, self.feeds):
            config[f"f{i}"] = {"url": self.url(i), "output": output}
        with (self.work / "f2e.ini").open("w") as out:
            config.write(out)
        listed = subprocess.run(self._cmd("ls"), env=env, check=True, capture_output=True, text=True).stdout
        if listed.count('"url"') != self.feeds or listed.count(output) != self.feeds:
            raise RuntimeError(f"feed2exec ls does not show {self.feeds} feeds with the {output} output")
        self.start_cpu = start_up_cpu([str(self.bin_dir / "feed2exec"), "--version"], env, log)

    def _seen(self) -> int:
        path = self.work / "f2e.db"
        if not path.exists():
            return 0
        with sqlite3.connect(path) as db:
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            return db.execute("SELECT COUNT(*) FROM feedcache").fetchone()[0] if "feedcache" in tables else 0

    def _cycle(self) -> tuple[float, float, int]:
        before = self._seen()
        wall, cpu = run_measured(self._cmd("fetch"), self.env, self.work / "f2e.log")
        return wall, cpu, self._seen() - before

    async def setup(self) -> None:
        await asyncio.to_thread(self._setup)

    async def cycle(self) -> tuple[float, float, int]:
        return await asyncio.to_thread(self._cycle)


# The long-lived reader process: adds the feeds, says "ready", then runs one update per line it reads and answers
# with the number of entries it holds. The benchmark measures its wall time and, from /proc, its CPU (all threads).
READER_DRIVER = """
import json, sys
from reader import make_reader
db, urls = sys.argv[1], sys.argv[2]
reader = make_reader(db)
for url in open(urls).read().split():
    reader.add_feed(url, exist_ok=True)
print("ready", flush=True)
for line in sys.stdin:
    reader.update_feeds(scheduled=False, workers=32)
    print(json.dumps({"entries": reader.get_entry_counts().total}), flush=True)
"""


@dataclass
class Reader(Tool):
    """lemon24's reader, one process for the whole run (as an application embedding it would use it), each cycle
    ``update_feeds(scheduled=False, workers=32)``: 32 threads fetch, the main thread parses and stores."""

    entries: int = 0

    async def setup(self) -> None:
        urls = self.work / "urls.txt"
        urls.write_text("\n".join(self.url(i) for i in range(self.feeds)) + "\n")
        log = self.work / "reader.log"
        self.start_cpu = start_up_cpu([str(self.bin_dir / "python"), "-c", "import reader"], self.env, log)
        self.proc = await asyncio.create_subprocess_exec(
            str(self.bin_dir / "python"),
            "-c",
            READER_DRIVER,
            str(self.work / "reader.sqlite"),
            str(urls),
            env=self.env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=log.open("ab"),
        )
        assert self.proc.stdout is not None
        ready = await asyncio.wait_for(self.proc.stdout.readline(), 600)
        if ready.strip() != b"ready":
            raise RuntimeError(f"reader did not start; see {log}")

    async def cycle(self) -> tuple[float, float, int]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        cpu0 = _cpu_of([self.proc.pid])
        t0 = time.perf_counter()
        self.proc.stdin.write(b"cycle\n")
        await self.proc.stdin.drain()
        line = await self.proc.stdout.readline()
        wall = time.perf_counter() - t0
        cpu = _cpu_of([self.proc.pid]) - cpu0
        if not line:
            raise RuntimeError(f"reader exited; see {self.work / 'reader.log'}")
        entries = json.loads(line)["entries"]
        new, self.entries = entries - self.entries, entries
        return wall, cpu, new

    async def close(self) -> None:
        if getattr(self, "proc", None) is not None and self.proc.returncode is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                await asyncio.wait_for(self.proc.wait(), 30)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


@dataclass
class Ours(Tool):
    """The monitor in this process, built as ``bench_fetch.run`` builds it."""

    concurrency: int = 100
    exclude: frozenset[int] = frozenset()  # the feed servers, which are our children too
    redis_cpu: list[float] = field(default_factory=list)  # the embedded Redis's share of each cycle's CPU

    async def setup(self) -> None:
        import logging

        import structlog

        from monitor.config import Config
        from monitor.core.clock import SystemClock
        from monitor.detection.rulefile import load_rules
        from monitor.service.root import build_app
        from monitor.storage.connection import EmbeddedRedis, connect

        self.redis_server = EmbeddedRedis(self.work / "redis")
        url = self.redis_server.start()
        config = Config.model_validate(
            {
                "fetch": {
                    "allow_private_networks": True,
                    "concurrency": self.concurrency,
                    "per_host_concurrency": self.concurrency,
                    "timeout_s": 60,
                },
                "feeds": [{"name": f"f{i}", "url": self.url(i)} for i in range(self.feeds)],
                "alerts": {"sinks": []},
                "log": {"level": "warning"},
            }
        )
        structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
        self.app = await build_app(
            config,
            load_rules([ROOT / "rules"]),
            clock=SystemClock(),
            redis=connect(url, config.redis),
            stdout=io.StringIO(),
        )
        await self.app.start()

    def _pids(self) -> list[int]:
        return [p for p in _descendants(os.getpid()) if p not in self.exclude]

    def _redis_pids(self) -> list[int]:
        return [p for p in self._pids() if _comm(p) == "redis-server"]

    async def cycle(self) -> tuple[float, float, int]:
        cpu0, redis0 = _cpu_of(self._pids()), _cpu_of(self._redis_pids())
        t0 = time.perf_counter()
        results = await self.app.cycle()
        wall = time.perf_counter() - t0
        cpu = _cpu_of(self._pids()) - cpu0
        self.redis_cpu.append(_cpu_of(self._redis_pids()) - redis0)
        new = sum(r.articles - r.duplicates - r.too_old for r in results if r is not None)
        if any(r is None for r in results):
            print(f"  ours: {sum(r is None for r in results)} feeds failed", flush=True)
        return wall, cpu, new

    async def close(self) -> None:
        await self.app.close()
        self.redis_server.stop()


async def control(session: Any, tool: Tool, method: str, path: str) -> Any:
    async with session.request(method, f"http://127.0.0.1:{tool.port}{path}") as resp:
        resp.raise_for_status()
        return await resp.json() if path.startswith("/stats") else await resp.text()


def median(values: list[float]) -> float:
    return statistics.median(values)


def report(tools: list[Tool], versions: dict[str, str]) -> None:
    ours = next(t for t in tools if isinstance(t, Ours))
    feeds = ours.feeds

    def warm(tool: Tool) -> list[Cycle]:
        return tool.cycles[1:]

    print(
        f"\n{feeds} feeds, 1 cold + {len(warm(ours))} warm cycles ({SHARE:.0%} of feeds changed before each); "
        "warm figures are medians; × = peer / ours (ratio of the medians; per round: median of per-round ratios)"
    )
    head = (
        f"{'tool':<10} {'cold s':>7} {'warm s':>7} {'warm CPU ms/feed':>17} {'start CPU s':>11} "
        f"{'× cold':>7} {'× warm s':>9} {'× CPU':>6} {'× s per round':>14} {'× CPU per round':>16}"
    )
    print(head)
    print("-" * len(head))
    for tool in tools:
        cold = tool.cycles[0]
        ws = median([c.wall for c in warm(tool)])
        wc = median([c.cpu for c in warm(tool)]) / feeds * 1000
        start = f"{tool.start_cpu:.2f}" if tool.start_cpu is not None else "-"
        line = f"{tool.name:<10} {cold.wall:7.2f} {ws:7.2f} {wc:17.2f} {start:>11}"
        if tool is not ours:
            ows = median([c.wall for c in warm(ours)])
            owc = median([c.cpu for c in warm(ours)]) / feeds * 1000
            rs = median([p.wall / o.wall for p, o in zip(warm(tool), warm(ours), strict=True)])
            rc = median([p.cpu / o.cpu for p, o in zip(warm(tool), warm(ours), strict=True)])
            line += f" {cold.wall / ours.cycles[0].wall:7.1f} {ws / ows:9.1f} {wc / owc:6.1f} {rs:14.1f} {rc:16.1f}"
        print(line)
    print("\nrequests per cycle (200 / 304 / carrying If-None-Match or If-Modified-Since) and items new to the tool:")
    for tool in tools:
        cells = "  ".join(f"{c.ok}/{c.not_modified}/{c.conditional} +{c.new_items}" for c in tool.cycles)
        verdict = "uses conditional GET" if all(c.not_modified for c in warm(tool)) else "NO conditional GET"
        print(f"  {tool.name:<10} {cells}   -> {verdict}")
    print(
        "\npeers: "
        + ", ".join(f"{k} {v}" for k, v in versions.items())
        + f" (in {VENV.relative_to(ROOT)} and {READER_VENV.relative_to(ROOT)}); ours: Python {sys.version.split()[0]},"
        f" concurrency {ours.concurrency}"
    )
    redis = median(ours.redis_cpu[1:]) / feeds * 1000
    print(
        f"machine: {os.cpu_count()} cores; rss2email's and feed2exec's warm CPU includes their start-up (the 'start "
        "CPU' column: TOOL --version); reader runs in one process (its 'start CPU' is `import reader`, paid once); "
        f"ours includes the embedded redis-server, {redis:.2f} ms per feed of it warm"
    )


async def run(feeds: int, warm: int, concurrency: int, keep: bool) -> None:
    import aiohttp

    bin_dir = await asyncio.to_thread(ensure_venv)
    reader_bin = await asyncio.to_thread(ensure_reader_venv)
    versions = await asyncio.to_thread(peer_versions, bin_dir) | await asyncio.to_thread(reader_versions, reader_bin)
    work = Path(tempfile.mkdtemp(prefix="bench-peers-"))
    context = multiprocessing.get_context("spawn")
    servers = []
    tools: list[Tool] = []
    try:
        kinds: tuple[tuple[type[Tool], str, Path], ...] = (
            (Rss2Email, "rss2email", bin_dir),
            (Feed2Exec, "feed2exec", bin_dir),
            (Reader, "reader", reader_bin),
            (Ours, "ours", bin_dir),
        )
        for cls, name, tool_bin in kinds:
            ports = context.Queue()
            server = context.Process(target=serve, args=(ports, feeds), daemon=True)
            server.start()
            servers.append(server)
            tool = cls(name=name, port=ports.get(timeout=30), feeds=feeds, work=work / name, bin_dir=tool_bin)
            (tool.work / "home").mkdir(parents=True)
            tool.env = peer_env(tool.work / "home")
            tools.append(tool)
        for tool in tools:
            if isinstance(tool, Ours):
                tool.concurrency = concurrency
                tool.exclude = frozenset(s.pid for s in servers if s.pid is not None)
            await tool.setup()
        print(f"{feeds} feeds; state in {work}; peers: {versions}", flush=True)
        async with aiohttp.ClientSession() as session:
            for tool in tools:
                await control(session, tool, "GET", "/stats")  # drop the set-up's requests
            for round_ in range(warm + 1):
                if round_:
                    for tool in tools:
                        await control(session, tool, "POST", f"/change?share={SHARE}&seed={round_}")
                order = tools[round_ % len(tools) :] + tools[: round_ % len(tools)]
                for tool in order:
                    wall, cpu, new = await tool.cycle()
                    stats = await control(session, tool, "GET", "/stats")
                    tool.cycles.append(Cycle(wall, cpu, stats["200"], stats["304"], stats["conditional"], new))
                    label = "cold" if round_ == 0 else f"warm {round_}"
                    # A peer exits 0 when feeds fail (feed2exec even when none could be fetched): count the answers.
                    missing = feeds - stats["200"] - stats["304"]
                    print(
                        f"{label:>7} {tool.name:<10} {wall:7.2f} s wall, {cpu / feeds * 1000:7.2f} ms CPU per feed "
                        f"({stats['200']} × 200, {stats['304']} × 304, {new} new items)"
                        + (f"  !! {missing} feeds not fetched" if missing else ""),
                        flush=True,
                    )
        report(tools, versions)
    finally:
        for tool in tools:
            if (isinstance(tool, Ours) and hasattr(tool, "app")) or isinstance(tool, Reader):
                await tool.close()
        for server in servers:
            server.kill()
        if keep:
            print(f"state and peer logs kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--feeds", type=int, default=300)
    parser.add_argument("--warm", type=int, default=3, help="warm cycles after the cold one (default 3)")
    parser.add_argument("--concurrency", type=int, default=100, help="our fetch concurrency (default 100)")
    parser.add_argument("--keep", action="store_true", help="keep the tools' state and logs (a temporary folder)")
    args = parser.parse_args()
    asyncio.run(run(args.feeds, args.warm, args.concurrency, args.keep))


if __name__ == "__main__":
    main()
