"""Right-to-left text in every sink: an alert with an Arabic headline and a Persian summary rendered by the console,
Slack, Discord, Teams, alert e-mails and digests. Nothing is reordered or mirrored (the text comes out in the order
it went in), no bidi embedding, override or isolate control survives, the HTML marks article text ``dir="auto"``,
and where a chat format lays a line out left to right the RTL headline has a line of its own.

Regenerate the golden files after an intended change with ``UPDATE_GOLDEN=1 pytest tests/test_rtl.py``.
"""

from __future__ import annotations

import copy
import io
import json
import os
import re
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from lxml import html as lxml_html

from monitor.delivery.email.render import alert_email
from monitor.delivery.sinks.console import ConsoleSink, render_alert
from monitor.delivery.sinks.formats import render_payload
from monitor.delivery.sinks.view import AlertView, beside, is_rtl, one_line
from monitor.digests.build import LogEntry, build_digest
from monitor.digests.render import render_digest
from monitor.digests.window import Window
from monitor.parsing.telegram import parse_channel_page
from tests.support.payloads import strings
from tests.support.tgchannel import Post as ChannelPost
from tests.support.tgchannel import page

GOLDEN = Path(__file__).parent / "data" / "golden"
T0 = datetime(2024, 1, 28, 6, 0, tzinfo=UTC)
#: Embeddings, overrides and isolates: what must never reach a reader from untrusted text.
BIDI_CONTROLS = re.compile(r"[\u202a-\u202e\u2066-\u2069]")
CHAT_FORMATS = ("slack", "discord", "teams")


def rtl_alert() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((GOLDEN / "alert_rtl.json").read_text(encoding="utf-8"))
    return loaded


def hostile_rtl_alert() -> dict[str, Any]:
    """The same alert with bidi controls planted in every text a feed could carry."""
    alert = copy.deepcopy(rtl_alert())
    alert["title"] = "\u202e" + alert["title"] + "\u2066"
    alert["summary"] = "\u202b" + alert["summary"] + "\u202c\u2069"
    alert["evidence"] = ["\u2067" + e for e in alert["evidence"]]
    for article in alert["articles"]:
        article["title"] = "\u202d" + article["title"] + "\u2068"
        article["source"] = article["source"] + "\u202a"
    return alert


def email_parts(message: EmailMessage) -> tuple[str, str]:
    text, html = (part.get_content() for part in message.iter_parts())
    return text, html


TITLE = rtl_alert()["title"]
SUMMARY_LINES = rtl_alert()["summary"].split("\n")


# -- the helpers -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "rtl"),
    [
        ("عاجل", True),
        ("۱۲ پهپاد", True),  # digits are weak: the first strong character decides
        ("«قصف» قاعدة", True),
        ("سلێمانی", True),  # Sorani
        ("F-15E فوق بغداد", False),  # a Latin token first: an LTR paragraph, as dir="auto" would make it
        ("US strike in Iraq", False),
        ("", False),
        ("123", False),
    ],
)
def test_is_rtl_follows_the_first_strong_character(text: str, rtl: bool) -> None:
    assert is_rtl(text) is rtl


def test_beside_puts_only_rtl_text_on_a_line_of_its_own() -> None:
    assert beside("Severity 4/5 · Attack", "Rockets hit base") == "Severity 4/5 · Attack: Rockets hit base"
    assert beside("Severity 4/5 · Attack", "صواريخ على القاعدة") == "Severity 4/5 · Attack\nصواريخ على القاعدة"
    assert beside("* [4/5 high]", "صواريخ", " ", "  ") == "* [4/5 high]\n  صواريخ"


def test_the_view_removes_bidi_controls_and_keeps_marks_and_joiners() -> None:
    assert one_line("a\u202eb\u2066c\u2069d\u202ce") == "abcde"
    # ZWNJ is part of Persian spelling and RLM is ordinary punctuation: neither is a control to remove.
    assert one_line("بی\u200cپاسخ\u200f") == "بی\u200cپاسخ\u200f"
    view = AlertView.of(hostile_rtl_alert())
    assert view.title == TITLE
    assert view.summary.split("\n") == SUMMARY_LINES
    assert view.links[0].title == "عاجل | المقاومة الإسلامية في العراق"


# -- chat formats ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", CHAT_FORMATS)
def test_golden_rtl(fmt: str) -> None:
    produced = render_payload(fmt, rtl_alert())
    path = GOLDEN / f"alert_rtl.{fmt}.json"
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(json.dumps(produced, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    assert produced == json.loads(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("fmt", CHAT_FORMATS)
def test_chat_formats_carry_no_bidi_control_and_the_text_in_its_own_order(fmt: str) -> None:
    produced = render_payload(fmt, hostile_rtl_alert())
    texts = list(strings(produced))
    assert not [t for t in texts if BIDI_CONTROLS.search(t)]
    joined = "\n".join(texts)
    assert TITLE in joined  # logical order, as written: never reversed into "visual" order
    assert TITLE[::-1] not in joined


def test_slack_and_discord_give_the_rtl_headline_a_line_of_its_own() -> None:
    slack = render_payload("slack", rtl_alert())
    assert slack["text"].split("\n") == ["Severity 4/5 (high) · Attack on US forces in Iraq", TITLE]
    assert slack["blocks"][0] == {"type": "header", "text": {"type": "plain_text", "text": TITLE}}
    discord = render_payload("discord", rtl_alert())
    head, title = discord["content"].split("\n")
    assert head.endswith("· Attack on US forces in Iraq") and title == TITLE
    assert discord["embeds"][0]["title"] == TITLE


def test_teams_sets_the_direction_of_the_rtl_headline_and_summary() -> None:
    card = render_payload("teams", rtl_alert())["attachments"][0]["content"]
    rtl_blocks = [block for block in card["body"] if block.get("rtl") is True]
    assert [b["type"] for b in rtl_blocks] == ["Container", "Container"]
    texts = [run["text"] for b in rtl_blocks for item in b["items"] for run in item["inlines"]]
    assert texts == [TITLE, "\n".join(SUMMARY_LINES)]
    assert card["fallbackText"].split("\n")[1] == TITLE
    # English labels stay outside them.
    assert card["body"][0]["type"] == "TextBlock" and "rtl" not in card["body"][0]


def test_latin_alerts_render_as_before() -> None:
    alert = rtl_alert() | {"title": "Drone targets Ain al-Asad air base", "summary": "Officials said little."}
    assert "\n" not in render_payload("slack", alert)["text"]
    card = render_payload("teams", alert)["attachments"][0]["content"]
    assert not [block for block in card["body"] if block.get("type") == "Container"]


# -- console -----------------------------------------------------------------------------------------------


async def test_console_writes_the_headline_alone_in_logical_order_without_controls() -> None:
    out = io.StringIO()
    await ConsoleSink(stream=out).send(hostile_rtl_alert())
    printed = out.getvalue()
    assert not BIDI_CONTROLS.search(printed)
    lines = printed.split("\n")
    assert lines[1] == f"  {TITLE}"
    assert '"استهدف مجاهدونا"' in printed
    assert render_alert(rtl_alert()) == printed  # the controls were all it lost


# -- e-mail ------------------------------------------------------------------------------------------------


def _auto(element: Any) -> bool:
    """``dir="auto"`` on the element or the nearest ancestor that sets a direction."""
    while element is not None:
        if element.get("dir") is not None:
            return bool(element.get("dir") == "auto")
        element = element.getparent()
    return False


def _holders(tree: Any, text: str) -> list[Any]:
    """The innermost elements whose own text is ``text``."""
    return [e for e in tree.iter() if isinstance(e.tag, str) and (e.text or "").strip() == text]


def test_alert_email_marks_every_article_text_dir_auto_and_keeps_the_labels_out() -> None:
    message = alert_email(hostile_rtl_alert(), sender="m@example.org", to=["desk@example.org"], date=T0)
    text, html = email_parts(message)
    for part in (text, html, str(message["Subject"])):
        assert not BIDI_CONTROLS.search(part)
    tree = lxml_html.fromstring(html)
    for shown in [TITLE, *SUMMARY_LINES, "عاجل | المقاومة الإسلامية في العراق", "استهدف مجاهدونا"]:
        holders = _holders(tree, shown)
        assert holders, shown
        assert all(_auto(e) for e in holders), shown
    # The headline's block says so itself, and the English labels around it set no direction.
    [headline] = _holders(tree, TITLE)
    assert headline.tag == "a" and headline.getparent().get("dir") == "auto"
    [severity_label] = _holders(tree, "Severity")
    assert not _auto(severity_label)
    assert TITLE in text.split("\n")  # the text part's headline is a line of its own
    assert TITLE in str(message["Subject"])


def test_digest_marks_article_text_dir_auto_and_puts_rtl_headlines_on_their_own_line() -> None:
    window = Window(T0 - timedelta(hours=1), T0 + timedelta(hours=23))
    rendered = render_digest(build_digest("daily", window, [LogEntry(T0, hostile_rtl_alert())]))
    for part in (rendered.text, rendered.html, rendered.subject):
        assert not BIDI_CONTROLS.search(part)
    tree = lxml_html.fromstring(rendered.html)
    for shown in [TITLE, "عاجل | المقاومة الإسلامية في العراق"]:
        holders = _holders(tree, shown)
        assert holders and all(_auto(e) for e in holders), shown
    summary = [e for e in tree.iter("div") if (e.text or "").startswith(SUMMARY_LINES[0][:20])]
    assert summary and all(e.get("dir") == "auto" for e in summary)
    lines = rendered.text.split("\n")
    label = lines.index("* [4/5 high]")
    assert lines[label + 1] == f"  {TITLE}"


def test_the_parser_strips_bidi_controls_before_anything_is_stored() -> None:
    # What the generic webhook and the file sink carry is the payload as built from parsed articles: the controls
    # are already gone when a post or an entry is read.
    body = page("sabereen_test", [ChannelPost(1, "\u202eعاجل\u202c | قصف \u2067قاعدة\u2069 حرير في أربيل", T0)])
    [post] = parse_channel_page(
        body, headers={}, feed="tg", channel="sabereen_test", url="u", fetched=T0 + timedelta(hours=1)
    ).posts
    assert post.article.title == "عاجل | قصف قاعدة حرير في أربيل"
    assert not BIDI_CONTROLS.search(post.article.summary)


def test_telegram_and_apprise_messages_carry_no_bidi_control_and_keep_the_headline_in_its_order() -> None:
    """The bot formats added for edited messages: Telegram's HTML text and Apprise's title and body."""
    from monitor.delivery.sinks.apprise_sink import apprise_text
    from monitor.delivery.sinks.telegram import telegram_text

    text = telegram_text(hostile_rtl_alert())
    title, body = apprise_text(hostile_rtl_alert())
    for produced in (text, title, body):
        assert not BIDI_CONTROLS.search(produced)
    assert TITLE in text and TITLE[::-1] not in text
    assert TITLE in title
