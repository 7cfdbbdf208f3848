"""The configuration contract: one typed object, validated when ``load`` reads it, every problem reported with
its line.

Nothing below the CLI reads ``os.environ``; the CLI passes the environment in (see ``load``).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Generic, Literal, Self, TypeVar
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from monitor.config.addresses import bad_addresses
from monitor.config.redisurl import redis_url_problem

__all__ = [
    "AlertsConfig",
    "Config",
    "ConsoleSink",
    "DigestConfig",
    "EmailSink",
    "EscalationConfig",
    "EventsConfig",
    "FeedConfig",
    "FetchConfig",
    "FileSink",
    "LogConfig",
    "MetricsConfig",
    "RedisConfig",
    "SectionCheck",
    "SinkConfig",
    "SmtpConfig",
    "WebhookSink",
    "sink_name",
]


REPLICA_NAME = r"^[A-Za-z0-9][A-Za-z0-9._:@-]*$"


CHECKS = "monitor.config.checks"  # the validation context's key for the checks load_config was given
_S = TypeVar("_S", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class SectionCheck(Generic[_S]):
    """A check of every ``section`` of a config that needs a layer above this package, passed in by whoever loads
    the config (``load_config(..., checks=...)``): the service layer checks each digest's schedule with its
    scheduler (``monitor.service.cron.CONFIG_CHECKS``). ``problem`` gets a section that passed its own validation
    and returns why it is still wrong, or None; the reason is reported at the section's line like any other."""

    section: type[_S]
    problem: Callable[[_S], str | None]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="after")
    def _passed_in_checks(self, info: ValidationInfo) -> Self:
        checks = info.context.get(CHECKS, {}) if isinstance(info.context, dict) else {}
        for problem in checks.get(type(self), ()):
            reason = problem(self)
            if reason:
                raise ValueError(reason)
        return self


def _addresses(values: list[str]) -> list[str]:
    bad = bad_addresses(values)
    if bad:
        raise ValueError(f"not an e-mail address: {', '.join(bad)}")
    return values


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    if "\\" in value:  # URL parsers disagree on where its host ends (RELIABILITY.md A8)
        raise ValueError("must not contain a backslash")
    return value


class RedisConfig(_Strict):
    url: str = "embedded"
    data_dir: Path = Path("var")
    socket_timeout_s: float = Field(5.0, gt=0, le=120)
    connect_timeout_s: float = Field(5.0, gt=0, le=120)
    #: Refuse to start when Redis may evict keys or does not persist them (else only a ``redis_unsafe`` warning).
    require_safe: bool = False

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        reason = redis_url_problem(value)
        if reason:
            raise ValueError(reason)
        return value


class FetchConfig(_Strict):
    timeout_s: float = Field(20.0, gt=0, le=600)
    max_bytes: int = Field(5_000_000, gt=0)
    allow_private_networks: bool = False
    max_redirects: int = Field(5, ge=0, le=20)
    concurrency: int = Field(32, ge=1, le=1000)
    per_host_concurrency: int = Field(4, ge=1, le=100)
    user_agent: str = "escalation-monitor/0.1 (+https://github.com/escalation-monitor)"
    #: Consecutive failures of a feed before an operator alert goes to the sinks (0 = never); a recovery follows.
    alert_after_failures: int = Field(5, ge=0, le=1000)
    #: Feeds are parsed in worker processes with these limits, so a hostile feed cannot take the daemon down.
    parse_workers: int = Field(2, ge=1, le=32)
    parse_memory_mb: int = Field(256, ge=128, le=65536)
    parse_timeout_s: float = Field(30.0, gt=0, le=600)


class FeedConfig(_Strict):
    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    url: str
    interval_s: int = Field(300, ge=1, le=86400)
    #: Adaptive polling stays between these (defaults: half and four times ``interval_s``).
    min_interval_s: int | None = Field(None, ge=1, le=86400)
    max_interval_s: int | None = Field(None, ge=1, le=7 * 86400)
    adaptive: bool = True

    _check_url = field_validator("url")(classmethod(lambda cls, v: _http_url(v)))

    @model_validator(mode="after")
    def _bounds(self) -> FeedConfig:
        if self.min_interval_s and self.max_interval_s and self.min_interval_s > self.max_interval_s:
            raise ValueError("min_interval_s must not exceed max_interval_s")
        return self


class _SinkBase(_Strict):
    name: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    min_severity: int | None = Field(None, ge=1, le=5)


class WebhookSink(_SinkBase):
    type: Literal["webhook"]
    url: str
    secret: str | None = None
    format: Literal["generic", "slack", "discord", "teams"] = "generic"
    timeout_s: float = Field(10.0, gt=0, le=120)

    _check_url = field_validator("url")(classmethod(lambda cls, v: _http_url(v)))


class ConsoleSink(_SinkBase):
    type: Literal["console"]


class FileSink(_SinkBase):
    type: Literal["file"]
    path: Path


class EmailSink(_SinkBase):
    """Immediate alert e-mails (through the ``smtp`` section); digests are configured under ``digests``."""

    type: Literal["email"]
    to: list[str] = Field(min_length=1)

    _check_to = field_validator("to")(classmethod(lambda cls, v: _addresses(v)))


def sink_name(sink: _SinkBase, index: int) -> str:
    """A sink's stable name: its ``name``, else its type (numbered after the first of a type)."""
    kind = getattr(sink, "type", "sink")
    if sink.name:
        return sink.name
    return kind if index == 0 or kind == "console" else f"{kind}-{index}"


SinkConfig = Annotated[WebhookSink | ConsoleSink | FileSink | EmailSink, Field(discriminator="type")]


def _default_sinks() -> list[SinkConfig]:
    return [ConsoleSink(type="console")]


class AlertsConfig(_Strict):
    min_severity: int = Field(3, ge=1, le=5)
    max_age_hours: float = Field(72, ge=0)
    sinks: list[SinkConfig] = Field(default_factory=_default_sinks)
    max_attempts: int = Field(12, ge=1, le=1000)
    max_retry_delay_s: float = Field(300, gt=0, le=86400)

    @model_validator(mode="after")
    def _unique_names(self) -> AlertsConfig:
        names = [sink_name(s, i) for i, s in enumerate(self.sinks)]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"sink names must be unique (give each a 'name'): {', '.join(dupes)}")
        return self


class SmtpConfig(_Strict):
    host: str = "localhost"
    port: int = Field(25, ge=1, le=65535)
    sender: str = "monitor@example.org"
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    ssl: bool = False
    timeout_s: float = Field(30, gt=0, le=600)


class DigestConfig(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    cron: str
    to: list[str] = Field(min_length=1)
    min_severity: int = Field(2, ge=1, le=5)
    timezone: str = "UTC"
    event_types: list[str] | None = None

    _check_to = field_validator("to")(classmethod(lambda cls, v: _addresses(v)))

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        # The rest of the schedule (fields, time zone) is checked by the scheduler: see ``SectionCheck``.
        if len(value.split()) != 5:
            raise ValueError("must be a five-field cron expression, e.g. '0 7 * * *'")
        return value


def _default_windows() -> dict[str, float]:
    return {
        "attack_on_us_forces_in_iraq": 36,
        "us_strike_in_iraq": 96,
        "iraq_expels_or_ends_us_presence": 120,
        "us_personnel_evacuation_or_advisory": 120,
    }


class EventsConfig(_Strict):
    """How articles are clustered into events and when an event sends a revision."""

    window_hours: float = Field(72, ge=1, le=24 * 60)
    #: Per event type (its family): attacks are frequent and brief, a killing's aftermath lasts days.
    window_hours_by_type: dict[str, float] = Field(default_factory=_default_windows)
    join_threshold: float = Field(2.0, gt=0)
    revise_on_severity: bool = True
    revise_on_confirmation: bool = True
    revise_on_casualties: bool = True
    outlet_thresholds: list[int] = Field(default_factory=lambda: [3, 10])


class EscalationConfig(_Strict):
    half_life_hours: float = Field(120, gt=0)
    #: Index values at which levels 2, 3, 4 and 5 begin.
    thresholds: list[float] = Field(default_factory=lambda: [1.5, 3.5, 6.0, 10.0], min_length=4, max_length=4)
    hysteresis: float = Field(0.75, gt=0, le=1)

    @field_validator("thresholds")
    @classmethod
    def _increasing(cls, value: list[float]) -> list[float]:
        if any(b <= a for a, b in itertools.pairwise(value)):
            raise ValueError("thresholds must increase")
        return value


class LogConfig(_Strict):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"


class MetricsConfig(_Strict):
    """The daemon's HTTP server: ``/metrics``, ``/healthz`` and ``/readyz``. Port 0 picks a free one (logged)."""

    enabled: bool = True
    host: str = Field("127.0.0.1", min_length=1)
    port: int = Field(9464, ge=0, le=65535)


class Config(_Strict):
    redis: RedisConfig = Field(default_factory=RedisConfig)
    rules: list[Path] = Field(default_factory=lambda: [Path("rules")], min_length=1)
    fetch: FetchConfig = Field(default_factory=FetchConfig)
    feeds: list[FeedConfig] = Field(default_factory=list)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    smtp: SmtpConfig | None = None
    digests: list[DigestConfig] = Field(default_factory=list)
    events: EventsConfig = Field(default_factory=EventsConfig)
    escalation: EscalationConfig = Field(default_factory=EscalationConfig)
    log: LogConfig = Field(default_factory=LogConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    #: This replica's stable name among those sharing one Redis (its consumer name in the outbox groups);
    #: default: the host name. ``MONITOR_REPLICA`` in the environment overrides it.
    replica_name: str | None = Field(None, min_length=1, max_length=100, pattern=REPLICA_NAME)
    source: str = Field("<defaults>", exclude=True, description="where this config was read from")

    @model_validator(mode="after")
    def _unique_feeds(self) -> Config:
        names = [f.name for f in self.feeds]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"feed names must be unique: {', '.join(dupes)}")
        if (self.digests or any(s.type == "email" for s in self.alerts.sinks)) and self.smtp is None:
            raise ValueError("digests and email sinks need an 'smtp' section")
        return self
