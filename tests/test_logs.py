"""Logs: structured, and secrets never printed — in events, in exception text, and in libraries' own loggers."""

from __future__ import annotations

import io
import json
import logging

import structlog

from monitor.core.logs import Redactor, configure_logging

HOOK = "https://hooks.example.org/services/T000/B000/tok3nInThePath?sig=abc"
SECRET = "whsec_dGhpcy1pcy1hLXRlc3Qtc2VjcmV0"


def setup() -> io.StringIO:
    stream = io.StringIO()
    configure_logging(fmt="json", stream=stream, redactor=Redactor([SECRET, "smtp-pass-123"], [HOOK]))
    return stream


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_events_are_json_with_context_and_secrets_redacted() -> None:
    stream = setup()
    structlog.get_logger().info("alert_delivered", sink="desk", url=HOOK, note=f"used {SECRET}", password="x")
    (event,) = lines(stream)
    assert event["event"] == "alert_delivered" and event["sink"] == "desk" and event["level"] == "info"
    assert event["url"] == "https://hooks.example.org/[redacted]"
    assert SECRET not in stream.getvalue() and event["password"] == "[redacted]"


def test_exception_text_and_stdlib_loggers_are_redacted() -> None:
    stream = setup()
    try:
        raise RuntimeError(f"POST {HOOK} failed with key {SECRET}")
    except RuntimeError:
        structlog.get_logger().exception("sink_failed")
    logging.getLogger("aiohttp.client").error("could not reach %s (auth smtp-pass-123)", HOOK)
    text = stream.getvalue()
    assert "tok3n" not in text and SECRET not in text and "smtp-pass-123" not in text
    assert len(lines(stream)) == 2


def test_credentials_in_urls_are_redacted() -> None:
    assert Redactor().text("redis://user:hunter2@db:6379/0") == "redis://[redacted]@db:6379/0"


def test_credentials_in_malformed_and_password_only_urls_are_redacted() -> None:
    """Redis takes a password without a user (``redis://:pw@host``), and an unencoded ``/`` or ``#`` in a
    password makes the URL malformed: neither may leak. Other URLs keep their paths, '@' included."""
    redact = Redactor().text
    assert redact("redis://:hunter2@db:6379/0") == "redis://[redacted]@db:6379/0"
    assert redact("failed: rediss://admin:hun/ter#2@db:6379 (x)") == "failed: rediss://[redacted]@db:6379 (x)"
    assert redact("https://token@feeds.example.org/rss") == "https://[redacted]@feeds.example.org/rss"
    assert redact("redis://db:6379/0?password=hunter2&db=1") == "redis://db:6379/0?password=[redacted]&db=1"
    assert redact("https://medium.com/feed/@someone") == "https://medium.com/feed/@someone"
