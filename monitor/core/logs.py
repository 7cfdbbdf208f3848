"""Structured logging: JSON lines when not on a terminal, readable lines on one; secrets never printed.

The processor chain is the whole architecture here. Redaction runs on every event, on exception text too, and
on the standard library's loggers (aiohttp, apscheduler, asyncio), which are routed through the same chain.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from monitor.core.redact import redact

__all__ = ["Redactor", "configure_logging"]

_URL_SECRET = re.compile(r"(?P<origin>https?://[^/\s\"'?#]+)(?P<rest>[/?#][^\s\"'<>]*)")
_KEY_NAMES = re.compile(r"(secret|password|passwd|token|authorization|api[_-]?key)", re.IGNORECASE)


class Redactor:
    """Removes secrets from log events: configured secret values, URL paths/queries of sink URLs, credentials in
    URLs (``core.redact``)."""

    def __init__(self, secrets: Iterable[str] = (), sensitive_urls: Iterable[str] = ()) -> None:
        self.update(secrets, sensitive_urls)

    def update(self, secrets: Iterable[str], sensitive_urls: Iterable[str]) -> None:
        values = {s for s in secrets if s and len(s) >= 4}
        self._secrets = sorted(values, key=len, reverse=True)
        self._hosts = {m.group("origin") for u in sensitive_urls if (m := _URL_SECRET.match(u))}

    def text(self, value: str) -> str:
        value = redact(value, self._secrets)
        if self._hosts:
            value = _URL_SECRET.sub(
                lambda m: m.group("origin") + ("/[redacted]" if m.group("origin") in self._hosts else m.group("rest")),
                value,
            )
        return value

    def _value(self, key: str, value: Any) -> Any:
        if isinstance(key, str) and _KEY_NAMES.search(key) and value not in (None, ""):
            return "[redacted]"
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, BaseException):
            return self.text(f"{type(value).__name__}: {value}")
        return value

    def __call__(self, logger: WrappedLogger, name: str, event: EventDict) -> EventDict:
        for key, value in list(event.items()):
            event[key] = self._value(key, value)
        return event


def _redact_rendered(redactor: Redactor) -> Processor:
    def redact(logger: WrappedLogger, name: str, event: EventDict) -> EventDict:
        # Tracebacks are rendered into "exception" by format_exc_info; they can quote URLs and secrets.
        if isinstance(event.get("exception"), str):
            event["exception"] = redactor.text(event["exception"])
        return event

    return redact


def configure_logging(
    *, level: str = "info", fmt: str = "auto", stream: TextIO | None = None, redactor: Redactor | None = None
) -> Redactor:
    """Configure structlog and the stdlib root logger once for the process; returns the redactor in use."""
    stream = stream or sys.stderr
    redactor = redactor or Redactor()
    as_json = fmt == "json" or (fmt == "auto" and not stream.isatty())
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redactor,
    ]
    renderer: Processor = (
        structlog.processors.JSONRenderer() if as_json else structlog.dev.ConsoleRenderer(colors=stream.isatty())
    )
    numeric = getattr(logging, level.upper())
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, _redact_rendered(redactor), renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        # One write (and flush) per line: fetch workers and parsers share the stream, and two writes a line let
        # their lines run into each other.
        logger_factory=structlog.WriteLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                _redact_rendered(redactor),
                renderer,
            ],
            foreign_pre_chain=[*shared[:-1], _stdlib_message(redactor), redactor],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(max(numeric, logging.INFO) if numeric < logging.INFO else numeric)
    for noisy in ("apscheduler", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(max(numeric, logging.WARNING))
    return redactor


def _stdlib_message(redactor: Redactor) -> Processor:
    def message(logger: WrappedLogger, name: str, event: EventDict) -> EventDict:
        record: logging.LogRecord | None = event.get("_record")
        if record is not None:
            event.setdefault("logger", record.name)
        return event

    return message
