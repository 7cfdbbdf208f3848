"""The configuration contract: one typed object, validated when ``load`` reads it, every problem reported with
its line.

Nothing below the CLI reads ``os.environ``; the CLI passes the environment in (see ``load``).
"""

from __future__ import annotations

import itertools
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal, Self
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator

from monitor.config.base import CHECKS, SectionCheck, Strict, email_addresses, http_url
from monitor.config.redisurl import redis_url_problem
from monitor.config.sinks import (
    AppriseSink,
    ConsoleSink,
    EmailSink,
    FileSink,
    SinkConfig,
    SlackSink,
    TelegramSink,
    WebhookSink,
    default_sinks,
    sink_name,
)

__all__ = [
    "CHECKS",
    "AlertsConfig",
    "AppriseSink",
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
    "SlackSink",
    "SmtpConfig",
    "TelegramSink",
    "WebConfig",
    "WebhookSink",
    "sink_name",
]


REPLICA_NAME = r"^[A-Za-z0-9][A-Za-z0-9._:@-]*$"


class RedisConfig(Strict):
    url: str = "embedded"
    data_dir: Path = Path("var")
    socket_timeout_s: float = Field(5.0, gt=0, le=120)
    connect_timeout_s: float = Field(5.0, gt=0, le=120)
    #: Refuse to start when Redis may evict keys or does not persist them (else only a ``redis_unsafe`` warning).
    require_safe: bool = False
    #: ``standalone`` (one server, or the embedded one), ``cluster`` (``url`` names any node) or ``sentinel``.
    mode: Literal["standalone", "cluster", "sentinel"] = "standalone"
    #: Sentinel mode: the sentinels (``host:port``) and the name they know the primary by; ``url``, when it is a
    #: redis:// URL, gives the primary's user, password and database (its host is not used).
    sentinels: list[Annotated[str, Field(pattern=r"^[^\s:/@]+:[0-9]{1,5}$")]] = Field(default_factory=list)
    service_name: str | None = Field(None, min_length=1, max_length=200)
    sentinel_password: str | None = None
    #: Replicas that must acknowledge an enqueued alert (``WAIT``) before the pipeline moves on; default 1 in
    #: cluster and sentinel mode, 0 standalone. ``wait_timeout_ms`` bounds each wait.
    wait_replicas: int | None = Field(None, ge=0, le=10)
    wait_timeout_ms: int = Field(500, ge=1, le=60_000)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        reason = redis_url_problem(value)
        if reason:
            raise ValueError(reason)
        return value

    @model_validator(mode="after")
    def _sentinel(self) -> Self:
        if self.mode == "sentinel" and not (self.sentinels and self.service_name):
            raise ValueError("mode sentinel needs redis.sentinels (host:port, ...) and redis.service_name")
        return self

    @property
    def replicas_to_wait(self) -> int:
        """``wait_replicas``, or its default for the mode."""
        if self.wait_replicas is not None:
            return self.wait_replicas
        return 0 if self.mode == "standalone" else 1


MAX_FETCH_WORKERS = 64


#: With ``fetch.workers: auto``, how many feeds make fetch workers worth their memory (about 50-90 MB each).
AUTO_WORKERS_FEEDS = 5000


def default_fetch_workers() -> int:
    """``fetch.workers: auto`` for a large feed list: the cores this process may run on (at most
    ``MAX_FETCH_WORKERS``)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(cores, MAX_FETCH_WORKERS))


class FetchConfig(Strict):
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
    #: Fetch-and-parse processes sharing the feeds (``monitor.fetching.workers``); 0 fetches in the daemon itself;
    #: ``auto``: one per core from ``AUTO_WORKERS_FEEDS`` feeds on, else 0 (see ``Config.fetch_workers``).
    workers: int | Literal["auto"] = "auto"

    @field_validator("workers", mode="before")
    @classmethod
    def _workers(cls, value: object) -> object:
        if value == "auto" or (
            isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_FETCH_WORKERS
        ):
            return value
        raise ValueError(f"must be 'auto' or a whole number from 0 to {MAX_FETCH_WORKERS}")


#: A public Telegram channel's name as Telegram allows it: 5-32 letters, digits and underscores, from a letter.
TELEGRAM_CHANNEL = re.compile(r"[A-Za-z][A-Za-z0-9_]{4,31}")
TELEGRAM_BASE_URL = "https://t.me"


class FeedConfig(Strict):
    """One source: an RSS/Atom feed at ``url`` (``type: rss``, the default), or a public Telegram channel read
    from its web preview (``type: telegram`` with ``channel``; its ``url`` is derived: ``{telegram_base_url}/s/NAME``).
    """

    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    type: Literal["rss", "telegram"] = "rss"
    url: str
    channel: str | None = None
    #: Where channel previews are read from (tests and mirrors); posts still link to https://t.me.
    telegram_base_url: str = TELEGRAM_BASE_URL
    interval_s: int = Field(300, ge=1, le=86400)
    #: Adaptive polling stays between these (defaults: half and four times ``interval_s``).
    min_interval_s: int | None = Field(None, ge=1, le=86400)
    max_interval_s: int | None = Field(None, ge=1, le=7 * 86400)
    adaptive: bool = True

    @model_validator(mode="before")
    @classmethod
    def _telegram_url(cls, data: Any) -> Any:
        # A channel's page is its URL, so everything that names a feed's URL (logs, health, notices) works as is.
        if isinstance(data, dict) and data.get("type") == "telegram":
            if "url" in data:
                raise ValueError("a telegram feed is read from its 'channel' (and 'telegram_base_url'), not a 'url'")
            base, channel = data.get("telegram_base_url", TELEGRAM_BASE_URL), data.get("channel")
            usable = isinstance(base, str) and urlsplit(base).scheme in ("http", "https")
            if usable and isinstance(channel, str) and TELEGRAM_CHANNEL.fullmatch(channel):
                return {**data, "url": f"{base.rstrip('/')}/s/{channel}"}
            return {**data, "url": f"{TELEGRAM_BASE_URL}/s/-"}  # the missing or bad keys are reported on their own
        return data

    _check_url = field_validator("url", "telegram_base_url")(classmethod(lambda cls, v: http_url(v)))

    @field_validator("channel")
    @classmethod
    def _channel(cls, value: str | None) -> str | None:
        if value is not None and not TELEGRAM_CHANNEL.fullmatch(value):
            raise ValueError(
                "a Telegram channel name is 5-32 letters, digits or underscores and starts with a letter "
                "(NAME in https://t.me/NAME, without @)"
            )
        return value

    @model_validator(mode="after")
    def _bounds(self) -> FeedConfig:
        if self.min_interval_s and self.max_interval_s and self.min_interval_s > self.max_interval_s:
            raise ValueError("min_interval_s must not exceed max_interval_s")
        if self.type == "telegram" and self.channel is None:
            raise ValueError("a telegram feed needs 'channel' (the NAME in https://t.me/NAME)")
        if self.type == "rss" and (self.channel is not None or "telegram_base_url" in self.model_fields_set):
            raise ValueError("'channel' and 'telegram_base_url' belong to feeds of 'type: telegram'")
        return self


class AlertsConfig(Strict):
    min_severity: int = Field(3, ge=1, le=5)
    max_age_hours: float = Field(72, ge=0)
    sinks: list[SinkConfig] = Field(default_factory=default_sinks)
    max_attempts: int = Field(12, ge=1, le=1000)
    max_retry_delay_s: float = Field(300, gt=0, le=86400)

    @model_validator(mode="after")
    def _unique_names(self) -> AlertsConfig:
        names = [sink_name(s, i) for i, s in enumerate(self.sinks)]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"sink names must be unique (give each a 'name'): {', '.join(dupes)}")
        return self


class SmtpConfig(Strict):
    host: str = "localhost"
    port: int = Field(25, ge=1, le=65535)
    sender: str = "monitor@example.org"
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    ssl: bool = False
    timeout_s: float = Field(30, gt=0, le=600)


class DigestConfig(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    cron: str
    to: list[str] = Field(min_length=1)
    min_severity: int = Field(2, ge=1, le=5)
    timezone: str = "UTC"
    event_types: list[str] | None = None

    _check_to = field_validator("to")(classmethod(lambda cls, v: email_addresses(v)))

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
        "us_embassy_or_diplomatic_incident": 48,
        "us_strike_in_iraq": 96,
        "iraq_expels_or_ends_us_presence": 120,
        "us_personnel_evacuation_or_advisory": 120,
    }


class EventsConfig(Strict):
    """How articles are clustered into events and when an event sends a revision."""

    window_hours: float = Field(72, ge=1, le=24 * 60)
    #: Per event type (its family): attacks are frequent and brief, a killing's aftermath lasts days.
    window_hours_by_type: dict[str, float] = Field(default_factory=_default_windows)
    join_threshold: float = Field(2.0, gt=0)
    revise_on_severity: bool = True
    revise_on_confirmation: bool = True
    revise_on_casualties: bool = True
    outlet_thresholds: list[int] = Field(default_factory=lambda: [3, 10])


class EscalationConfig(Strict):
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


class LogConfig(Strict):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"


class MetricsConfig(Strict):
    """The daemon's HTTP server: ``/metrics``, ``/healthz`` and ``/readyz``. Port 0 picks a free one (logged)."""

    enabled: bool = True
    host: str = Field("127.0.0.1", min_length=1)
    port: int = Field(9464, ge=0, le=65535)


class WebConfig(Strict):
    """The dashboard, served by the metrics server (``metrics.host``/``port``; see ``monitor.web``). With a ``token``
    (or ``MONITOR_WEB_TOKEN``) every page and API needs it; without one the dashboard only answers on loopback."""

    enabled: bool = True
    token: SecretStr | None = Field(None, min_length=16)


class Config(Strict):
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
    web: WebConfig = Field(default_factory=WebConfig)
    #: This replica's stable name among those sharing one Redis (its consumer name in the outbox groups);
    #: default: the host name. ``MONITOR_REPLICA`` in the environment overrides it.
    replica_name: str | None = Field(None, min_length=1, max_length=100, pattern=REPLICA_NAME)
    source: str = Field("<defaults>", exclude=True, description="where this config was read from")

    @property
    def fetch_workers(self) -> int:
        """The fetch workers to start: ``fetch.workers``, or for ``auto`` one per core once there are
        ``AUTO_WORKERS_FEEDS`` feeds (fewer poll in the daemon itself, where they cost no memory of their own)."""
        workers = self.fetch.workers
        if workers == "auto":
            return default_fetch_workers() if len(self.feeds) >= AUTO_WORKERS_FEEDS else 0
        return workers

    @model_validator(mode="after")
    def _unique_feeds(self) -> Config:
        names = [f.name for f in self.feeds]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"feed names must be unique: {', '.join(dupes)}")
        if (self.digests or any(s.type == "email" for s in self.alerts.sinks)) and self.smtp is None:
            raise ValueError("digests and email sinks need an 'smtp' section")
        return self
