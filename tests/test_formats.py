"""Webhook body formats: golden files beside their input alerts, the services' limits, escaping and links.

Regenerate the golden files after an intended change with ``UPDATE_GOLDEN=1 pytest tests/test_formats.py`` and
read the diff.
"""

from __future__ import annotations

import io
import json
import os
import re
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from monitor.config import WebhookSink as WebhookConfig
from monitor.core.errors import ConfigError
from monitor.delivery.sinks import discord, slack, teams
from monitor.delivery.sinks.factory import build_sinks
from monitor.delivery.sinks.formats import FORMATS, render_payload
from monitor.delivery.sinks.view import AlertView, clip, safe_url
from monitor.delivery.sinks.webhook import WebhookSink
from tests.support.payloads import strings
from tests.support.webhook_receiver import WebhookReceiver

GOLDEN = Path(__file__).parent / "data" / "golden"
INPUTS = ("alert", "escalation")


def load(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((GOLDEN / f"{name}.json").read_text(encoding="utf-8"))
    return loaded


def huge_alert() -> dict[str, Any]:
    """Everything too long: the limits must hold and the JSON stay valid."""
    alert = load("alert")
    alert["title"] = "Drones & <rockets> hit base " * 40
    alert["summary"] = "A long & <detailed> account. " * 600
    alert["evidence"] = [f"phrase {i} & more" for i in range(200)]
    alert["changes"] = ["x" * 500] * 10
    alert["articles"] = [
        {"url": f"https://example.org/{i}?a=1&b=2", "title": f"Source <{i}> & " * 20, "source": f"feed-{i}"}
        for i in range(300)
    ]
    return alert


# -- golden files ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", sorted(FORMATS))
@pytest.mark.parametrize("name", INPUTS)
def test_golden(name: str, fmt: str) -> None:
    produced = render_payload(fmt, load(name))
    path = GOLDEN / f"{name}.{fmt}.json"
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(json.dumps(produced, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    assert produced == json.loads(path.read_text(encoding="utf-8"))


def test_generic_is_the_contract_unchanged() -> None:
    alert = load("alert")
    assert render_payload("generic", alert) == alert


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown webhook format"):
        render_payload("irc", load("alert"))


# -- links -------------------------------------------------------------------------------------------------


def test_safe_url_keeps_only_http_links() -> None:
    assert safe_url("https://example.org/a?b=1&c=2") == "https://example.org/a?b=1&c=2"
    assert safe_url("HTTP://example.org/") == "HTTP://example.org/"
    assert safe_url("https://example.org/A_(b) c|d") == "https://example.org/A_%28b%29%20c%7Cd"
    for bad in (
        "javascript:alert(1)",
        "JaVaScRiPt:alert(1)",
        "data:text/html,x",
        "vbscript:x",
        "ftp://x.org/",
        "//example.org/a",
        "/relative",
        "https://",
        "https://exa\nmple.org/",
        None,
        42,
    ):
        assert safe_url(bad) is None, bad


@pytest.mark.parametrize("fmt", ["slack", "discord", "teams"])
@pytest.mark.parametrize("name", INPUTS)
def test_only_http_links_are_rendered(name: str, fmt: str) -> None:
    payload = render_payload(fmt, load(name))
    text = "\n".join(strings(payload))
    assert "javascript:" not in text.lower() and "data:text" not in text.lower()
    for url in re.findall(r"[a-z][a-z0-9+.-]*://", text, re.IGNORECASE):
        assert url.lower() in ("http://", "https://"), url


# -- Slack -------------------------------------------------------------------------------------------------


def test_slack_escapes_every_text_and_keeps_only_its_own_links() -> None:
    payload = render_payload("slack", load("alert"))
    for text in strings(payload):
        # Outside the <url|label> links built here, no raw angle bracket survives: no <!channel>, no <@U...>.
        outside = re.sub(r"<https?://[^|>\s]+\|[^>]*>", "", text)
        assert "<" not in outside and ">" not in outside, text
        assert not re.search(r"&(?!amp;|lt;|gt;)", outside), text
    assert "&lt;!channel&gt;" in payload["text"]
    assert "\r" not in payload["text"] and "\n" not in payload["blocks"][0]["text"]["text"]


def test_slack_respects_its_limits() -> None:
    payload = slack.slack_payload(huge_alert())
    blocks = payload["blocks"]
    assert len(blocks) <= slack.MAX_BLOCKS
    assert blocks[0]["type"] == "header" and len(blocks[0]["text"]["text"]) <= slack.HEADER_LIMIT
    for block in blocks:
        for text in strings(block):
            assert len(text) <= slack.SECTION_LIMIT
    assert len(payload["text"]) <= slack.SECTION_LIMIT
    sources = next(b for b in blocks if b.get("text", {}).get("text", "").startswith("*Sources*"))
    assert sources["text"]["text"].rstrip("_").endswith("more")  # cut between whole links, and says so
    assert sources["text"]["text"].count("<https://") == sources["text"]["text"].count(">")


# -- Discord -----------------------------------------------------------------------------------------------


def test_discord_never_pings_and_escapes_markdown() -> None:
    payload = render_payload("discord", load("alert"))
    assert payload["allowed_mentions"] == {"parse": []}
    embed = payload["embeds"][0]
    assert "\\@everyone" in payload["content"] and "\\<!channel\\>" in payload["content"]
    # The headline's Markdown link is inert: its brackets are escaped.
    assert "\\[bbc.co.uk\\](https://evil.example/phish)" in embed["title"]
    assert embed["url"] == "https://example.org/news/drones?id=1&src=rss"
    assert embed["color"] == int("c2410c", 16)


def test_discord_respects_its_limits() -> None:
    payload = discord.discord_payload(huge_alert())
    [embed] = payload["embeds"]
    assert len(embed["title"]) <= discord.TITLE_LIMIT
    assert len(embed["description"]) <= discord.DESCRIPTION_LIMIT
    assert len(embed["fields"]) <= discord.MAX_FIELDS
    assert all(len(f["value"]) <= discord.FIELD_LIMIT and len(f["name"]) <= 256 for f in embed["fields"])
    assert discord.embed_size(embed) <= discord.EMBED_TOTAL_LIMIT
    assert len(payload["content"]) <= discord.CONTENT_LIMIT


@pytest.mark.parametrize("severity", [1, 2, 3, 4, 5])
def test_discord_colour_follows_severity(severity: int) -> None:
    embed = render_payload("discord", {**load("alert"), "severity": severity})["embeds"][0]
    assert f"#{embed['color']:06x}" == AlertView.of({"severity": severity}).colour


# -- Teams -------------------------------------------------------------------------------------------------


def test_teams_is_an_adaptive_card_message_with_payload_text_never_parsed() -> None:
    payload = render_payload("teams", load("alert"))
    assert payload["type"] == "message"
    [attachment] = payload["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    # Markdown-parsed elements (TextBlock, FactSet) hold only strings built by the monitor.
    markdown = [b["text"] for b in card["body"] if b["type"] == "TextBlock"]
    markdown += [f["value"] for b in card["body"] if b["type"] == "FactSet" for f in b["facts"]]
    assert not any("evil" in t or "<" in t for t in markdown)
    runs = [i["text"] for b in card["body"] if b["type"] == "RichTextBlock" for i in b["inlines"]]
    assert any("[bbc.co.uk](https://evil.example/phish)" in r for r in runs)  # shown as text, inert
    links = [
        i["selectAction"]["url"]
        for b in card["body"]
        if b["type"] == "RichTextBlock"
        for i in b["inlines"]
        if "selectAction" in i
    ]
    assert links == [
        "https://example.org/news/drones?id=1&src=rss",
        "https://example.org/wiki/Ain_al-Asad_%28base%29%20page",
    ]
    assert card["actions"][0]["url"] == links[0]


def test_teams_stays_under_the_size_limit() -> None:
    payload = teams.teams_payload(huge_alert())
    size = len(json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
    assert size <= teams.MAX_BYTES
    body = payload["attachments"][0]["content"]["body"]
    assert body[1]["inlines"][0]["text"].endswith("…") and len(body[1]["inlines"][0]["text"]) <= teams.TITLE_LIMIT


# -- helpers and tolerance ---------------------------------------------------------------------------------


def test_clip_never_splits_an_escape() -> None:
    clipped = clip("a&b" * 10, 12, slack.escape)
    assert len(clipped) <= 12 and clipped.endswith("…")
    assert not re.search(r"&(?!amp;)", clipped)
    assert clip("short", 10, slack.escape) == "short"
    assert discord.escape("-x *y* [z](w) #1\n# h") == "\\-x \\*y\\* \\[z\\](w) #1\n\\# h"


@pytest.mark.parametrize("fmt", ["slack", "discord", "teams"])
def test_a_bare_or_mistyped_alert_still_renders(fmt: str) -> None:
    for alert in ({"id": "x"}, {"id": 1, "severity": "high", "articles": "nope", "evidence": [None, 3]}):
        payload = render_payload(fmt, alert)
        json.dumps(payload)
        assert "(no title)" in json.dumps(payload, ensure_ascii=False)


# -- the sink ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["slack", "discord", "teams"])
async def test_chat_formats_post_unsigned_service_json(fmt: str) -> None:
    async with aiohttp.ClientSession() as session, WebhookReceiver(None) as rx:
        await WebhookSink("chat", rx.url, session, fmt=fmt).send(load("alert"))
        [request] = rx.requests
    assert "webhook-signature" not in request.headers and "webhook-id" not in request.headers
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.body) == render_payload(fmt, load("alert"))


async def test_a_secret_with_a_chat_format_is_a_config_error() -> None:
    entry = WebhookConfig.model_validate(
        {"type": "webhook", "url": "https://hooks.slack.com/services/T/B/X", "format": "slack", "secret": "s3cret"}
    )
    async with aiohttp.ClientSession() as session:
        with pytest.raises(ConfigError, match=r"alerts\.sinks\[0\]\.secret: slack webhooks cannot verify"):
            build_sinks([entry], session, io.StringIO())
        [sink] = build_sinks([entry.model_copy(update={"secret": None})], session, io.StringIO())
    assert isinstance(sink, WebhookSink) and sink.format == "slack"
