"""Alert e-mails: the rendering (pure), and delivery through a real SMTP server on loopback (aiosmtpd) that
accepts, answers 451 or 550, refuses some recipients, or never answers; retries and dead letters through the
real outbox on the real Redis."""

from __future__ import annotations

import io
import json
import re
from email.message import EmailMessage
from typing import Any

import pytest
import redis.asyncio as aioredis
from structlog.testing import capture_logs

from monitor.config import EmailSink as EmailConfig
from monitor.config import SmtpConfig
from monitor.config.addresses import bad_addresses
from monitor.core.errors import ConfigError, DeliveryError, PermanentDeliveryError
from monitor.delivery.email.render import _HTML, alert_email, clean_subject, message_id, render_text
from monitor.delivery.email.smtp import SmtpMailer
from monitor.delivery.outbox import Deliverer
from monitor.delivery.sinks.email import EmailSink
from monitor.delivery.sinks.factory import build_sinks
from monitor.storage.keys import Keys
from tests.support.alerts import HOSTILE_TITLE, T0, FakeClock, event_alert
from tests.support.smtp_server import HANG, SmtpServer

KEYS = Keys("test")
TO = ["desk@example.org", "duty@example.org"]


def hostile() -> dict[str, Any]:
    alert = event_alert(7, title=HOSTILE_TITLE, summary="Paragraph one & <b>two</b>.\nParagraph two.")
    alert["articles"].insert(0, {"url": "javascript:alert(document.cookie)", "title": "Click", "source": "evil"})
    return alert


def parts(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    return str(text.get_content()), str(html.get_content())


def sink(smtp: SmtpServer, **config: Any) -> EmailSink:
    mailer = SmtpMailer(smtp.config(**config), local_hostname="monitor.test")
    return EmailSink("mail", mailer, sender="monitor@example.org", to=TO, clock=FakeClock(T0))


def deliverer(redis: aioredis.Redis, target: EmailSink, **options: Any) -> Deliverer:
    settings: dict[str, Any] = {
        "consumer": "c1",
        "clock": FakeClock(T0),
        "max_attempts": 4,
        "max_retry_delay_s": 0.1,
        "base_delay_s": 0.02,
        "block_ms": 50,
        "shutdown_grace_s": 0.1,
        **options,
    }
    return Deliverer(redis, KEYS, target, **settings)


async def enqueue(redis: aioredis.Redis, alert: dict[str, Any]) -> None:
    await redis.xadd(KEYS.outbox, {b"alert": json.dumps(alert), b"id": alert["id"]})


# -- rendering ---------------------------------------------------------------------------------------------


def test_alert_email_is_multipart_with_safe_headers_and_escaped_html() -> None:
    message = alert_email(hostile(), sender="monitor@example.org", to=TO, date=T0)
    assert message.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
    assert message["Message-ID"] == "<evt7.r1@escalation-monitor>"
    assert message["References"] == "<event.evt7@escalation-monitor>" and message["In-Reply-To"] is None
    assert message["Auto-Submitted"] == "auto-generated"
    subject = str(message["Subject"])
    assert "\r" not in subject and "\n" not in subject and "Bcc" in subject  # folded into the subject, not a header
    assert message["Bcc"] is None
    text, html = parts(message)
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;b&gt;two&lt;/b&gt;" in html
    assert "javascript:" not in html.lower() and "javascript:" not in text.lower()
    assert set(re.findall(r'href="([a-z]+):', html)) == {"https"}
    assert HOSTILE_TITLE.replace("\r\n", " ") in text  # the text part is plain text, unescaped


def test_alert_email_html_is_mail_client_safe() -> None:
    _, html = parts(alert_email(hostile(), sender="m@example.org", to=TO, date=T0))
    for forbidden in ("<style", "class=", "<script", "<img", "<svg", "<link", "javascript:"):
        assert forbidden not in html.lower(), forbidden
    assert html.count("<table") >= 2 and 'role="presentation"' in html
    # Every element that is styled is styled inline.
    assert re.search(r"<(td|span|div|a)\b(?![^>]*style=)[^>]*>", html.replace("<td></td>", "")) is None


def test_revisions_thread_under_their_event() -> None:
    first = alert_email(event_alert(3), sender="m@example.org", to=TO, date=T0)
    update = alert_email(event_alert(3, revision=2, severity=5), sender="m@example.org", to=TO, date=T0)
    assert first["Message-ID"] != update["Message-ID"] == "<evt3.r2@escalation-monitor>"
    assert update["In-Reply-To"] == update["References"] == first["References"]
    assert str(update["Subject"]).startswith("[Critical 5/5] Update 2: US strike in Iraq")


def test_autoescape_is_on_and_text_templates_stay_apart() -> None:
    assert _HTML.autoescape is True
    with pytest.raises(ValueError, match=r"only \.txt"):
        render_text("alert.html", view=None)


def test_subject_and_message_id_helpers() -> None:
    assert clean_subject("a\r\nBcc: x\x00y\u202eevil\tz") == "a Bcc: x yevil z"
    assert len(clean_subject("x" * 1000)) == 200
    assert clean_subject("\r\n") == "(no subject)"
    assert clean_subject(f" {BIDI}a\u200fb ") == "ab"
    assert message_id("ev_1.r2") == "<ev_1.r2@escalation-monitor>"
    odd = message_id("a b<c>@d")
    assert odd == message_id("a b<c>@d") and re.fullmatch(r"<h[0-9a-f]{40}@escalation-monitor>", odd)
    assert bad_addresses(["desk@example.org", "no at", "x@y\r\nBcc: z@z", "Desk <d@x.org>"]) == [
        "no at",
        "x@y\r\nBcc: z@z",
        "Desk <d@x.org>",
    ]


# -- delivery through a real SMTP server -------------------------------------------------------------------


async def test_email_delivered_and_parsed() -> None:
    async with SmtpServer() as smtp:
        await sink(smtp).send(hostile())
        [received] = smtp.messages
    assert received.mail_from == "monitor@example.org" and received.rcpt_tos == TO
    message = received.message
    assert message.get_content_type() == "multipart/alternative"
    assert message["Message-ID"] == "<evt7.r1@escalation-monitor>"
    assert "\n" not in str(message["Subject"]) and "\r" not in str(message["Subject"])
    assert message["To"] == ", ".join(TO) and message["Bcc"] is None
    text, html = parts(message)
    assert "&lt;script&gt;" in html and "<script>" not in html
    assert "javascript:" not in html.lower() + text.lower()
    assert "https://example.org/7/a" in html and "https://example.org/7/a" in text


#: Every bidirectional control the e-mails drop: embeddings and overrides, isolates, and the marks LRM, RLM, ALM.
BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"


async def test_subjects_that_fit_on_one_line_arrive_without_a_leading_space() -> None:
    """Python's folder moves a 70-77 character subject whole onto a continuation line; parsed by the letter of
    RFC 5322 (as aiosmtpd's receiver and Python's parser do), it would start with a space."""
    words = "Militia depot hit near Baghdad airport after drone strike on the base " * 2
    titles = [words[:k].strip() for k in range(30, 70)]  # subjects from 60 to 100 characters
    async with SmtpServer() as smtp:
        mail = sink(smtp)
        for n, title in enumerate(titles):
            await mail.send(event_alert(n, title=title))
        received = smtp.messages
    assert len(received) == len(titles)
    subjects = [str(r.message["Subject"]) for r in received]
    assert subjects == [f"[High 4/5] US strike in Iraq: {title}" for title in titles]
    assert len([s for s in subjects if 70 <= len(s) <= 77]) >= 5  # the lengths that were folded whole
    assert not any(re.search(rb"^Subject:\s*$", r.raw, re.MULTILINE) for r in received)


async def test_bidi_controls_are_stripped_from_the_subject_and_both_parts() -> None:
    title = f"US strike{BIDI} near \u202eBaghdad\u202c depot"
    alert = event_alert(4, title=title, summary=f"Officials{BIDI} said \u2067the depot\u2069 burned.")
    async with SmtpServer() as smtp:
        await sink(smtp).send(alert)
        [received] = smtp.messages
    text, html = parts(received.message)
    subject = str(received.message["Subject"])
    for where in (subject, text, html):
        assert not set(BIDI) & set(where), where
    assert subject.endswith("US strike near Baghdad depot")
    assert "US strike near Baghdad depot" in text and "Officials said the depot burned." in text
    assert "US strike near Baghdad depot" in html and "Officials said the depot burned." in html


async def test_login_when_credentials_are_configured() -> None:
    async with SmtpServer(credentials=("monitor", "s3cret-pw")) as smtp:
        await sink(smtp, username="monitor", password="s3cret-pw").send(event_alert())
        assert smtp.logins == ["monitor"] and len(smtp.messages) == 1
        with pytest.raises(PermanentDeliveryError, match="535") as caught:
            await sink(smtp, username="monitor", password="wrong").send(event_alert())
    assert "wrong" not in caught.value.reason


async def test_451_then_250_is_delivered_once_with_the_same_message_id(redis: aioredis.Redis) -> None:
    async with SmtpServer() as smtp:
        smtp.script([451, None])
        d = deliverer(redis, sink(smtp))
        await d.ensure_group()
        await enqueue(redis, event_alert(1))
        with capture_logs() as logs:
            assert await d.drain(5) == 1
    assert [a.reply[:3] for a in smtp.attempts] == ["451", "250"]
    assert {a.message_id for a in smtp.attempts} == {"<evt1.r1@escalation-monitor>"}
    assert len(smtp.messages) == 1
    [retry] = [e for e in logs if e["event"] == "alert_retry_scheduled"]
    assert retry["reason"].startswith("451")
    assert await redis.xlen(KEYS.dead) == 0


async def test_550_is_a_dead_letter(redis: aioredis.Redis) -> None:
    async with SmtpServer() as smtp:
        smtp.script([550])
        d = deliverer(redis, sink(smtp))
        await d.ensure_group()
        await enqueue(redis, event_alert(1))
        await d.drain(3)
    assert len(smtp.attempts) == 1 and smtp.messages == []
    entries: Any = await redis.xrange(KEYS.dead)
    [(_, dead)] = entries
    assert dead[b"sink"] == b"mail" and dead[b"id"] == b"evt1.r1"
    assert dead[b"reason"].decode().startswith("550 5.7.1 message refused from smtp://127.0.0.1:")


async def test_partially_refused_recipients_are_recorded_and_the_send_counts() -> None:
    async with SmtpServer() as smtp:
        smtp.refuse["duty@example.org"] = "550 5.1.1 no such user"
        with capture_logs() as logs:
            await sink(smtp).send(event_alert())
        [received] = smtp.messages
    assert received.rcpt_tos == ["desk@example.org"]
    [refused] = [e for e in logs if e["event"] == "email_recipients_refused"]
    assert refused["refused"] == {"duty@example.org": "550 5.1.1 no such user"} and refused["accepted"] == 1


@pytest.mark.parametrize(("reply", "permanent"), [("550 5.1.1 no such user", True), ("450 4.2.1 mailbox busy", False)])
async def test_every_recipient_refused(reply: str, permanent: bool) -> None:
    async with SmtpServer() as smtp:
        smtp.refuse.update({address: reply for address in TO})
        with pytest.raises(DeliveryError) as caught:
            await sink(smtp).send(event_alert())
    assert isinstance(caught.value, PermanentDeliveryError) is permanent
    assert "every recipient refused" in caught.value.reason and reply in caught.value.reason


async def test_a_server_that_never_answers_times_out_and_is_retried(redis: aioredis.Redis) -> None:
    async with SmtpServer() as smtp:
        target = sink(smtp, timeout_s=0.3)
        smtp.script([HANG])
        with pytest.raises(DeliveryError, match="timed out") as caught:
            await target.send(event_alert())
        assert not isinstance(caught.value, PermanentDeliveryError)
        smtp.script([HANG, None])
        d = deliverer(redis, target)
        await d.ensure_group()
        await enqueue(redis, event_alert(2))
        assert await d.drain(5) == 1
    assert [a.reply for a in smtp.attempts] == [HANG, HANG, "250 2.0.0 accepted"]
    assert [m.message["Message-ID"] for m in smtp.messages] == ["<evt2.r1@escalation-monitor>"]


async def test_no_server_is_retryable() -> None:
    async with SmtpServer() as smtp:
        config = smtp.config()
    with pytest.raises(DeliveryError) as caught:  # the server is gone: connection refused
        await EmailSink("mail", SmtpMailer(config), sender="m@example.org", to=TO).send(event_alert())
    assert not isinstance(caught.value, PermanentDeliveryError)
    assert f"smtp://127.0.0.1:{config.port}" in caught.value.reason


async def test_build_sinks_makes_email_sinks_and_checks_them() -> None:
    smtp = SmtpConfig.model_validate({"host": "127.0.0.1", "port": 2525, "sender": "monitor@example.org"})
    entry = EmailConfig.model_validate({"type": "email", "to": TO, "min_severity": 4})
    import aiohttp

    async with aiohttp.ClientSession() as session:
        [built] = build_sinks([entry], session, io.StringIO(), smtp=smtp)
        assert isinstance(built, EmailSink) and built.name == "email" and built.min_severity == 4
        with pytest.raises(ConfigError, match=r"need an 'smtp' section"):
            build_sinks([entry], session, io.StringIO())
        with pytest.raises(ValueError, match=r"not an e-mail address: desk at example"):
            EmailConfig.model_validate({"type": "email", "to": ["desk at example.org"]})
