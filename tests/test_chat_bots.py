"""Slack and Telegram bots that edit their messages, against loopback fakes that check the real APIs' request
shapes (``chat.postMessage`` / ``chat.update`` / ``thread_ts``; ``sendMessage`` / ``editMessageText`` /
``reply_parameters`` in HTML parse mode), through the real outbox on the real Redis. Tokens never reach a log
line or a dead letter."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
from structlog.testing import capture_logs

from monitor.delivery.sinks.slack_bot import SlackBotSink
from monitor.delivery.sinks.telegram import telegram_text
from monitor.delivery.sinks.telegram_bot import TelegramSink
from monitor.storage.messages import MessageStore
from tests.support.alerts import HOSTILE_TITLE, escalation_alert, event_alert
from tests.support.chat_fakes import SLACK_TOKEN, TELEGRAM_TOKEN, ChatFakes
from tests.test_chat_discord import KEYS, deliver, revisions


@pytest.fixture
async def fake() -> AsyncIterator[ChatFakes]:
    async with ChatFakes() as server:
        yield server


def slack(fake: ChatFakes, redis: aioredis.Redis, session: aiohttp.ClientSession, token: str = SLACK_TOKEN) -> Any:
    return SlackBotSink("slack", token, "#alerts", session, MessageStore(redis, KEYS), api_url=fake.api_url)


def telegram(
    fake: ChatFakes, redis: aioredis.Redis, session: aiohttp.ClientSession, token: str = TELEGRAM_TOKEN
) -> Any:
    return TelegramSink("tg", token, -100123, session, MessageStore(redis, KEYS), api_url=fake.telegram_url)


async def test_slack_posts_once_then_updates_and_replies_in_the_thread(
    redis: aioredis.Redis, session: aiohttp.ClientSession, fake: ChatFakes
) -> None:
    sink = slack(fake, redis, session)
    for alert in revisions(1, 3):
        assert await deliver(redis, sink, alert) == 1
    assert [c.api for c in fake.calls] == [
        "slack.chat.postMessage",
        "slack.chat.update",
        "slack.chat.postMessage",
        "slack.chat.update",
        "slack.chat.postMessage",
    ]
    [(ts, message)] = fake.slack_messages.items()
    assert message["channel"] == "C0CHANNEL" and "outlet-2" in str(message["blocks"])
    assert [r["thread_ts"] for r in fake.slack_replies] == [ts, ts]
    assert fake.slack_replies[-1]["text"].startswith("Update 3")


async def test_slack_rate_limit_and_a_deleted_message(
    redis: aioredis.Redis, session: aiohttp.ClientSession, fake: ChatFakes
) -> None:
    sink = slack(fake, redis, session)
    first, second = revisions(2, 2)
    fake.fail_next(429)
    assert await deliver(redis, sink, first) == 1
    posts = fake.of("slack.chat.postMessage")
    assert [c.status for c in posts] == [429, 200] and posts[1].at - posts[0].at >= 0.95  # Retry-After: 1
    fake.delete(next(iter(fake.slack_messages)))
    assert await deliver(redis, sink, second) == 1
    assert [c.api for c in fake.calls[2:]] == ["slack.chat.update", "slack.chat.postMessage"]
    assert len(fake.slack_messages) == 1 and not fake.slack_replies  # posted anew, whole, not as a reply


async def test_slack_bad_token_disables_the_sink_without_logging_it(
    redis: aioredis.Redis, session: aiohttp.ClientSession, fake: ChatFakes
) -> None:
    with capture_logs() as logs:
        sink = slack(fake, redis, session, token="xoxb-wrong-s3cr3t")
        await deliver(redis, sink, event_alert(1), event_alert(2), concurrency=1, max_held=1, seconds=3)
    dead: Any = await redis.xrange(KEYS.dead)
    assert len(dead) == 2 and b"invalid_auth" in dead[0][1][b"reason"]
    assert len(fake.calls) == 1 and any(e["event"] == "sink_disabled" for e in logs)
    assert "s3cr3t" not in repr(logs) + repr(dead) + repr(sink)


async def test_telegram_sends_once_then_edits_and_replies(
    redis: aioredis.Redis, session: aiohttp.ClientSession, fake: ChatFakes
) -> None:
    sink = telegram(fake, redis, session)
    for alert in revisions(3, 3):
        assert await deliver(redis, sink, alert) == 1
    assert [c.api for c in fake.calls] == [
        "telegram.sendMessage",
        "telegram.editMessageText",
        "telegram.sendMessage",
        "telegram.editMessageText",
        "telegram.sendMessage",
    ]
    [(message_id, message)] = fake.telegram_messages.items()
    assert "outlet-2" in message["text"] and message["chat_id"] == -100123
    assert [r["reply_parameters"]["message_id"] for r in fake.telegram_replies] == [message_id, message_id]


async def test_telegram_escapes_every_value() -> None:
    text = telegram_text(event_alert(1, title=HOSTILE_TITLE, summary="a < b & c > d"))
    assert "<script>" not in text and "&lt;script&gt;" in text and "a &lt; b &amp; c &gt; d" in text
    assert '<a href="https://example.org/1/a">' in text  # only the tags built here are markup


async def test_telegram_retry_after_a_deleted_message_and_the_token_never_logged(
    redis: aioredis.Redis, session: aiohttp.ClientSession, fake: ChatFakes
) -> None:
    sink = telegram(fake, redis, session)
    first, second = revisions(4, 2)
    fake.fail_next(429)
    with capture_logs() as logs:
        assert await deliver(redis, sink, first) == 1
        sends = fake.of("telegram.sendMessage")
        assert [c.status for c in sends] == [429, 200] and sends[1].at - sends[0].at >= 0.95
        fake.delete(next(iter(fake.telegram_messages)))
        assert await deliver(redis, sink, second) == 1
        assert await deliver(redis, sink, escalation_alert(2, 3)) == 1
        bad = telegram(fake, redis, session, token="999:WRONG-s3cr3t")
        await deliver(redis, bad, event_alert(9), seconds=2)
    again = ["telegram.editMessageText", "telegram.sendMessage", "telegram.sendMessage"]
    assert [c.api for c in fake.calls[2:5]] == again
    assert len(fake.telegram_messages) == 2  # the re-posted event and the escalation notice
    dead: Any = await redis.xrange(KEYS.dead)
    assert len(dead) == 1 and b"Unauthorized" in dead[0][1][b"reason"]
    assert "s3cr3t" not in repr(logs) + repr(dead) + repr(bad)
