"""A stream of real-style articles for the failover tests (cluster and sentinel): the labelled reporting of
``tests/data/devset2`` about six real events, with hard negatives, served as one RSS feed per outlet and revealed
step by step to a ``monitor run`` daemon; and a watcher that polls the daemon's ``/readyz`` all along.

stream = ArticleStream(feeds); stream.reveal(2, of=6)          # the first third of the articles, by date
watch = ReadyWatch(port); watch.start(); ...; await watch.stop()
stream.events_alerted(rx.alerts)                                # the real events some alert carried
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from datetime import datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import aiohttp

from tests.support.feedserver import FeedServer

__all__ = ["EVENTS", "ArticleStream", "ReadyWatch", "events_by_article", "write_config"]

ROOT = Path(__file__).resolve().parents[2]
DEVSET = ROOT / "tests" / "data" / "devset2"
#: Six events reported by several outlets over a few days each; their reports share vocabulary and dates.
EVENTS = frozenset(
    {
        "2020-01-03-soleimani-muhandis-killed",
        "2020-01-08-iran-missiles-ain-al-asad-erbil",
        "2020-03-14-camp-taji-second-attack",
        "2023-12-26-us-strikes-kataib-hezbollah-hilla",
        "2020-01-03-americans-told-to-leave-iraq",
        "2025-09-30-pentagon-reduces-iraq-mission",
    }
)
SECRET = "whsec_" + "ZmFpbG92ZXItc3RyZWFtLXRlc3Qtc2VjcmV0LTAx"


def _rows() -> list[dict[str, Any]]:
    rows = [
        json.loads(line)
        for f in sorted(DEVSET.glob("articles_[abcd].jsonl"))
        for line in f.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    chosen = [r for r in rows if r["event_key"] in EVENTS]
    chosen += [r for r in rows if not r["label"] and r["published"][:4] in ("2020", "2023")][:6]
    return sorted(chosen, key=lambda r: (r["published"], r["id"]))


def _item(row: dict[str, Any]) -> str:
    published = format_datetime(datetime.fromisoformat(row["published"].replace("Z", "+00:00")))
    return (
        f"<item><title>{escape(row['title'])}</title><link>{escape(row['url'])}</link>"
        f"<guid isPermaLink='true'>{escape(row['url'])}</guid><pubDate>{published}</pubDate>"
        f"<description>{escape(row['summary'] + ' ' + row['content'])}</description></item>"
    )


class ArticleStream:
    def __init__(self, feeds: FeedServer) -> None:
        self.feeds = feeds
        self.rows = _rows()
        self.sources = sorted({r["source"] for r in self.rows})
        self.reveal(0, of=1)

    def reveal(self, step: int, *, of: int) -> None:
        """Serve the first ``step / of`` of the articles (by publication date), newest first in each feed."""
        visible = self.rows[: round(len(self.rows) * step / of)]
        for source in self.sources:
            items = "".join(_item(r) for r in reversed(visible) if r["source"] == source)
            self.feeds.set_feed(
                f"/{source}.xml",
                (
                    "<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel><title>t</title>"
                    f"<link>https://outlet.test/</link><description>t</description>{items}</channel></rss>"
                ).encode(),
            )

    def events_alerted(self, alerts: list[dict[str, Any]]) -> set[str]:
        """The real events (``event_key``) one of whose articles some alert carried."""
        by_url = {r["url"]: r["event_key"] for r in self.rows if r["label"]}
        return {by_url[a["url"]] for alert in alerts for a in alert.get("articles", []) if a["url"] in by_url}

    def negatives(self) -> set[str]:
        return {r["url"] for r in self.rows if not r["label"]}

    async def until_all_alerted(self, alerts: list[dict[str, Any]], timeout_s: float = 60) -> None:
        """Wait (at most ``timeout_s``) until every real event has an alert among ``alerts``."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.events_alerted(alerts) == EVENTS:
                return
            await asyncio.sleep(0.2)


def events_by_article(alerts: list[dict[str, Any]]) -> dict[str, set[str]]:
    """For each article URL, the events whose alerts carried it (one each, unless a lost claim made a second)."""
    events_of: dict[str, set[str]] = {}
    for alert in alerts:
        for article in alert.get("articles", []):
            events_of.setdefault(article["url"], set()).add(alert["event_id"])
    return events_of


def write_config(path: Path, feeds: FeedServer, hook_url: str, redis: dict[str, Any]) -> Path:
    """A daemon config: every outlet polled each second, one webhook sink, metrics on any free port."""
    lines = "\n".join(
        f'  - {{name: {s}, url: "{feeds.url(f"/{s}.xml")}", interval_s: 1, adaptive: false}}'
        for s in sorted({r["source"] for r in _rows()})
    )
    path.write_text(f"""\
rules: [{ROOT / "rules"}]
redis: {json.dumps({**redis, "socket_timeout_s": 2, "connect_timeout_s": 1})}
fetch: {{allow_private_networks: true, timeout_s: 5}}
feeds:
{lines}
alerts:
  min_severity: 1
  max_age_hours: 0
  sinks:
    - {{type: webhook, name: hook, url: "{hook_url}", secret: "{SECRET}"}}
metrics: {{port: 0}}
log: {{format: json}}
""")
    return path


class ReadyWatch:
    """GET ``/readyz`` every ``every_s`` and keep (monotonic time, status) of each answer."""

    def __init__(self, port: int, every_s: float = 0.1) -> None:
        self.url = f"http://127.0.0.1:{port}/readyz"
        self.every_s = every_s
        self.seen: list[tuple[float, int]] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3)) as session:
            while True:
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with session.get(self.url) as reply:
                        self.seen.append((time.monotonic(), reply.status))
                await asyncio.sleep(self.every_s)

    async def until(self, status: int, *, after: float, timeout_s: float) -> float:
        """The first time at or after ``after`` that ``/readyz`` answered ``status``."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for moment, answered in self.seen:
                if moment >= after and answered == status:
                    return moment
            await asyncio.sleep(0.05)
        raise AssertionError(f"/readyz never answered {status} within {timeout_s:g}s; saw {self.seen[-20:]}")
