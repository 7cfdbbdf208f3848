"""Digests on a fresh install start with the next window; a window missed while an existing install was down still
goes out. Through a real SMTP server on loopback and the real Redis, with the sender's clock set by the test, and
``monitor run`` as a real process on a fresh Redis."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from monitor.config import DigestConfig
from monitor.core.clock import utc_iso
from monitor.delivery.email.smtp import SmtpMailer
from monitor.digests.send import DigestSender
from monitor.digests.window import Window
from monitor.service.cron import fires
from monitor.storage.digests import DigestStore
from monitor.storage.keys import Keys
from tests.support.alerts import T0, FakeClock
from tests.support.daemons import start_daemon, stop_daemon
from tests.support.smtp_server import SmtpServer
from tests.test_digest import config_file

KEYS = Keys()  # the daemon uses the default namespace
DAILY = DigestConfig(name="daily", cron="0 7 * * *", to=["desk@example.org"])
DAY = timedelta(days=1)
#: The window the fire at T0 + 1 day closes.
WINDOW = Window(T0, T0 + DAY)


def sender(smtp: SmtpServer, redis: aioredis.Redis, now: datetime) -> DigestSender:
    mailer = SmtpMailer(smtp.config(), local_hostname="monitor.test")
    return DigestSender(
        DigestStore(redis, KEYS), mailer, sender="monitor@example.org", clock=FakeClock(now), fires=fires
    )


async def since(redis: aioredis.Redis, name: str = "daily") -> Any:
    return await redis.get(KEYS.digest_since(name))


async def test_a_fresh_install_starts_with_the_next_window(redis: aioredis.Redis) -> None:
    started = WINDOW.end + timedelta(minutes=1)  # just after a fire: the window it closed is before the install
    async with SmtpServer() as smtp:
        first = await sender(smtp, redis, started).send_scheduled(DAILY)
        later = await sender(smtp, redis, started + timedelta(hours=5)).send_scheduled(DAILY)  # a catch-up run
        assert smtp.messages == []
        next_fire = await sender(smtp, redis, WINDOW.end + DAY + timedelta(seconds=30)).send_scheduled(DAILY)
        [received] = smtp.messages
    assert (first.status, first.window) == ("none", WINDOW) and later.status == "none"
    assert await since(redis) == utc_iso(started).encode()
    assert await redis.exists(KEYS.digest_sent("daily", WINDOW.key)) == 0  # nothing claimed either
    assert next_fire.status == "sent" and next_fire.window == Window(WINDOW.end, WINDOW.end + DAY)
    assert received.message["Message-ID"] == "<digest.daily.20240105T070000Z@escalation-monitor>"


async def test_a_window_missed_while_the_install_was_down_is_still_sent(redis: aioredis.Redis) -> None:
    async with SmtpServer() as smtp:
        installed = await sender(smtp, redis, T0 + timedelta(hours=2)).send_scheduled(DAILY)
        # ... down from then until three hours after the next fire: the window it missed goes out on return.
        back = await sender(smtp, redis, WINDOW.end + timedelta(hours=3)).send_scheduled(DAILY)
        again = await sender(smtp, redis, WINDOW.end + timedelta(hours=3, minutes=1)).send_scheduled(DAILY)
        [received] = smtp.messages
    assert installed.status == "none"
    assert (back.status, back.window) == ("sent", WINDOW) and again.status == "claimed"
    assert received.message["Message-ID"] == "<digest.daily.20240104T070000Z@escalation-monitor>"


async def test_an_install_from_before_the_record_counts_as_scheduled_if_it_claimed_the_window_before(
    redis: aioredis.Redis,
) -> None:
    """Upgraded while down across a fire: it has no record yet, but its claim of the window before says it ran."""
    store = DigestStore(redis, KEYS)
    previous = await store.claim("daily", utc_iso(T0 - DAY), ttl_s=60)
    assert previous is not None
    await store.finish(previous, "sent 2024-01-04T07:00:05Z", timedelta(days=3))
    other = DAILY.model_copy(update={"name": "added"})  # a digest just added to the config: never claimed anything
    async with SmtpServer() as smtp:
        now = WINDOW.end + timedelta(hours=1)
        upgraded = await sender(smtp, redis, now).send_scheduled(DAILY)
        added = await sender(smtp, redis, now).send_scheduled(other)
        assert len(smtp.messages) == 1
    assert (upgraded.status, upgraded.window) == ("sent", WINDOW) and added.status == "none"
    assert await since(redis) == utc_iso(T0).encode()  # since the window before the latest closed
    assert await since(redis, "added") == utc_iso(now).encode()


@pytest.mark.timeout(60)
async def test_the_daemon_on_a_fresh_install_sends_no_digest_at_start(
    redis: aioredis.Redis, redis_url: str, tmp_path: Path
) -> None:
    """``monitor run`` on an empty Redis: its first catch-up records that the digests begin now and sends nothing
    (the daily and the weekly digest alike), where it used to mail the previous day's and week's at once."""
    async with SmtpServer() as smtp:
        config = config_file(tmp_path, redis_url, smtp.port)
        daemon = await start_daemon(config, tmp_path / "daemon.log", REDIS_URL=redis_url)
        try:
            deadline = time.monotonic() + 30
            # The catch-up job goes through the digests in order: once the weekly one is recorded, the daily one's
            # turn is over, and the weekly one's ends before the job does.
            while not (await since(redis) and await since(redis, "weekly")):
                assert time.monotonic() < deadline, (tmp_path / "daemon.log").read_text()
                await asyncio.sleep(0.1)
        finally:
            await stop_daemon(daemon, 15)
        assert smtp.messages == [] and smtp.attempts == []
    claims = [key async for key in redis.scan_iter(match=KEYS.digest_sent("*", "*"))]
    assert claims == []
    assert '"event": "monitor_stopped"' in (tmp_path / "daemon.log").read_text()
