"""What a SIGHUP reload changes: the differences between the running configuration and a new one.

Only data here; the daemon applies it (``Daemon.reload``) and the app builds what is new (``App.prepare_reload``).
Feeds, rules, sinks, alert thresholds, event and escalation settings apply live. The sections in
``RESTART_SECTIONS`` are wired into long-lived objects (the Redis client, the HTTP session and parser pool, the
metrics server, the consumer name, the logging set-up, the digest jobs); a change to them is reported as needing a
restart and otherwise ignored until then.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from monitor.config import (
    AppriseSink,
    Config,
    EmailSink,
    FeedConfig,
    SlackSink,
    TelegramSink,
    WebhookSink,
    sink_name,
)

__all__ = ["RESTART_SECTIONS", "FeedChanges", "feed_changes", "restart_needed", "sink_signatures"]

RESTART_SECTIONS = ("redis", "fetch", "metrics", "replica_name", "log", "digests", "smtp")


@dataclass(frozen=True, slots=True)
class FeedChanges:
    added: list[FeedConfig]
    removed: list[FeedConfig]
    changed: list[FeedConfig]  # the new definitions of feeds whose URL or schedule changed

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)


def feed_changes(old: Config, new: Config) -> FeedChanges:
    before = {f.name: f for f in old.feeds}
    after = {f.name: f for f in new.feeds}
    return FeedChanges(
        added=[f for name, f in after.items() if name not in before],
        removed=[f for name, f in before.items() if name not in after],
        changed=[f for name, f in after.items() if name in before and before[name] != f],
    )


def sink_signatures(config: Config) -> dict[str, str]:
    """Sink name -> everything its deliverer depends on; a sink whose signature is unchanged keeps running."""
    signatures: dict[str, str] = {}
    for index, entry in enumerate(config.alerts.sinks):
        depends: dict[str, object] = {
            "sink": entry.model_dump(mode="json"),
            "max_attempts": config.alerts.max_attempts,
            "max_retry_delay_s": config.alerts.max_retry_delay_s,
        }
        if isinstance(entry, EmailSink):
            depends["smtp"] = config.smtp.model_dump(mode="json") if config.smtp else None
        if isinstance(entry, WebhookSink | SlackSink | TelegramSink | AppriseSink):
            depends["allow_private_networks"] = config.fetch.allow_private_networks
        signatures[sink_name(entry, index)] = json.dumps(depends, sort_keys=True)
    return signatures


def restart_needed(old: Config, new: Config) -> list[str]:
    """The sections that differ but apply only at the next start."""
    return [s for s in RESTART_SECTIONS if getattr(old, s) != getattr(new, s)]
