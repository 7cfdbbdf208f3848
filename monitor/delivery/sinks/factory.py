"""Builds the configured sinks through a registry keyed by sink type (and, for webhooks, by format).

A builder takes a config entry and a ``SinkContext`` (the sink's name and what a sink may share: the HTTP session,
stdout, the clock, the SMTP settings) and returns a ``Sink``, or raises ``SinkSetupError`` naming the entry's key
at fault. The built-in sinks register at the end of this module through ``register_sink``, exactly as a
third-party one would; a later registration for the same key replaces the earlier one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

import aiohttp

from monitor import config as cfg
from monitor.config.addresses import bad_addresses
from monitor.core.clock import Clock
from monitor.core.errors import ConfigError, FetchError, Problem
from monitor.delivery.email.smtp import Mailer, SmtpMailer
from monitor.delivery.routing import Route
from monitor.delivery.sinks import Sink
from monitor.delivery.sinks.apprise_sink import AppriseSetupError, AppriseSink
from monitor.delivery.sinks.console import ConsoleSink
from monitor.delivery.sinks.discord_messages import DiscordSink
from monitor.delivery.sinks.email import EmailSink
from monitor.delivery.sinks.file import FileSink
from monitor.delivery.sinks.formats import FORMATS
from monitor.delivery.sinks.slack_bot import SlackBotSink
from monitor.delivery.sinks.telegram_bot import TelegramSink
from monitor.delivery.sinks.webhook import WebhookSink
from monitor.network.guard import check_url
from monitor.storage.messages import MessageStore

__all__ = ["SINKS", "SinkBuilder", "SinkContext", "SinkRegistry", "SinkSetupError", "build_sinks", "register_sink"]


class SinkSetupError(Exception):
    """A sink cannot be built from its entry; ``key`` is the entry's key at fault (None: the entry as a whole)."""

    def __init__(self, reason: str, *, key: str | None = None) -> None:
        self.reason = reason
        self.key = key
        super().__init__(reason)


@dataclass(frozen=True, slots=True)
class SinkContext:
    """What a builder gets besides its entry: the sink's name and what sinks may share."""

    name: str
    session: aiohttp.ClientSession
    stdout: TextIO
    clock: Clock | None
    allow_private_networks: bool
    smtp: cfg.SmtpConfig | None
    mailer: Mailer | None
    #: Where the chat sinks remember which message shows which event (None: they never edit, only post).
    messages: MessageStore | None = None


#: Builds one sink from its config entry (``entry.type`` selected it); raises ``SinkSetupError``.
SinkBuilder = Callable[[Any, SinkContext], Sink]


class SinkRegistry:
    """Builders by ``(type, format)``: ``format`` is the webhook format, None for a builder of every format."""

    def __init__(self) -> None:
        self._builders: dict[tuple[str, str | None], SinkBuilder] = {}

    def register(self, sink_type: str, builder: SinkBuilder, *, fmt: str | None = None) -> None:
        """``builder`` makes the sinks of ``sink_type`` (only those in format ``fmt``, when given)."""
        self._builders[(sink_type, fmt)] = builder

    def builder_for(self, entry: Any) -> SinkBuilder | None:
        """The builder of ``entry``: the one for its type and format, else the one for its type."""
        fmt = getattr(entry, "format", None)
        return self._builders.get((entry.type, fmt)) or self._builders.get((entry.type, None))

    def registered(self) -> set[tuple[str, str | None]]:
        """Every ``(type, format)`` with a builder."""
        return set(self._builders)

    def copy(self) -> SinkRegistry:
        """A registry with the same builders, to register more without changing this one."""
        other = SinkRegistry()
        other._builders = dict(self._builders)
        return other


#: The registry ``build_sinks`` uses unless given another; the built-in sinks are registered in it below.
SINKS = SinkRegistry()


def register_sink(sink_type: str, builder: SinkBuilder, *, fmt: str | None = None) -> None:
    """Register ``builder`` in ``SINKS`` for ``sink_type`` (and webhook format ``fmt``)."""
    SINKS.register(sink_type, builder, fmt=fmt)


def build_sinks(
    sinks: Sequence[cfg.SinkConfig],
    session: aiohttp.ClientSession,
    stdout: TextIO,
    *,
    clock: Clock | None = None,
    source: str = "<config>",
    allow_private_networks: bool = False,
    smtp: cfg.SmtpConfig | None = None,
    mailer: Mailer | None = None,
    registry: SinkRegistry = SINKS,
    messages: MessageStore | None = None,
) -> list[Sink]:
    """One sink per configured entry, named by ``monitor.config.sink_name`` (the outbox group names).

    Each sink carries its ``min_severity`` (None = every alert); the outbox acknowledges alerts below it without
    sending them. Raises ``ConfigError`` naming every sink that cannot be built (e.g. a bad ``whsec_`` secret);
    ``source`` is the config file's path, used in those problems. Unless ``allow_private_networks`` (pass
    ``config.fetch.allow_private_networks``), a webhook URL whose host is a non-public IP literal is refused
    here; host names are checked when resolved, by the session's guard (``monitor.network.guard.make_session``).
    E-mail sinks send through ``mailer``, else through an ``SmtpMailer`` on ``smtp`` (pass ``config.smtp``);
    their recipients are checked here. Chat sinks that edit their messages remember them in ``messages``. Every
    sink gets the ``route`` of its entry's routing keys (``monitor.delivery.routing``), which the outbox applies.
    """
    built: list[Sink] = []
    problems: list[Problem] = []
    for index, entry in enumerate(sinks):
        builder = registry.builder_for(entry)
        if builder is None:  # a sink type added to the config without a builder
            problems.append(Problem(source, None, f"alerts.sinks[{index}]: no builder for {entry.type!r} sinks"))
            continue
        name = cfg.sink_name(entry, index)
        context = SinkContext(name, session, stdout, clock, allow_private_networks, smtp, mailer, messages)
        try:
            built.append(_routed(builder(entry, context), entry))
        except SinkSetupError as exc:
            where = f"alerts.sinks[{index}]" + (f".{exc.key}" if exc.key else "")
            problems.append(Problem(source, None, f"{where}: {exc.reason}"))
    if problems:
        raise ConfigError(problems)
    return built


def _routed(sink: Sink, entry: Any) -> Sink:
    """The sink with its entry's route, unless its builder gave it one."""
    if getattr(sink, "route", None) is None:
        sink.route = Route.of(entry)  # type: ignore[attr-defined]
    return sink


# -- the built-in sinks ------------------------------------------------------------------------------------


def _check_target(url: str, context: SinkContext, key: str) -> None:
    """The private-network guard on a sink's URL, its refusal reported at the config ``key``."""
    try:
        check_url(url, context.allow_private_networks)
    except FetchError as exc:  # its reason names the host only, never the (secret) path
        raise SinkSetupError(exc.reason, key=key) from exc


def _webhook(entry: cfg.WebhookSink, context: SinkContext) -> Sink:
    _check_target(entry.url, context, "url")
    try:
        return WebhookSink(
            context.name,
            entry.url,
            context.session,
            secret=entry.secret,
            timeout_s=entry.timeout_s,
            clock=context.clock,
            min_severity=entry.min_severity,
            fmt=entry.format,
        )
    except ValueError as exc:
        raise SinkSetupError(str(exc), key="secret") from exc


def _console(entry: cfg.ConsoleSink, context: SinkContext) -> Sink:
    return ConsoleSink(context.name, context.stdout, min_severity=entry.min_severity)


def _file(entry: cfg.FileSink, context: SinkContext) -> Sink:
    return FileSink(context.name, entry.path, min_severity=entry.min_severity)


def _email(entry: cfg.EmailSink, context: SinkContext) -> Sink:
    if context.smtp is None:
        raise SinkSetupError("e-mail sinks need an 'smtp' section")
    bad = bad_addresses(entry.to)
    if bad:
        raise SinkSetupError(f"not an e-mail address: {', '.join(bad)}", key="to")
    return EmailSink(
        context.name,
        context.mailer or SmtpMailer(context.smtp),
        sender=context.smtp.sender,
        to=entry.to,
        clock=context.clock,
        min_severity=entry.min_severity,
    )


def _discord(entry: cfg.WebhookSink, context: SinkContext) -> Sink:
    if entry.secret is not None:
        raise SinkSetupError("discord webhooks cannot verify signatures; remove the secret", key="secret")
    _check_target(entry.url, context, "url")
    return DiscordSink(
        context.name,
        entry.url,
        context.session,
        context.messages,
        timeout_s=entry.timeout_s,
        clock=context.clock,
        min_severity=entry.min_severity,
    )


def _slack(entry: cfg.SlackSink, context: SinkContext) -> Sink:
    _check_target(entry.api_url, context, "api_url")
    return SlackBotSink(
        context.name,
        entry.token,
        entry.channel,
        context.session,
        context.messages,
        api_url=entry.api_url,
        timeout_s=entry.timeout_s,
        clock=context.clock,
        min_severity=entry.min_severity,
    )


def _telegram(entry: cfg.TelegramSink, context: SinkContext) -> Sink:
    _check_target(entry.api_url, context, "api_url")
    return TelegramSink(
        context.name,
        entry.token,
        entry.chat_id,
        context.session,
        context.messages,
        api_url=entry.api_url,
        timeout_s=entry.timeout_s,
        min_severity=entry.min_severity,
    )


def _apprise(entry: cfg.AppriseSink, context: SinkContext) -> Sink:
    try:
        return AppriseSink(
            context.name,
            entry.urls,
            timeout_s=entry.timeout_s,
            allow_private_networks=context.allow_private_networks,
            min_severity=entry.min_severity,
        )
    except ImportError as exc:
        raise SinkSetupError("needs the apprise package: pip install 'escalation-monitor[apprise]'") from exc
    except AppriseSetupError as exc:
        raise SinkSetupError(str(exc), key=f"urls[{exc.index}]") from exc


for _format in FORMATS:
    register_sink("webhook", _webhook, fmt=_format)
register_sink("webhook", _discord, fmt="discord")  # edits its messages; the other formats only post
register_sink("slack", _slack)
register_sink("telegram", _telegram)
register_sink("apprise", _apprise)
register_sink("console", _console)
register_sink("file", _file)
register_sink("email", _email)
