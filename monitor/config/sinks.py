"""The ``alerts.sinks`` entries: where alerts go, each with its own routing (``monitor.delivery.routing``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator

from monitor.config.base import Strict, email_addresses, http_url

__all__ = [
    "AppriseSink",
    "ConsoleSink",
    "EmailSink",
    "FileSink",
    "SinkBase",
    "SinkConfig",
    "SlackSink",
    "TelegramSink",
    "WebhookSink",
    "default_sinks",
    "sink_name",
]


class SinkBase(Strict):
    name: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    min_severity: int | None = Field(None, ge=1, le=5)
    #: Routing (``monitor.delivery.routing``): what the sink gets besides ``min_severity``; None = no filter.
    event_types: list[str] | None = Field(None, min_length=1)
    entities: list[str] | None = Field(None, min_length=1)
    places: list[str] | None = Field(None, min_length=1)
    languages: list[str] | None = Field(None, min_length=1)
    revisions: Literal["all", "major", "none"] = "all"


class WebhookSink(SinkBase):
    type: Literal["webhook"]
    url: str
    secret: str | None = None
    format: Literal["generic", "slack", "discord", "teams"] = "generic"
    timeout_s: float = Field(10.0, gt=0, le=120)

    _check_url = field_validator("url")(classmethod(lambda cls, v: http_url(v)))


class ConsoleSink(SinkBase):
    type: Literal["console"]


class FileSink(SinkBase):
    type: Literal["file"]
    path: Path


class EmailSink(SinkBase):
    """Immediate alert e-mails (through the ``smtp`` section); digests are configured under ``digests``."""

    type: Literal["email"]
    to: list[str] = Field(min_length=1)

    _check_to = field_validator("to")(classmethod(lambda cls, v: email_addresses(v)))


class SlackSink(SinkBase):
    """A Slack bot: ``chat.postMessage``, then ``chat.update`` and a threaded reply for each revision."""

    type: Literal["slack"]
    token: str = Field(min_length=1)
    channel: str = Field(min_length=1)
    api_url: str = "https://slack.com/api"
    timeout_s: float = Field(10.0, gt=0, le=120)

    _check_url = field_validator("api_url")(classmethod(lambda cls, v: http_url(v)))


class TelegramSink(SinkBase):
    """A Telegram bot: ``sendMessage``, then ``editMessageText`` and a reply for each revision."""

    type: Literal["telegram"]
    token: str = Field(min_length=1)
    chat_id: str | int
    api_url: str = "https://api.telegram.org"
    timeout_s: float = Field(10.0, gt=0, le=120)

    _check_url = field_validator("api_url")(classmethod(lambda cls, v: http_url(v)))


class AppriseSink(SinkBase):
    """Notifications through Apprise (``pip install 'escalation-monitor[apprise]'``), one per URL in ``urls``."""

    type: Literal["apprise"]
    urls: list[str] = Field(min_length=1)
    timeout_s: float = Field(10.0, gt=0, le=120)


def sink_name(sink: SinkBase, index: int) -> str:
    """A sink's stable name: its ``name``, else its type (numbered after the first of a type)."""
    kind = getattr(sink, "type", "sink")
    if sink.name:
        return sink.name
    return kind if index == 0 or kind == "console" else f"{kind}-{index}"


SinkConfig = Annotated[
    WebhookSink | ConsoleSink | FileSink | EmailSink | SlackSink | TelegramSink | AppriseSink,
    Field(discriminator="type"),
]


def default_sinks() -> list[SinkConfig]:
    return [ConsoleSink(type="console")]
