"""What the CLI commands do, with their side effects: logging set-up, Redis start-up, the app's lifetime.

Kept apart from ``cli.py`` (arguments and exit codes) and ``app.py`` (wiring), so each stays small.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import TextIO

import structlog

from monitor.config import Config, DigestConfig, WebhookSink, load_config, sink_name, with_environment
from monitor.core.clock import SystemClock
from monitor.core.errors import ConfigError, Problem, StoreError
from monitor.core.logs import Redactor, configure_logging
from monitor.core.memory import limit_heap_growth
from monitor.core.observe import NULL_OBSERVER
from monitor.detection.matcher import Matcher
from monitor.detection.rulefile import RuleSet, load_rules
from monitor.service.cron import CONFIG_CHECKS, fires
from monitor.service.daemon import Daemon
from monitor.service.metrics import Metrics
from monitor.service.root import App, build_app, replica_name
from monitor.service.routes import check_routes
from monitor.storage.connection import EmbeddedRedis, Redis, close, connect, store_errors
from monitor.storage.keys import Keys
from monitor.storage.outbox import outbox_counts
from monitor.storage.pollstate import PollState
from monitor.storage.safety import check_redis_safety

__all__ = ["check", "load", "open_redis", "run_daemon", "run_once", "status"]

log = structlog.get_logger(__name__)
_STARTUP_BACKOFF_S = (0.5, 15.0)


def load(path: Path, env: Mapping[str, str]) -> tuple[Config, RuleSet]:
    """Config and rule pack; every problem of both is reported together."""
    config = load_config(path, env=env, checks=CONFIG_CHECKS)
    return config, load_rules(config.rules)


def _secrets(config: Config) -> tuple[list[str], list[str]]:
    """The secret values and the secret-bearing URLs of a config, for the log redactor."""
    secrets: list[str] = []
    urls: list[str] = []
    for sink in config.alerts.sinks:
        if isinstance(sink, WebhookSink):
            urls.append(sink.url)
            if sink.secret:
                secrets.append(sink.secret)
    if config.smtp and config.smtp.password:
        secrets.append(config.smtp.password)
    if config.redis.sentinel_password:
        secrets.append(config.redis.sentinel_password)
    return secrets, urls


def _redactor(config: Config) -> Redactor:
    return Redactor(*_secrets(config))


@contextlib.asynccontextmanager
async def open_redis(config: Config, *, attach: bool = False) -> AsyncIterator[Redis]:
    """A client for the configured Redis; ``embedded`` starts (or adopts) the bundled server and stops it after.

    With ``attach`` (the operator commands: status, dlq) an embedded server a running daemon owns is used as it
    is, so those commands work next to the daemon. Redis failures surface as ``StoreError``.
    """
    server: EmbeddedRedis | None = None
    url = config.redis.url
    if url == "embedded" and config.redis.mode == "standalone":
        embedded = EmbeddedRedis(config.redis.data_dir)
        running = embedded.attach() if attach else None
        if running:
            url = running
        else:
            server = embedded
            url = await asyncio.to_thread(server.start)
            log.info("redis_started", mode="embedded", data_dir=str(server.data_dir))
    try:
        client = connect(url, config.redis)
    except ValueError as exc:  # what the URL check leaves to the client, e.g. a query parameter it cannot read
        raise ConfigError([Problem(config.source, None, f"redis.url (or REDIS_URL): {exc}")]) from exc
    try:
        # Storage raises StoreError already; this also covers code that still calls the client itself. OS errors
        # are left alone: the commands write their output inside this block.
        with store_errors(os_errors=False):
            yield client
    finally:
        await close(client)
        if server is not None:
            await asyncio.to_thread(server.stop)


def redis_address(config: Config) -> str:
    """The URL a fetch worker connects to: the configured one, or the embedded server's socket (which
    ``open_redis`` has started or adopted by then)."""
    if config.redis.url == "embedded" and config.redis.mode == "standalone":
        return EmbeddedRedis(config.redis.data_dir).url
    return config.redis.url


async def _start_when_redis_ready(app: App, stop: asyncio.Event | None = None) -> bool:
    """``app.start()``, retried with backoff while Redis is unreachable; False if asked to stop first."""
    delay = _STARTUP_BACKOFF_S[0]
    while True:
        try:
            await app.start()
            return True
        except StoreError as exc:
            log.error("redis_unavailable", reason=str(exc), retry_in_s=delay)
        if stop is None:
            await asyncio.sleep(delay)
        else:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            if stop.is_set():
                return False
        delay = min(delay * 2, _STARTUP_BACKOFF_S[1])


async def run_daemon(path: Path, env: Mapping[str, str]) -> int:
    limit_heap_growth()  # before the first worker thread (see monitor.core.memory)
    config, ruleset = load(path, env)
    redactor = configure_logging(level=config.log.level, fmt=config.log.format, redactor=_redactor(config))
    seen = [config]

    def redact_also(new: Config) -> None:
        # Old and new secrets both: deliverers of the old sinks may still log while they stop.
        seen.append(new)
        pairs = [_secrets(c) for c in seen[-2:]]
        redactor.update([s for p in pairs for s in p[0]], [u for p in pairs for u in p[1]])

    replica = replica_name(config)
    metrics = Metrics(replica=replica) if config.metrics.enabled else None
    async with open_redis(config) as redis:
        app = await build_app(
            config,
            ruleset,
            clock=SystemClock(),
            redis=redis,
            consumer=replica,
            observer=metrics or NULL_OBSERVER,
            state_dir=config.redis.data_dir,
            redis_url=redis_address(config),
            redactor=redactor,
        )
        daemon = Daemon(app, metrics=metrics, loader=lambda: load(path, env), on_reload=redact_also)
        daemon.install_signal_handlers()
        try:
            await daemon.open_endpoints()
            if await _start_when_redis_ready(app, daemon.should_exit):
                await check_redis_safety(redis, require_safe=config.redis.require_safe)
                await daemon.serve()
        finally:
            await daemon.close_endpoints()
            await app.close()
    return 0


async def run_once(path: Path, env: Mapping[str, str], *, deliver_timeout_s: float) -> int:
    config, ruleset = load(path, env)
    configure_logging(level=config.log.level, fmt=config.log.format, redactor=_redactor(config))
    async with open_redis(config) as redis:
        # Without fetch leases: ``once`` fetches every feed, as its contract says, whoever polled it last.
        app = await build_app(
            config, ruleset, clock=SystemClock(), redis=redis, fetch_leases=False, state_dir=config.redis.data_dir,
            redis_url=redis_address(config), redactor=_redactor(config),
        )  # fmt: skip
        try:
            await app.start()
            results = await app.cycle()
            delivered = await app.deliver_pending(deliver_timeout_s)
            await app.trim_outbox()
        finally:
            await app.close()
    failed = sum(r is None for r in results)
    log.info("cycle_finished", feeds=len(results), failed=failed, delivered=delivered)
    return 0


def check(path: Path, env: Mapping[str, str]) -> str:
    """Validate everything; the summary printed by ``monitor check``."""
    config = load_config(path, env=env, checks=CONFIG_CHECKS)
    ruleset = load_rules(config.rules)
    check_routes(path, env, config, ruleset)
    matcher = Matcher(ruleset, min_severity=config.alerts.min_severity)
    by_status: dict[str, int] = {}
    for rule in ruleset.rules:
        by_status[rule.status] = by_status.get(rule.status, 0) + 1
    redis = "embedded (data in " + str(config.redis.data_dir) + ")" if config.redis.url == "embedded" else "external"
    if config.redis.mode != "standalone":
        redis = f"{config.redis.mode}, waiting for {config.redis.replicas_to_wait} replica(s) after each alert"
    lines = [
        f"config: {path} (ok)",
        f"redis: {redis}",
        f"feeds: {len(config.feeds)}" + "".join(f"\n  - {f.name}: every {f.interval_s}s {f.url}" for f in config.feeds),
        f"rules: {len(ruleset.rules)} in {len(ruleset.files)} files ("
        + ", ".join(f"{n} {s}" for s, n in sorted(by_status.items()))
        + f"), {len(ruleset.filters)} filters, "
        f"{len(ruleset.entities)} entities, {matcher.phrase_count} phrases",
        "event types: " + ", ".join(ruleset.event_types),
        f"alerts: min_severity {config.alerts.min_severity}, max_age_hours {config.alerts.max_age_hours:g}",
        "sinks: " + ", ".join(f"{sink_name(s, i)} ({s.type})" for i, s in enumerate(config.alerts.sinks)),
        f"replica: {replica_name(config)}",
        "metrics: "
        + (
            f"{config.metrics.host}:{config.metrics.port or '(any free port)'} (/metrics, /healthz, /readyz)"
            if config.metrics.enabled
            else "off"
        ),
        "dashboard: "
        + (
            f"http://{config.metrics.host}:{config.metrics.port or '(any free port)'}/"
            + (" (token required)" if config.web.token else " (loopback only, no token)")
            if config.metrics.enabled and config.web.enabled
            else "off"
        ),
    ]
    return "\n".join(lines)


async def status(path: Path, env: Mapping[str, str], out: TextIO) -> int:
    config = load_config(path, env=env, checks=CONFIG_CHECKS)
    keys = Keys()
    async with open_redis(config, attach=True) as redis:
        rows = []
        state = PollState(redis, keys)
        for feed in config.feeds:
            health = await state.feed_health(feed.name)
            rows.append(
                (
                    feed.name,
                    health.get("last_success", "never")[:19],
                    health.get("consecutive_errors", "0"),
                    health.get("last_status", "-"),
                    health.get("items_seen", "0"),
                    health.get("last_error", "")[:60],
                )
            )
        outbox = await outbox_counts(redis, keys)
    header = ("feed", "last success (UTC)", "errors", "status", "items", "last error")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip(), file=out)
    pending = ", ".join(f"{name} {count} pending" for name, count in outbox.pending) or "no sink has read it yet"
    print(f"\noutbox: {outbox.entries} entries ({pending}); dead letters: {outbox.dead}", file=out)
    return 0


async def dlq_list(path: Path, env: Mapping[str, str], out: TextIO, *, limit: int) -> int:
    from monitor.storage.deadletters import list_dead

    config = load_config(path, env=env, checks=CONFIG_CHECKS)
    async with open_redis(config, attach=True) as redis:
        for dead in await list_dead(redis, Keys(), limit):
            print(
                f"{dead.dead_id}  {dead.time}  sink={dead.sink}  alert={dead.alert_id}  attempts={dead.attempts}"
                f"  reason={dead.reason}",
                file=out,
            )
    return 0


async def dlq_retry(path: Path, env: Mapping[str, str], out: TextIO, *, ids: list[str]) -> int:
    from monitor.storage.deadletters import retry_dead

    config = load_config(path, env=env, checks=CONFIG_CHECKS)
    async with open_redis(config, attach=True) as redis:
        moved = await retry_dead(redis, Keys(), ids or "all")
    print(f"re-queued {len(moved)} alert(s)", file=out)
    return 0


def _digest_named(config: Config, name: str | None) -> DigestConfig:
    """The digest called ``name`` (the first one when None); a ``ConfigError`` naming the choices otherwise."""
    if not config.digests:
        raise ConfigError([Problem(config.source, None, "no digests are configured (see 'digests:')")])
    if name is None:
        return config.digests[0]
    for digest in config.digests:
        if digest.name == name:
            return digest
    known = ", ".join(d.name for d in config.digests)
    raise ConfigError([Problem(config.source, None, f"no digest named {name!r} (configured: {known})")])


async def digest_preview(path: Path, env: Mapping[str, str], out: TextIO, *, target: Path, name: str | None) -> int:
    """``monitor digest --preview OUT.html``: the HTML of what the digest would say if sent now; nothing is sent."""
    from monitor.digests.send import digest_sender
    from monitor.storage.digests import DigestStore

    config = load_config(path, env=env, checks=CONFIG_CHECKS)
    digest = _digest_named(config, name)
    async with open_redis(config, attach=True) as redis:
        sender = digest_sender(config, DigestStore(redis, Keys()), SystemClock(), fires=fires)
        built, rendered = await sender.preview(digest)
    await asyncio.to_thread(target.write_text, rendered.html, encoding="utf-8")
    print(f"wrote {target}: {rendered.subject}", file=out)
    print(f"window {built.window_label}; {built.events} event(s), {len(built.escalations)} level change(s)", file=out)
    return 0


async def digest_send_now(path: Path, env: Mapping[str, str], out: TextIO, *, name: str) -> int:
    """``monitor digest --send-now NAME``: send the digest at once (its scheduled windows are not touched)."""
    from monitor.digests.send import digest_sender
    from monitor.storage.digests import DigestStore

    config = load_config(path, env=env, checks=CONFIG_CHECKS)
    configure_logging(level=config.log.level, fmt=config.log.format, redactor=_redactor(config))
    digest = _digest_named(config, name)
    async with open_redis(config, attach=True) as redis:
        sender = digest_sender(config, DigestStore(redis, Keys()), SystemClock(), fires=fires)
        outcome = await sender.send_now(digest)
    if outcome.digest is None:
        print(f"digest {name}: another manual send of this moment is under way; nothing sent", file=out)
        return 1
    print(f"sent digest {name} to {len(digest.to)} recipient(s): {outcome.digest.subject}", file=out)
    return 0


def config_and_rules(path: Path, env: Mapping[str, str], rules: list[Path] | None) -> tuple[Config, RuleSet]:
    """For offline tools: ``-r`` rules win, and the config file is optional when they are given."""
    config = offline_config(path, env, rules)
    return config, load_rules(rules or config.rules)


def offline_config(path: Path, env: Mapping[str, str], rules: list[Path] | None) -> Config:
    """The config of an offline tool: the file, or the defaults when ``-r`` rules are given and there is none."""
    if path.exists() or not rules:
        return load_config(path, env=env, checks=CONFIG_CHECKS)
    return with_environment(Config(), env)


async def replay_command(
    config: Config,
    ruleset: RuleSet,
    paths: list[Path],
    *,
    speed: float,
    with_sinks: bool,
    out: TextIO,
    backlog: bool = False,
) -> int:
    from monitor.service.replay import replay

    async with open_redis(config, attach=True) as redis:
        await replay(paths, config, ruleset, redis, out=out, speed=speed, with_sinks=with_sinks, backlog=backlog)
    return 0


async def event_scores(config: Config, ruleset: RuleSet, paths: list[Path], out: TextIO) -> int:
    """For ``rules test --corpus``: how the labelled files cluster into events when replayed, scores only."""
    from monitor.service.replay import read_labels, replay

    if not read_labels(paths):
        print("  no event_key labels: nothing to score", file=out)
        return 0
    async with open_redis(config, attach=True) as redis:
        await replay(paths, config, ruleset, redis, out=out, timeline=io.StringIO())  # the scores, not each alert
    return 0


async def events_command(path: Path, env: Mapping[str, str], *, days: float, as_json: bool, out: TextIO) -> int:
    from monitor.service.replay import list_events

    config = load_config(path, env=env, checks=CONFIG_CHECKS)
    async with open_redis(config, attach=True) as redis:
        return await list_events(redis, days=days, out=out, as_json=as_json)
