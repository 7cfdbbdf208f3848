"""SIGHUP to a real ``monitor run``: a good new configuration replaces feeds, rules and changed sinks (an unchanged
sink keeps running); a broken configuration or rule file is reported with its path and line, and the daemon goes
on with the last good one."""

from __future__ import annotations

import asyncio
import io
import json
import shutil
import signal
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from structlog.testing import capture_logs

from monitor.config import Config
from monitor.core.clock import SystemClock
from monitor.core.errors import ConfigError, Problem
from monitor.detection.rulefile import RuleSet, load_rules
from monitor.service.daemon import Daemon
from monitor.service.reload import feed_changes, restart_needed, sink_signatures
from monitor.service.root import build_app
from tests.support.articles import ESCALATION, Item, rss
from tests.support.daemons import log_events, start_daemon, stop_daemon, wait_for_log
from tests.support.feedserver import FeedServer
from tests.support.webhook_receiver import WebhookReceiver

ROOT = Path(__file__).resolve().parents[1]
SECRET = "whsec_" + "cmVsb2FkLXRlc3Qtc2VjcmV0LTAxMjM0NTY3ODk="
SITE_FILTER = """\
# Site-local filter: no stories about Harir air base (the reload test lifts it).
filter:
  title: No Harir stories here
  rules: ["*"]
  detection:
    harir:
      keywords: [Harir]
    condition: harir
"""
HARIR_1 = Item(
    "harir-1",
    "Drone attack targets U.S. forces at Harir air base in northern Iraq",
    "Two explosive-laden drones were launched at Harir air base in the Kurdistan region, where U.S. troops are based.",
)
HARIR_2 = Item(
    "harir-2",
    "Rockets strike Harir air base hosting US troops in Iraq",
    "Several rockets landed inside the base overnight; the coalition said there were no casualties.",
)


def url_of(item: Item) -> str:
    return f"https://news.example.org/{item.guid}"


def config_text(tmp: Path, feeds: dict[str, str], hook_url: str) -> str:
    listed = "\n".join(f'  - {{name: {name}, url: "{url}", interval_s: 1}}' for name, url in feeds.items())
    return f"""\
rules: [{tmp / "rules"}]
fetch: {{allow_private_networks: true, timeout_s: 5}}
feeds:
{listed}
alerts:
  sinks:
    - {{type: webhook, name: hook, url: "{hook_url}", secret: "{SECRET}"}}
    - {{type: file, name: archive, path: "{tmp / "archive.jsonl"}"}}
metrics: {{port: 0}}
log: {{format: json}}
escalation: {{thresholds: [1000, 2000, 3000, 4000]}}
"""


async def hangup(proc: asyncio.subprocess.Process, log: Path, event: str, count: int) -> dict[str, Any]:
    proc.send_signal(signal.SIGHUP)
    return await wait_for_log(log, event, count=count, timeout_s=15)


def archived(tmp: Path) -> list[str]:
    lines = (tmp / "archive.jsonl").read_text().splitlines() if (tmp / "archive.jsonl").exists() else []
    return [json.loads(line)["articles"][0]["url"] for line in lines]


@pytest.mark.timeout(60)
async def test_sighup_applies_a_good_config_and_keeps_the_last_good_one_on_errors(
    redis: aioredis.Redis, redis_url: str, tmp_path: Path
) -> None:
    shutil.copytree(ROOT / "rules", tmp_path / "rules")
    (tmp_path / "rules" / "site.yaml").write_text(SITE_FILTER)
    config, log = tmp_path / "monitor.yaml", tmp_path / "daemon.log"
    async with FeedServer() as feeds, WebhookReceiver(SECRET) as rx1, WebhookReceiver(SECRET) as rx2:
        feeds.set_feed("/a.xml", rss(ESCALATION[:2]))
        feeds.set_feed("/b.xml", rss([HARIR_1]))
        feeds.set_feed("/c.xml", rss([HARIR_2, ESCALATION[2]]))
        config.write_text(config_text(tmp_path, {"a": feeds.url("/a.xml"), "b": feeds.url("/b.xml")}, rx1.url))
        daemon = await start_daemon(config, log, REDIS_URL=redis_url)
        try:
            await rx1.wait_for(2, timeout_s=20)
            await wait_for_log(log, "feed_fetched", feed="b")  # Harir filtered out: no alert for it

            # A good change: feed b out, feed c in, the Harir filter lifted, the webhook moved; the archive unchanged.
            config.write_text(config_text(tmp_path, {"a": feeds.url("/a.xml"), "c": feeds.url("/c.xml")}, rx2.url))
            (tmp_path / "rules" / "site.yaml").unlink()
            reloaded = await hangup(daemon, log, "config_reloaded", 1)
            assert reloaded["feeds_added"] == ["c"] and reloaded["feeds_removed"] == ["b"]
            assert reloaded["sinks_started"] == ["hook"] and reloaded["sinks_stopped"] == ["hook"]
            b_hits = feeds.hits("/b.xml")
            alerts = await rx2.wait_for(2, timeout_s=15)
            assert sorted(a["articles"][0]["url"] for a in alerts) == sorted(map(url_of, [HARIR_2, ESCALATION[2]]))

            # A broken config, then a broken rule file: reported with path:line, nothing changes.
            good = config.read_text()
            config.write_text(good.replace("interval_s: 1}", "interval_s: 1, intervall: 2}", 1))
            failed = await hangup(daemon, log, "config_reload_failed", 1)
            assert any(p.startswith(f"{config}:4: feeds[0].intervall: unknown key") for p in failed["problems"]), failed
            config.write_text(good)
            broken_rule = tmp_path / "rules" / "broken.yaml"
            broken_rule.write_text(
                "title: Broken\nid: broken\nstatus: stable\nlevel: high\ndetection:\n  condition: x\n"
            )
            failed = await hangup(daemon, log, "config_reload_failed", 2)
            assert any(p.startswith(f"{broken_rule}:") for p in failed["problems"]), failed
            assert all(":" in p.split(" ")[0] for p in failed["problems"])  # each one as path:line
            c_hits = feeds.hits("/c.xml")
            await asyncio.sleep(2.5)
            assert feeds.hits("/c.xml") > c_hits  # still running, on the last good feed list
            assert feeds.hits("/b.xml") <= b_hits + 1  # (a poll in flight at the reload may still land)
            assert daemon.returncode is None
        finally:
            code = await stop_daemon(daemon)
    assert code == 0
    assert url_of(HARIR_1) not in [a["articles"][0]["url"] for a in [*rx1.alerts, *rx2.alerts]]
    assert all(a["articles"][0]["url"] != url_of(HARIR_2) for a in rx1.alerts)  # the old hook got nothing new
    # The archive sink was never stopped and received everything, before and after the reload.
    assert sorted(archived(tmp_path)) == sorted(map(url_of, [*ESCALATION[:3], HARIR_2]))
    assert [e["sink"] for e in log_events(log) if e.get("event") == "sink_stopped"] == ["hook"]


#: Nine nested levels of ten aliases (10^10 nodes expanded) and an alias inside its own anchor.
ALIAS_BOMB = "".join(
    [f"l0: &l0 [{', '.join(['lol'] * 10)}]\n"]
    + [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]\n" for i in range(1, 10)]
)
RECURSIVE_ALIAS = "loop: &loop [x, *loop]\n"


def peak_memory_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


@pytest.mark.timeout(60)
async def test_sighup_with_an_alias_bomb_keeps_the_last_good_config(redis_url: str, tmp_path: Path) -> None:
    """A rule file or configuration with an alias bomb or a recursive alias, then ``systemctl reload``: the reload
    is refused at once with ``path:line``, in little memory, and the daemon goes on with what it had."""
    shutil.copytree(ROOT / "rules", tmp_path / "rules")
    config, log = tmp_path / "monitor.yaml", tmp_path / "daemon.log"
    async with FeedServer() as feeds:
        feeds.set_feed("/a.xml", rss(ESCALATION[:1]))
        feeds.set_feed("/b.xml", rss(ESCALATION[1:2]))
        good = (
            f"rules: [{tmp_path / 'rules'}]\nfetch: {{allow_private_networks: true, timeout_s: 5}}\n"
            f"feeds:\n  - {{name: a, url: '{feeds.url('/a.xml')}', interval_s: 1}}\n"
            f"alerts: {{sinks: [{{type: file, path: '{tmp_path / 'archive.jsonl'}'}}]}}\n"
            "metrics: {port: 0}\nlog: {format: json}\n"
        )
        config.write_text(good)
        daemon = await start_daemon(config, log, REDIS_URL=redis_url)
        try:
            await wait_for_log(log, "feed_fetched", feed="a")
            bomb = tmp_path / "rules" / "zz-bomb.yaml"
            bomb.write_text(ALIAS_BOMB)
            failed = await hangup(daemon, log, "config_reload_failed", 1)
            assert [p for p in failed["problems"] if p.startswith(f"{bomb}:")] == [
                f"{bomb}:4: aliases expand to more than 10000 nodes (an alias bomb?); write the values out"
            ], failed
            bomb.unlink()
            config.write_text(good + RECURSIVE_ALIAS)
            failed = await hangup(daemon, log, "config_reload_failed", 2)
            line = len(good.splitlines()) + 1
            assert failed["problems"] == [f"{config}:{line}: alias *loop is inside its own anchor (recursive)"], failed

            hits = feeds.hits("/a.xml")
            await asyncio.sleep(2.5)
            assert feeds.hits("/a.xml") > hits and daemon.returncode is None  # still polling, as configured
            assert peak_memory_mb(daemon.pid) < 250  # (it runs in about 100 MB)
            assert not [e for e in log_events(log) if e.get("event") == "config_reloaded"]

            # A good configuration after the bad ones is applied as usual.
            config.write_text(good.replace("feeds:\n", f"feeds:\n  - {{name: b, url: '{feeds.url('/b.xml')}'}}\n"))
            reloaded = await hangup(daemon, log, "config_reloaded", 1)
            assert reloaded["feeds_added"] == ["b"]
        finally:
            code = await stop_daemon(daemon)
    assert code == 0


def settings(**changes: Any) -> Config:
    base: dict[str, Any] = {
        "rules": [str(ROOT / "rules")],
        "feeds": [{"name": "a", "url": "http://127.0.0.1:9/a.xml"}, {"name": "b", "url": "http://127.0.0.1:9/b.xml"}],
        "fetch": {"allow_private_networks": True},
        "alerts": {
            "sinks": [
                {"type": "webhook", "name": "hook", "url": "http://127.0.0.1:9/hook", "secret": SECRET},
                {"type": "console", "min_severity": 4},
            ]
        },
        "metrics": {"enabled": False},
    }
    base.update(changes)
    return Config.model_validate(base)


async def test_reload_in_process_keeps_unchanged_sinks_and_refuses_bad_input(redis: aioredis.Redis) -> None:
    """The same, quicker and closer: which deliverer objects survive, what the scheduler holds, what a refused
    reload leaves behind (everything as it was)."""
    rules = load_rules([ROOT / "rules"])
    loaded: list[Config | ConfigError] = []

    def loader() -> tuple[Config, RuleSet]:
        item = loaded.pop(0)
        if isinstance(item, ConfigError):
            raise item
        return item, rules

    app = await build_app(settings(), rules, clock=SystemClock(), redis=redis, stdout=io.StringIO())
    daemon = Daemon(app, loader=loader)
    serving = asyncio.create_task(daemon.serve())
    try:
        for _ in range(500):  # serve() is under way once the scheduler runs
            if daemon.scheduler is not None and daemon.scheduler.running:
                break
            await asyncio.sleep(0.01)
        hook, console = app.deliverers
        before = app.feed("a")
        assert app.feed("b") is not None and before is not None and before.interval_s != 60
        moved = settings(
            feeds=[{"name": "a", "url": "http://127.0.0.1:9/a.xml", "interval_s": 60}],
            alerts={
                "min_severity": 4,
                "sinks": [
                    {"type": "webhook", "name": "hook", "url": "http://127.0.0.1:9/other", "secret": SECRET},
                    {"type": "console", "min_severity": 4},
                ],
            },
        )
        loaded.append(moved)
        assert await daemon.reload()
        assert app.deliverers[1] is console and app.deliverers[0] is not hook  # only the changed sink restarted
        assert app.matcher.min_severity == 4 and app.processor.matcher is app.matcher
        assert {j.id for j in daemon.scheduler.get_jobs()} >= {"a"} and daemon.scheduler.get_job("b") is None
        feed = app.feed("a")  # the feeds by name follow the reload
        assert app.feed("b") is None and feed is not None and feed.interval_s == 60

        loaded.append(ConfigError([Problem("monitor.yaml", 3, "feeds[0].url: bad")]))
        with capture_logs() as logs:
            assert not await daemon.reload()
        assert logs[-1]["event"] == "config_reload_failed"
        assert logs[-1]["problems"] == ["monitor.yaml:3: feeds[0].url: bad"]
        assert app.config is moved  # the last good one stays
    finally:
        daemon.should_exit.set()
        await asyncio.wait_for(serving, 15)
        await app.close()


async def test_a_reload_that_fails_unexpectedly_changes_nothing(redis: aioredis.Redis) -> None:
    """Whatever loading raises, not only a ``ConfigError`` (a bug, a ``RecursionError`` deep in a library), the
    reload is reported as failed and the daemon keeps its configuration: a SIGHUP never takes it down."""
    rules = load_rules([ROOT / "rules"])

    def loader() -> tuple[Config, RuleSet]:
        raise RecursionError("maximum recursion depth exceeded")

    config = settings()
    app = await build_app(config, rules, clock=SystemClock(), redis=redis, stdout=io.StringIO())
    try:
        with capture_logs() as logs:
            assert not await Daemon(app, loader=loader).reload()
        assert logs[-1]["event"] == "config_reload_failed"
        assert logs[-1]["problems"] == ["RecursionError: maximum recursion depth exceeded"]
        assert app.config is config and app.ruleset is rules
    finally:
        await app.close()


def test_what_a_reload_changes_and_what_waits_for_a_restart() -> None:
    old = settings()
    new = settings(
        feeds=[{"name": "a", "url": "http://127.0.0.1:9/a2.xml"}, {"name": "c", "url": "http://127.0.0.1:9/c.xml"}],
        metrics={"port": 9999},
        log={"level": "debug"},
    )
    changes = feed_changes(old, new)
    assert ([f.name for f in changes.added], [f.name for f in changes.removed], [f.name for f in changes.changed]) == (
        ["c"],
        ["b"],
        ["a"],
    )
    assert restart_needed(old, new) == ["metrics", "log"]
    assert sink_signatures(old) == sink_signatures(new)
    retried = settings(alerts={**old.alerts.model_dump(mode="json"), "max_attempts": 3})
    assert all(sink_signatures(old)[n] != s for n, s in sink_signatures(retried).items())  # every sink restarts
