"""``monitor run`` as a real process, fed a stream of real-style articles from three outlets on loopback, posting to
fakes that answer like Discord, Slack and Telegram: one message per event in each chat, every revision an edit of
that message, the final message carrying every source, and no Discord event post without ``wait=true``."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis.asyncio as aioredis

from tests.support.articles import Item, rss
from tests.support.chat_fakes import SLACK_TOKEN, TELEGRAM_TOKEN, ChatFakes
from tests.support.daemons import log_events, start_daemon, stop_daemon
from tests.support.feedserver import FeedServer

ROOT = Path(__file__).resolve().parents[1]

# One strike reported by three outlets in turn (the second adds a death toll, the third the Pentagon's
# confirmation), and an unrelated rocket attack on a base: two events, the first revised twice.
STRIKE = [
    Item(
        "wire-1",
        "US drone strike in Baghdad kills Kataib Hezbollah commander",
        "A car was hit by a US drone in the Jadriya district of Baghdad, killing a senior Kataib Hezbollah figure.",
    ),
    Item(
        "regional-1",
        "Three killed as American drone hits militia leader's car in Baghdad",
        "Iraqi security officials said three people, among them a Kataib Hezbollah commander, died in Jadriya.",
    ),
    Item(
        "outlet-1",
        "Pentagon confirms Baghdad strike on Kataib Hezbollah commander",
        "The Pentagon confirmed the strike in Baghdad; Iraq's government called it a breach of its sovereignty.",
    ),
]
ROCKETS = Item(
    "wire-2",
    "Rockets strike Ain al-Asad air base hosting US troops",
    "Several rockets landed inside the base in Anbar late on Tuesday; the coalition said there were no injuries.",
)


def write_config(tmp_path: Path, feeds: FeedServer, fake: ChatFakes) -> Path:
    path = tmp_path / "monitor.yaml"
    path.write_text(f"""\
rules: [{ROOT / "rules"}]
fetch: {{allow_private_networks: true, timeout_s: 5}}
feeds:
  - {{name: wire-a, url: "{feeds.url("/a.xml")}", interval_s: 1}}
  - {{name: regional-b, url: "{feeds.url("/b.xml")}", interval_s: 1}}
  - {{name: outlet-c, url: "{feeds.url("/c.xml")}", interval_s: 1}}
alerts:
  max_retry_delay_s: 2
  sinks:
    - {{type: webhook, format: discord, url: "{fake.discord_url}"}}
    - {{type: slack, token: "${{SLACK_BOT_TOKEN}}", channel: "#alerts", api_url: "{fake.api_url}"}}
    - {{type: telegram, token: "${{TELEGRAM_BOT_TOKEN}}", chat_id: -100123, api_url: "{fake.telegram_url}"}}
log: {{format: json}}
metrics: {{enabled: false}}
escalation: {{thresholds: [1000, 2000, 3000, 4000]}}
""")
    return path


def edits_done(fake: ChatFakes, revisions: int) -> bool:
    return (
        len([c for c in fake.of("discord.patch") if c.status == 200]) >= revisions
        and len([c for c in fake.of("slack.chat.update") if c.status == 200]) >= revisions
        and len([c for c in fake.of("telegram.editMessageText") if c.status == 200]) >= revisions
    )


@pytest.mark.timeout(120)
async def test_a_stream_of_articles_gives_one_edited_message_per_event(
    redis: aioredis.Redis, redis_url: str, tmp_path: Path
) -> None:
    log = tmp_path / "daemon.log"
    async with FeedServer() as feeds, ChatFakes() as fake:
        for path in ("/a.xml", "/b.xml", "/c.xml"):
            feeds.set_feed(path, rss([]))
        config = write_config(tmp_path, feeds, fake)
        env = {"REDIS_URL": redis_url, "SLACK_BOT_TOKEN": SLACK_TOKEN, "TELEGRAM_BOT_TOKEN": TELEGRAM_TOKEN}
        daemon = await start_daemon(config, log, **env)
        try:
            feeds.set_feed("/a.xml", rss([STRIKE[0]]))
            await fake.wait_for(lambda: len(fake.discord_messages) == 1 and len(fake.telegram_messages) == 1)
            feeds.set_feed("/b.xml", rss([STRIKE[1]]))
            await fake.wait_for(lambda: edits_done(fake, 1))
            feeds.set_feed("/a.xml", rss([STRIKE[0], ROCKETS]))
            feeds.set_feed("/c.xml", rss([STRIKE[2]]))
            await fake.wait_for(lambda: edits_done(fake, 2) and len(fake.discord_messages) == 2)
            await fake.wait_for(lambda: len(fake.slack_messages) == 2 and len(fake.telegram_messages) == 2)
        finally:
            assert await stop_daemon(daemon) == 0
    # Discord: two messages, each posted once with wait=true; the strike's revisions edited its message.
    posts = fake.of("discord.post")
    assert len(posts) == 2 and all(c.query == {"wait": "true"} for c in posts)
    strike = next(m for m in fake.discord_messages.values() if "Kataib" in m["embeds"][0]["title"])
    sources = next(f["value"] for f in strike["embeds"][0]["fields"] if f["name"] == "Sources")
    assert all(name in sources for name in ("wire-a", "regional-b", "outlet-c"))
    assert strike["embeds"][0]["footer"]["text"].startswith("Update 3")
    # Slack and Telegram: the same, with a note per revision under the message.
    assert len(fake.slack_messages) == 2 and len(fake.slack_replies) == 2
    assert len(fake.telegram_messages) == 2 and len(fake.telegram_replies) == 2
    strike_tg = next(m for m in fake.telegram_messages.values() if "Kataib" in m["text"])
    assert all(name in strike_tg["text"] for name in ("wire-a", "regional-b", "outlet-c"))
    # Nothing failed for good, and no token reached the log.
    assert await redis.xlen("{monitor}:dead") == 0
    text = log.read_text()
    assert SLACK_TOKEN not in text and TELEGRAM_TOKEN not in text and "T0KEN-discord" not in text
    assert not [e for e in log_events(log) if e.get("level") == "error"]
