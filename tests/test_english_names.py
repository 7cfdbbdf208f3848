"""An Arabic, a Persian and a Sorani report each alert with its original headline and, under it, its actors ("Who")
and places ("Where") in English, in every human format, delivered to the loopback receivers: console, Slack (incoming
webhook and bot), Discord, Teams, the Telegram bot and e-mail (text and HTML). The right-to-left headline keeps its
line (and its ``dir``/``rtl``), the English lines read left to right, and every name is escaped for its format."""

from __future__ import annotations

import io
import json
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
from lxml import html as lxml_html

from monitor.config import Config
from monitor.core.models import Article
from monitor.delivery.email.smtp import SmtpMailer
from monitor.delivery.sinks.console import ConsoleSink
from monitor.delivery.sinks.discord import escape as discord_escape
from monitor.delivery.sinks.discord_messages import DiscordSink
from monitor.delivery.sinks.email import EmailSink
from monitor.delivery.sinks.formats import render_payload
from monitor.delivery.sinks.slack_bot import SlackBotSink
from monitor.delivery.sinks.telegram import telegram_text
from monitor.delivery.sinks.telegram_bot import TelegramSink
from monitor.delivery.sinks.view import MAX_NAMES, AlertView, is_rtl
from monitor.delivery.sinks.webhook import WebhookSink
from monitor.processing.policies import policies
from monitor.processing.processor import Processor
from monitor.storage.events import EventStore
from monitor.storage.keys import Keys
from monitor.storage.messages import MessageStore
from tests.support.alerts import event_alert
from tests.support.chat_fakes import SLACK_TOKEN, TELEGRAM_TOKEN, ChatFakes
from tests.support.smtp_server import SmtpServer
from tests.support.webhook_receiver import WebhookReceiver
from tests.test_events import MATCHER, T0, FakeClock

ARABIC_SCRIPT = re.compile(r"[\u0600-\u06ff]")


def article(n: str, title: str, summary: str) -> Article:
    return Article(f"u:{n}", "channel", f"https://channel.example.org/{n}", None, title, summary, "", T0, T0)


#: One report per language, and what its alert must name in English.
REPORTS = {
    "ar": (
        article(
            "ar",
            "عاجل | المقاومة الإسلامية في العراق: استهدف مجاهدونا قاعدة حرير التي تضم قوات الاحتلال الأمريكي بطائرة "
            "مسيرة",
            "وذلك ردا على جرائم الاحتلال، وستستمر عملياتنا.",
        ),
        {"Islamic Resistance in Iraq"},
        {"Harir air base"},
    ),
    "fa": (
        article(
            "fa",
            "حمله موشکی به پایگاه عین‌الاسد محل استقرار نظامیان آمریکایی در استان الانبار عراق",
            "چند موشک به پایگاه هوایی عین‌الاسد که میزبان نیروهای آمریکایی است اصابت کرد؛ کتائب حزب‌الله مسئولیت "
            "حمله را بر عهده گرفت.",
        ),
        {"Kataib Hezbollah"},
        {"Ain al-Asad air base", "Anbar province"},
    ),
    "ckb": (
        article(
            "ckb",
            "هێرشی درۆن کرایە سەر بنکەی حەریر کە هێزەکانی ئەمریکای لێیە",
            "بەرگریی ئیسلامی لە عێراق ڕایگەیاند کە بنکەی حەریر لە پارێزگای هەولێر کرایە ئامانج.",
        ),
        {"Islamic Resistance in Iraq"},
        {"Harir air base", "Erbil"},
    ),
}


@pytest.fixture
async def fake() -> AsyncIterator[ChatFakes]:
    async with ChatFakes() as server:
        yield server


async def alert_for(redis: aioredis.Redis, report: Article) -> dict[str, Any]:
    """The alert the pipeline makes of ``report`` (real matcher, real Redis)."""
    event_policy, escalation_policy = policies(Config().events, Config().escalation)
    processor = Processor(
        MATCHER,
        EventStore(redis, Keys()),
        FakeClock(T0 + timedelta(minutes=5)),
        max_age_hours=0,
        event_policy=event_policy,
        escalation_policy=escalation_policy,
    )
    await processor.process([report])
    alerts = [json.loads(f[b"alert"]) for _, f in await redis.xrange(Keys().outbox)]
    [alert] = [a for a in alerts if a["kind"] == "event"]
    return alert


def english(line: str, who: set[str], where: set[str]) -> str:
    """``line`` is an English Who/Where line naming what it should: checked, and returned."""
    assert not ARABIC_SCRIPT.search(line) and not is_rtl(line), line
    wanted = who if "who" in line.lower().split(":")[0] else where
    assert all(name in line for name in wanted), (line, wanted)
    return line


def names_in(text: str, who: set[str], where: set[str]) -> list[str]:
    """The Who and Where lines of a plain text, each checked (see ``english``)."""
    lines = [line.strip() for line in text.split("\n") if re.match(r"\s*(\*|<b>)?(who|where)\b", line, re.I)]
    assert len(lines) == 2, text
    return [english(line, who, where) for line in lines]


@pytest.mark.parametrize("lang", sorted(REPORTS))
async def test_every_format_names_who_and_where_in_english(
    lang: str,
    redis: aioredis.Redis,
    session: aiohttp.ClientSession,
    fake: ChatFakes,
) -> None:
    report, who, where = REPORTS[lang]
    alert = await alert_for(redis, report)
    assert alert["title"] == report.title and alert["languages"] == [lang]
    labels = {item["label"] for item in alert["entity_labels"]}
    assert who | where <= labels and not any(ARABIC_SCRIPT.search(label) for label in labels)

    stream = io.StringIO()
    await ConsoleSink(stream=stream).send(alert)
    console = stream.getvalue()
    assert f"  {report.title}\n" in console
    assert console.startswith("[ALERT severity 3/5] Attack on US forces in Iraq (attack_on_us_forces_in_iraq)")
    names_in(console, who, where)

    async with WebhookReceiver() as rx:
        for fmt in ("slack", "teams"):
            await WebhookSink(fmt, rx.url, session, fmt=fmt).send(alert)
        slack_hook, teams = await rx.wait_for(2)
    await SlackBotSink("slack", SLACK_TOKEN, "#alerts", session, None, api_url=fake.api_url).send(alert)
    await TelegramSink("tg", TELEGRAM_TOKEN, -100123, session, None, api_url=fake.telegram_url).send(alert)
    await DiscordSink("discord", fake.discord_url, session, MessageStore(redis, Keys("t")), timeout_s=5).send(alert)
    [slack_bot] = fake.slack_messages.values()
    [tg] = fake.telegram_messages.values()
    [discord] = fake.discord_messages.values()
    assert [c.query.get("wait") for c in fake.of("discord.post")] == ["true"]

    for slack in (slack_hook, slack_bot):
        assert slack["blocks"][0]["text"]["text"] == report.title
        section = slack["blocks"][2]["text"]["text"]
        assert section.startswith("*Who:* ") and "\n*Where:* " in section
        names_in(section, who, where)
        # The notification text: the RTL headline on a line of its own, then the English lines.
        assert slack["text"].split("\n")[1] == report.title
        names_in(slack["text"], who, where)

    embed = discord["embeds"][0]
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    shown = discord_escape(report.title)  # Markdown-escaped ("|" is a spoiler mark), in its own order
    assert embed["title"] == shown and discord["content"].split("\n")[1] == shown
    english(f"Who: {fields['Who']}", who, where)
    english(f"Where: {fields['Where']}", who, where)

    card = teams["attachments"][0]["content"]
    facts = {f["title"]: f["value"] for b in card["body"] if b["type"] == "FactSet" for f in b["facts"]}
    english(f"Who: {facts['Who']}", who, where)
    english(f"Where: {facts['Where']}", who, where)
    [rtl] = [b for b in card["body"] if b.get("rtl") is True and b["items"][0]["inlines"][0]["text"] == report.title]
    assert rtl["type"] == "Container"

    text = tg["text"]
    assert report.title in text and text.index(report.title) < text.index("<b>Who:</b>")
    names_in(text, who, where)

    async with SmtpServer() as smtp:
        mailer = SmtpMailer(smtp.config(), local_hostname="monitor.test")
        await EmailSink("mail", mailer, sender="monitor@example.org", to=["desk@example.org"]).send(alert)
        [received] = await smtp.wait_for(1)
    plain, page = (part.get_content() for part in received.message.iter_parts())
    assert plain.index(report.title) < plain.index("Who: ")
    names_in(plain, who, where)
    tree = lxml_html.fromstring(page)
    [block] = tree.xpath('//td[@dir="ltr"]')
    lines = [" ".join(div.text_content().split()) for div in block.xpath("./div")]
    assert [line.split(":")[0] for line in lines] == ["Who", "Where"]
    for line in lines:
        english(line, who, where)
    assert any(report.title in " ".join(e.text_content().split()) for e in tree.xpath('//*[@dir="auto"]'))


HOSTILE = "<b>x</b> & [link](https://evil.example) *bold* _it_ @everyone <!channel>"


def test_names_are_escaped_for_every_format() -> None:
    alert = event_alert(1) | {
        "entity_labels": [
            {"id": "a", "label": HOSTILE, "type": "militia"},
            {"id": "b", "label": "Harir air base", "type": "base"},
            {"id": "c", "label": "Look-alike names", "type": "other"},
        ]
    }
    view = AlertView.of(alert)
    assert (view.who, view.where) == ([HOSTILE], ["Harir air base"])  # type "other" is never shown
    slack = json.dumps(render_payload("slack", alert), ensure_ascii=False)
    assert "<b>" not in slack and "<!channel>" not in slack and "&lt;!channel&gt;" in slack
    discord = render_payload("discord", alert)
    who = next(f["value"] for f in discord["embeds"][0]["fields"] if f["name"] == "Who")
    assert "\\[link\\](https://evil.example)" in who and "\\*bold\\*" in who and "\\_it\\_" in who
    assert discord["allowed_mentions"] == {"parse": []}
    card = render_payload("teams", alert)["attachments"][0]["content"]
    facts = {f["title"]: f["value"] for b in card["body"] if b["type"] == "FactSet" for f in b["facts"]}
    assert not set("<>[]*_@!") & set(facts["Who"]) and facts["Where"] == "Harir air base"
    telegram = telegram_text(alert)
    assert "&lt;b&gt;x&lt;/b&gt; &amp; [link]" in telegram and "<b>x</b>" not in telegram


def test_long_lists_are_cut_and_old_payloads_show_no_names() -> None:
    labels = [{"id": f"p{k}", "label": f"Place {k}", "type": "place"} for k in range(MAX_NAMES + 3)]
    view = AlertView.of(event_alert(1) | {"entity_labels": labels})
    assert view.names == [("Where", ", ".join(f"Place {k}" for k in range(MAX_NAMES)) + " and 3 more")]
    assert AlertView.of(event_alert(1)).names == []  # a payload from before entity_labels: as before
    assert AlertView.of(event_alert(1) | {"entity_labels": "junk"}).names == []
