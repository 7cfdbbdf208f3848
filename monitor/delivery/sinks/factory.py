"""Builds the configured sinks. Built-in sinks are constructed here exactly as a third-party one would be."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TextIO

import aiohttp

from monitor import config as cfg
from monitor.config.addresses import bad_addresses
from monitor.core.clock import Clock
from monitor.core.errors import ConfigError, FetchError, Problem
from monitor.delivery.email.smtp import Mailer, SmtpMailer
from monitor.delivery.sinks import Sink
from monitor.delivery.sinks.console import ConsoleSink
from monitor.delivery.sinks.email import EmailSink
from monitor.delivery.sinks.file import FileSink
from monitor.delivery.sinks.webhook import WebhookSink
from monitor.network.guard import check_url

__all__ = ["build_sinks"]


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
) -> list[Sink]:
    """One sink per configured entry, named by ``monitor.config.sink_name`` (the outbox group names).

    Each sink carries its ``min_severity`` (None = every alert); the outbox acknowledges alerts below it without
    sending them. Raises ``ConfigError`` naming every sink that cannot be built (e.g. a bad ``whsec_`` secret);
    ``source`` is the config file's path, used in those problems. Unless ``allow_private_networks`` (pass
    ``config.fetch.allow_private_networks``), a webhook URL whose host is a non-public IP literal is refused
    here; host names are checked when resolved, by the session's guard (``monitor.network.guard.make_session``).
    E-mail sinks send through ``mailer``, else through an ``SmtpMailer`` on ``smtp`` (pass ``config.smtp``);
    their recipients are checked here.
    """
    built: list[Sink] = []
    problems: list[Problem] = []
    for index, entry in enumerate(sinks):
        name = cfg.sink_name(entry, index)
        if isinstance(entry, cfg.WebhookSink):
            try:
                check_url(entry.url, allow_private_networks)
            except FetchError as exc:  # its reason names the host only, never the (secret) path
                problems.append(Problem(source, None, f"alerts.sinks[{index}].url: {exc.reason}"))
                continue
            try:
                built.append(
                    WebhookSink(
                        name,
                        entry.url,
                        session,
                        secret=entry.secret,
                        timeout_s=entry.timeout_s,
                        clock=clock,
                        min_severity=entry.min_severity,
                        fmt=entry.format,
                    )
                )
            except ValueError as exc:
                problems.append(Problem(source, None, f"alerts.sinks[{index}].secret: {exc}"))
        elif isinstance(entry, cfg.ConsoleSink):
            built.append(ConsoleSink(name, stdout, min_severity=entry.min_severity))
        elif isinstance(entry, cfg.FileSink):
            built.append(FileSink(name, entry.path, min_severity=entry.min_severity))
        elif isinstance(entry, cfg.EmailSink):
            sink = _email_sink(entry, name, index, smtp, mailer, clock, source, problems)
            if sink is not None:
                built.append(sink)
        else:  # a sink type added to the config without a builder here
            problems.append(Problem(source, None, f"alerts.sinks[{index}]: no builder for {entry.type!r} sinks"))
    if problems:
        raise ConfigError(problems)
    return built


def _email_sink(
    entry: cfg.EmailSink,
    name: str,
    index: int,
    smtp: cfg.SmtpConfig | None,
    mailer: Mailer | None,
    clock: Clock | None,
    source: str,
    problems: list[Problem],
) -> EmailSink | None:
    if smtp is None:
        problems.append(Problem(source, None, f"alerts.sinks[{index}]: e-mail sinks need an 'smtp' section"))
        return None
    bad = bad_addresses(entry.to)
    if bad:
        problems.append(Problem(source, None, f"alerts.sinks[{index}].to: not an e-mail address: {', '.join(bad)}"))
        return None
    return EmailSink(
        name,
        mailer or SmtpMailer(smtp),
        sender=smtp.sender,
        to=entry.to,
        clock=clock,
        min_severity=entry.min_severity,
    )
