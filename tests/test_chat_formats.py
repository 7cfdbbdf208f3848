"""An event's status in every format (absent: a plain report, nothing said), the Telegram and Apprise texts, and
the previous revision's id that generic webhooks carry so a receiver can replace what it showed."""

from __future__ import annotations

import json

import pytest
import redis.asyncio as aioredis

from monitor.delivery.email.render import alert_email
from monitor.delivery.sinks.apprise_sink import apprise_text
from monitor.delivery.sinks.console import render_alert
from monitor.delivery.sinks.formats import render_payload
from monitor.delivery.sinks.telegram import MESSAGE_LIMIT, telegram_text
from tests.support.alerts import T0, event_alert
from tests.support.processing import default_processor
from tests.test_events import MATCHER, STRIKE, FakeClock, events_of

WORDS = {
    "claimed": "Claimed, not confirmed",
    "confirmed": "Confirmed",
    "denied": "Officially denied",
    "retracted": "Retracted by its source",
}


def rendered(alert: dict) -> dict[str, str]:
    """Every format's text of ``alert``."""
    mail = alert_email(alert, sender="m@example.org", to=["o@example.org"], date=T0)
    return {
        **{fmt: json.dumps(render_payload(fmt, alert), ensure_ascii=False) for fmt in ("slack", "discord", "teams")},
        "telegram": telegram_text(alert),
        "apprise": "\n".join(apprise_text(alert)),
        "console": render_alert(alert),
        "email": mail.get_body(("plain",)).get_content(),  # type: ignore[union-attr]
    }


@pytest.mark.parametrize("status", sorted(WORDS))
def test_every_format_says_the_status_plainly(status: str) -> None:
    alert = event_alert(1, revision=3, status=status, changes=[f"status: claimed -> {status}"])
    for fmt, text in rendered(alert).items():
        assert WORDS[status] in text, fmt


def test_no_status_says_nothing() -> None:
    for fmt, text in rendered(event_alert(1)).items():
        assert not any(words in text for words in WORDS.values()), fmt
    assert "Bogus" not in rendered(event_alert(1, status="Bogus <b>"))["telegram"]


def test_a_long_telegram_message_drops_sources_and_stays_valid() -> None:
    alert = event_alert(1, summary="word " * 2000)
    alert["articles"] = [
        {"url": f"https://example.org/{k}", "title": "x" * 300 + " & <b>", "source": f"s{k}"} for k in range(20)
    ]
    text = telegram_text(alert)
    assert len(text) <= MESSAGE_LIMIT and text.count("<a ") == text.count("</a>") and "more</i>" in text


async def test_revisions_name_the_revision_they_replace(redis: aioredis.Redis) -> None:
    clock = FakeClock()
    processor = default_processor(redis, MATCHER, clock)
    for article, later in zip(STRIKE, (20, 30, 0), strict=True):
        await processor.process([article])
        clock.advance(hours=later)
    alerts = await events_of(redis)
    assert [a.get("previous_id") for a in alerts] == [None, alerts[0]["id"], alerts[1]["id"]]
    assert render_payload("generic", alerts[1])["previous_id"] == alerts[0]["id"]
