"""Discord webhooks edited in place, against a loopback server that answers like Discord (message ids on
``?wait=true``, 404 with code 10008 for a deleted message, 429 with a JSON ``retry_after``), through the real
outbox on the real Redis."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
from structlog.testing import capture_logs

from monitor.core.errors import DeliveryError
from monitor.delivery.outbox import Deliverer
from monitor.delivery.sinks import Sink
from monitor.delivery.sinks.discord_messages import DiscordSink
from monitor.storage.keys import Keys
from monitor.storage.messages import MessageStore
from tests.support.alerts import FakeClock, escalation_alert, event_alert
from tests.support.chat_fakes import ChatFakes

KEYS = Keys("test")


@pytest.fixture
async def fake() -> AsyncIterator[ChatFakes]:
    async with ChatFakes() as server:
        yield server


async def deliver(redis: aioredis.Redis, sink: Sink, *alerts: dict[str, Any], seconds: float = 8, **kw: Any) -> int:
    """Queue ``alerts`` in the outbox and drain it into ``sink``; how many were delivered."""
    settings: dict[str, Any] = {
        "consumer": "c1",
        "clock": FakeClock(datetime(2024, 1, 4, tzinfo=UTC)),
        "max_attempts": 5,
        "max_retry_delay_s": 2.0,
        "base_delay_s": 0.02,
        "block_ms": 50,
        "shutdown_grace_s": 0.1,
        **kw,
    }
    d = Deliverer(redis, KEYS, sink, **settings)
    await d.ensure_group()
    for alert in alerts:
        await redis.xadd(KEYS.outbox, {b"alert": json.dumps(alert), b"id": alert["id"]})
    return await d.drain(seconds)


def discord(fake: ChatFakes, redis: aioredis.Redis, session: aiohttp.ClientSession) -> DiscordSink:
    return DiscordSink("discord", fake.discord_url, session, MessageStore(redis, KEYS), timeout_s=5)


def revisions(n: int, count: int) -> list[dict[str, Any]]:
    """Revisions 1..count of event ``n``, each with one more source than the one before."""
    alerts = []
    for revision in range(1, count + 1):
        alert = event_alert(n, revision=revision)
        alert["articles"] = [
            {"url": f"https://example.org/{n}/{k}", "title": f"Report {k}", "source": f"outlet-{k}"}
            for k in range(revision)
        ]
        alerts.append(alert)
    return alerts


async def test_one_message_per_event_and_each_revision_edits_it(
    redis: aioredis.Redis, session: aiohttp.ClientSession, fake: ChatFakes
) -> None:
    sink = discord(fake, redis, session)
    for alert in revisions(1, 3):  # one at a time, as they would arrive
        assert await deliver(redis, sink, alert) == 1
    [post] = fake.of("discord.post")
    assert post.query == {"wait": "true"}
    [message_id] = fake.discord_messages
    patches = fake.of("discord.patch")
    assert len(patches) == 2 and all(p.status == 200 for p in patches)
    final = fake.discord_messages[message_id]["embeds"][0]
    sources = next(f["value"] for f in final["fields"] if f["name"] == "Sources")
    assert all(f"outlet-{k}" in sources for k in range(3))
    assert final["footer"]["text"].startswith("Update 3")


async def test_revisions_queued_together_still_make_one_message(
    redis: aioredis.Redis, session: aiohttp.ClientSession, fake: ChatFakes
) -> None:
    # Several revisions in flight at once (concurrency 4): the lock per event keeps them to one post.
    assert await deliver(redis, discord(fake, redis, session), *revisions(2, 4), *revisions(3, 2)) == 6
    assert len(fake.of("discord.post")) == 2 and len(fake.discord_messages) == 2
    shown = sorted(m["embeds"][0]["footer"]["text"].split(" · ")[0] for m in fake.discord_messages.values())
    assert shown == ["Update 2", "Update 4"]  # each message shows its event's latest revision


async def test_an_older_revision_after_a_newer_one_changes_nothing(
    redis: aioredis.Redis, session: aiohttp.ClientSession, fake: ChatFakes
) -> None:
    first, second = revisions(4, 2)
    sink = discord(fake, redis, session)
    assert await deliver(redis, sink, second) == 1
    with capture_logs() as logs:
        assert await deliver(redis, sink, first) == 1  # a retry that lost the race: acknowledged, not sent
    assert len(fake.calls) == 1
    assert any(e["event"] == "chat_message_current" for e in logs)


async def test_a_deleted_message_is_posted_again_once_then_edited(
    redis: aioredis.Redis, session: aiohttp.ClientSession, fake: ChatFakes
) -> None:
    sink = discord(fake, redis, session)
    first, second, third = revisions(5, 3)
    await deliver(redis, sink, first)
    [original] = fake.discord_messages
    fake.delete(original)
    assert await deliver(redis, sink, second) == 1
    assert await deliver(redis, sink, third) == 1
    assert [c.api for c in fake.calls] == ["discord.post", "discord.patch", "discord.post", "discord.patch"]
    assert [c.status for c in fake.calls] == [200, 404, 200, 200]
    [replacement] = fake.discord_messages
    assert replacement != original and fake.calls[-1].body["embeds"][0]["footer"]["text"].startswith("Update 3")
    assert all(c.query == {"wait": "true"} for c in fake.of("discord.post"))


async def test_rate_limits_wait_the_json_retry_after(
    redis: aioredis.Redis, session: aiohttp.ClientSession, fake: ChatFakes
) -> None:
    sink = discord(fake, redis, session)
    first, second = revisions(6, 2)
    fake.fail_next(429)
    assert await deliver(redis, sink, first) == 1
    fake.fail_next(429)
    assert await deliver(redis, sink, second) == 1
    posts, patches = fake.of("discord.post"), fake.of("discord.patch")
    assert [c.status for c in posts] == [429, 200] and [c.status for c in patches] == [429, 200]
    assert posts[1].at - posts[0].at >= 0.29 and patches[1].at - patches[0].at >= 0.29
    assert len(fake.discord_messages) == 1 and await redis.xlen(KEYS.dead) == 0


async def test_escalation_notices_stay_plain_posts(
    redis: aioredis.Redis, session: aiohttp.ClientSession, fake: ChatFakes
) -> None:
    assert await deliver(redis, discord(fake, redis, session), escalation_alert(2, 3), escalation_alert(3, 4)) == 2
    assert [c.api for c in fake.calls] == ["discord.post", "discord.post"]
    assert all("wait" not in c.query for c in fake.calls)
    assert await redis.keys(f"{{{KEYS.namespace}}}:chat:*") == []


async def test_message_ids_live_in_the_namespace_slot_and_errors_hide_the_token(
    redis: aioredis.Redis, session: aiohttp.ClientSession, fake: ChatFakes
) -> None:
    sink = discord(fake, redis, session)
    await deliver(redis, sink, *revisions(7, 1))
    [key] = await redis.keys("*chat:*")
    assert key.decode() == "{test}:chat:discord:evt7"
    fake.down = True
    with capture_logs() as logs:
        await deliver(redis, sink, revisions(8, 1)[0], seconds=3, max_attempts=2)
    dead: Any = await redis.xrange(KEYS.dead)
    assert dead and all(b"s3cr3t" not in d[b"reason"] for _, d in dead)
    assert "s3cr3t" not in repr(logs) and "s3cr3t" not in repr(sink)


async def test_two_replicas_never_both_post_an_events_first_message(
    redis: aioredis.Redis, session: aiohttp.ClientSession, fake: ChatFakes
) -> None:
    first, second = discord(fake, redis, session), discord(fake, redis, session)  # two processes, one Redis
    alerts = revisions(9, 2)
    outcomes = await asyncio.gather(first.send(alerts[0]), second.send(alerts[1]), return_exceptions=True)
    assert len(fake.of("discord.post")) == 1
    refused = [o for o in outcomes if isinstance(o, DeliveryError)]
    assert len(refused) <= 1 and all(o.retry_after == 1.0 for o in refused)
    for sink, alert, outcome in zip((first, second), alerts, outcomes, strict=True):
        if outcome is not None:
            await sink.send(alert)  # the outbox's retry: it now edits (or finds the message current)
    assert len(fake.of("discord.post")) == 1 and len(fake.discord_messages) == 1
    [message] = fake.discord_messages.values()
    assert message["embeds"][0]["footer"]["text"].startswith("Update 2")


async def test_a_replica_that_looked_before_the_other_posted_does_not_post_again(
    redis: aioredis.Redis, session: aiohttp.ClientSession, fake: ChatFakes
) -> None:
    """The other replica looked (no message yet), then this one posted and let go of its claim: when the other
    takes the claim it finds the message and leaves it to its retry to edit."""
    first, second = discord(fake, redis, session), discord(fake, redis, session)
    alerts = revisions(9, 2)
    await first.send(alerts[0])
    store = MessageStore(redis, KEYS)
    with pytest.raises(DeliveryError) as refused:
        await second._first(store, alerts[1]["event_id"], alerts[1], 2)  # the step after its look found nothing
    assert refused.value.retry_after == 1.0 and len(fake.of("discord.post")) == 1
    await second.send(alerts[1])
    assert len(fake.of("discord.post")) == 1 and len(fake.of("discord.patch")) == 1
