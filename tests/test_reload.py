"""SIGHUP to a real ``monitor run``: a good new configuration replaces feeds, rules and changed sinks (an unchanged
sink keeps running); a broken configuration or rule file is reported with its path and line, and the daemon goes
on with the last good one."""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
from pathlib import Path

import pytest
import redis.asyncio as aioredis

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


async def hangup(proc: asyncio.subprocess.Process, log: Path, event: str, count: int) -> dict[str, object]:
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
