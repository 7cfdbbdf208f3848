"""The dashboard under test: the daemon's real HTTP server (``HealthServer``) with the dashboard installed, over an app
wired by ``build_app`` on the suite's Redis, and a month of deterministic news fed through the real pipeline.

The articles are written for this project; times are fixed (a fake clock), so pages and screenshots come out the
same on every run.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from monitor.config import Config
from monitor.core.models import Article, PollResult
from monitor.detection.rulefile import load_rules
from monitor.service.health import HealthServer
from monitor.service.metrics import Metrics
from monitor.service.root import App, build_app, dashboard_installer
from tests.support.alerts import FakeClock

ROOT = Path(__file__).resolve().parents[2]
RULES = load_rules([ROOT / "rules"])
#: The clock at the end of the seeded month.
END = datetime(2026, 1, 30, 12, 0, tzinfo=UTC)
TOKEN = "desk-token-for-tests-0123456789"


@dataclass(frozen=True)
class Story:
    days_ago: float
    feed: str
    title: str
    summary: str
    language: str = "en"


#: A month of reports, oldest first (our own wording). Two outlets report some events, minutes apart.
MONTH = [
    Story(27, "wire", "Rockets hit Ain al-Asad air base hosting US troops",
          "Several rockets struck the base in Anbar overnight; the coalition said nobody was hurt."),
    Story(26.99, "regional", "Ain al-Asad air base hit by rockets overnight, coalition says",
          "The coalition said rockets landed inside the Anbar base hosting US troops."),
    Story(21, "regional", "Iraqi parliament votes to expel US troops",
          "Lawmakers passed a resolution asking the government to end the presence of foreign forces in Iraq."),
    Story(14, "wire", "Drone attack targets US forces at Erbil air base",
          "An explosive-laden drone was shot down near the airport base in Erbil that hosts US troops."),
    Story(6, "wire", "US drone strike in Baghdad kills Kataib Hezbollah commander",
          "The Pentagon said a strike on a car in eastern Baghdad killed a senior commander of the militia."),
    Story(5.98, "regional", "US strike on car in Baghdad kills militia commander, officials say",
          "Iraqi security officials said a US drone hit a vehicle in eastern Baghdad, killing a commander."),
    Story(2, "wire", "Protesters storm US embassy compound in Baghdad",
          "Supporters of Iran-backed militias set fire to a reception area and besieged the embassy in Baghdad."),
    Story(0.5, "regional", "State Department orders non-emergency staff to leave US embassy in Baghdad",
          "Americans were told not to travel to Iraq as the embassy moved to ordered departure.", "ar"),
]  # fmt: skip

#: A later report on the embassy attack with a casualty figure: a revision of that event.
REVISION = Story(
    0,
    "regional",
    "Three guards wounded as protesters storm US embassy compound in Baghdad",
    "Three guards were wounded when supporters of Iran-backed militias stormed the embassy in Baghdad.",
)
#: A headline a hostile feed might send: it must show as text, and no script of it may run.
XSS = Story(
    0,
    "wire",
    'Rockets hit Victory base near Baghdad airport <img src=x onerror="window.__pwned=1">'
    "<script>window.__pwned=2</script>",
    "Rockets struck Victory base near Baghdad airport where US troops are stationed; no one was hurt.",
)


def article(story: Story, now: datetime) -> Article:
    guid = hashlib.sha1(story.title.encode()).hexdigest()[:16]
    return Article(
        id=f"{story.feed}:{guid}",
        feed=story.feed,
        url=f"https://{story.feed}.example.org/{guid}",
        guid=guid,
        title=story.title,
        summary=story.summary,
        content="",
        published=now,
        fetched=now,
        language=story.language,
    )


def config(*, token: str | None = None, **changes: Any) -> Config:
    data: dict[str, Any] = {
        "feeds": [
            {"name": "wire", "url": "https://wire.example.org/rss.xml"},
            {"name": "regional", "url": "https://regional.example.org/rss.xml"},
        ],
        "alerts": {"sinks": [{"type": "console"}]},
        "metrics": {"host": "127.0.0.1", "port": 0},
        "web": {"token": token} if token else {},
        **changes,
    }
    return Config.model_validate(data)


@dataclass
class Dashboard:
    app: App
    clock: FakeClock
    server: HealthServer

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"

    async def feed(self, story: Story) -> None:
        """Let the pipeline read one article at the clock's time."""
        await self.app.processor.process([article(story, self.clock.now())])

    async def seed_month(self) -> None:
        """The month of ``MONTH``: the clock walks through it, the escalation job runs every six hours."""
        start = END - timedelta(days=30)
        stories = iter(MONTH)
        story = next(stories, None)
        moment = start
        while moment <= END:
            self.clock.moment = moment
            while story is not None and END - timedelta(days=story.days_ago) <= moment:
                self.clock.moment = END - timedelta(days=story.days_ago)
                await self.feed(story)
                story = next(stories, None)
            self.clock.moment = moment
            await self.app.refresh_escalation()  # which records a sample of the index
            moment += timedelta(hours=6)
        self.clock.moment = END
        await self.app.store.finish_poll(
            "wire", PollResult(END - timedelta(minutes=3), True, 200, 12, 0.21, interval_s=300)
        )
        await self.app.store.finish_poll(
            "regional", PollResult(END - timedelta(hours=2), True, 200, 9, 0.48, interval_s=600)
        )
        for minutes in (40, 30, 20):
            failure = PollResult(
                END - timedelta(minutes=minutes), False, 503, 0, 1.2, error="HTTP 503 Service Unavailable"
            )
            await self.app.store.finish_poll("regional", failure)


@asynccontextmanager
async def dashboard(redis: aioredis.Redis, *, token: str | None = None, **changes: Any) -> AsyncIterator[Dashboard]:
    clock = FakeClock(END - timedelta(days=30))
    app = await build_app(config(token=token, **changes), RULES, clock=clock, redis=redis, stdout=io.StringIO())
    await app.start()
    server = HealthServer(
        host="127.0.0.1",
        port=0,
        metrics=Metrics(),
        readiness=_ready,
        extend=dashboard_installer(app),
    )
    await server.start()
    try:
        yield Dashboard(app, clock, server)
    finally:
        await server.stop()
        await app.close()


async def _ready() -> str | None:
    return None
