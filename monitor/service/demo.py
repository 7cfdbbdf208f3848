"""``monitor demo``: the whole pipeline offline, in seconds, for a newcomer.

It serves the sample feeds shipped in ``monitor/demo_feeds/`` from a loopback HTTP server (dates moved to just now),
starts a loopback webhook receiver that checks every signature, and runs the real daemon against both with an
embedded Redis in a fresh folder. A breaking item is published to one feed a few seconds in, to show an alert
arriving live.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hmac
import re
import secrets
import sys
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from importlib import resources
from pathlib import Path

from aiohttp import web

from monitor.config import Config
from monitor.core.clock import SystemClock
from monitor.core.logs import configure_logging
from monitor.delivery.signing import sign
from monitor.detection.rulefile import load_rules
from monitor.service.bootstrap import open_redis
from monitor.service.daemon import Daemon
from monitor.service.root import build_app

__all__ = ["run_demo"]

BREAKING_AFTER_S = 8.0
_PUBDATE = re.compile(r"<pubDate>([^<]+)</pubDate>")
_ISODATE = re.compile(r"<(updated|published)>([^<]+)</\1>")
_BREAKING = """
    <item>
      <title>Drone attack targets U.S. forces at Harir air base in northern Iraq</title>
      <link>https://demo-wire.example/world/breaking/drone-attack-harir-air-base</link>
      <guid isPermaLink="false">demo-wire-breaking-0001</guid>
      <pubDate>{date}</pubDate>
      <description><![CDATA[<p>Two explosive-laden drones were launched at Harir air base in the Kurdistan
region, where U.S. troops are stationed; one was shot down and the other struck near a hangar, a coalition
official said. No group has yet claimed the attack.</p>]]></description>
    </item>
"""


def _shift_dates(xml: str, now: datetime) -> str:
    """Move every item date so the newest is five minutes old, keeping their order and spacing."""
    dates = [parsedate_to_datetime(m) for m in _PUBDATE.findall(xml)]
    dates += [datetime.fromisoformat(v.replace("Z", "+00:00")) for _, v in _ISODATE.findall(xml)]
    if not dates:
        return xml
    delta = now - timedelta(minutes=5) - max(dates)
    xml = _PUBDATE.sub(
        lambda m: f"<pubDate>{format_datetime(parsedate_to_datetime(m.group(1)) + delta)}</pubDate>", xml
    )
    return _ISODATE.sub(
        lambda m: "<{0}>{1}</{0}>".format(
            m.group(1), (datetime.fromisoformat(m.group(2).replace("Z", "+00:00")) + delta).isoformat()
        ),
        xml,
    )


class _DemoServer:
    """Loopback server for the feeds and for a webhook receiver that verifies Standard Webhooks signatures."""

    def __init__(self, secret: str) -> None:
        now = datetime.now(UTC)
        folder = resources.files("monitor.demo_feeds")
        self.feeds = {
            name: _shift_dates(folder.joinpath(name).read_text("utf-8"), now) for name in ("wire.xml", "regional.xml")
        }
        self.secret = secret
        self.received = 0
        self.runner: web.AppRunner | None = None
        self.base = ""

    async def _feed(self, request: web.Request) -> web.Response:
        body = self.feeds.get(request.match_info["name"])
        if body is None:
            raise web.HTTPNotFound()
        return web.Response(text=body, content_type="application/rss+xml")

    async def _webhook(self, request: web.Request) -> web.Response:
        body = await request.read()
        msg_id = request.headers.get("webhook-id", "")
        stamp = request.headers.get("webhook-timestamp", "0")
        expected = sign(self.secret, msg_id, int(stamp), body)
        given = request.headers.get("webhook-signature", "").split()
        valid = any(hmac.compare_digest(expected, g) for g in given)
        self.received += 1
        print(f"  -> webhook received alert {msg_id}: signature {'valid' if valid else 'INVALID'}", flush=True)
        return web.Response(status=204 if valid else 401)

    def publish_breaking(self) -> None:
        item = _BREAKING.format(date=format_datetime(datetime.now(UTC)))
        self.feeds["wire.xml"] = self.feeds["wire.xml"].replace("<item>", item.strip() + "\n    <item>", 1)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/feeds/{name}", self._feed)
        app.router.add_post("/hook", self._webhook)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = self.runner.addresses[0][1]
        self.base = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


def _demo_config(base: str, secret: str, data_dir: Path) -> Config:
    return Config.model_validate(
        {
            "redis": {"url": "embedded", "data_dir": str(data_dir)},
            "rules": [str(Path("rules"))] if Path("rules").is_dir() else [],
            "fetch": {"timeout_s": 10, "allow_private_networks": True},
            "feeds": [
                {"name": "demo-wire", "url": f"{base}/feeds/wire.xml", "interval_s": 2, "adaptive": False},
                {"name": "demo-regional", "url": f"{base}/feeds/regional.xml", "interval_s": 2, "adaptive": False},
            ],
            "alerts": {
                "min_severity": 3,
                "max_age_hours": 72,
                "sinks": [
                    {"type": "console"},
                    {"type": "webhook", "name": "demo-webhook", "url": f"{base}/hook", "secret": secret},
                ],
            },
            "log": {"level": "warning", "format": "console"},
            "source": "<demo>",
        }
    )


async def run_demo(*, data_dir: Path | None, seconds: float, env: Mapping[str, str]) -> int:
    del env  # the demo needs nothing from the environment
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    server = _DemoServer(secret)
    await server.start()
    with contextlib.ExitStack() as stack:
        folder = data_dir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="monitor-demo-")))
        config = _demo_config(server.base, secret, folder)
        if not config.rules:
            print("monitor demo: run it from the project folder (it needs rules/)", file=sys.stderr)
            return 2
        ruleset = load_rules(config.rules)
        configure_logging(level="warning", fmt="console")
        print(
            f"Demo: serving 2 sample feeds (22 items) on {server.base}; alerts print below and go to a local\n"
            f"signed webhook. A breaking item is published after {BREAKING_AFTER_S:.0f} s. Ctrl-C stops.\n",
            flush=True,
        )
        async with open_redis(config) as redis:
            app = await build_app(config, ruleset, clock=SystemClock(), redis=redis)
            daemon = Daemon(app)
            daemon.install_signal_handlers()
            loop = asyncio.get_running_loop()
            loop.call_later(BREAKING_AFTER_S, server.publish_breaking)
            if seconds > 0:
                loop.call_later(seconds, daemon.should_exit.set)
            try:
                await daemon.serve()
            finally:
                await app.close()
    await server.stop()
    print(
        f"\nDemo finished: {server.received} signed webhook deliveries received.\n"
        "To watch real feeds: edit config/monitor.yaml (feeds, sinks), check it with `monitor check`, "
        "then `monitor run`."
    )
    return 0
