"""Sending digests: read a window of the alert log, claim the window once across replicas, render, send.

**Once per window, never silently dropped.** Before sending, a sender claims ``Keys.digest_sent(name, start)``
with ``SET NX`` and a short TTL, in a *sending* state (``monitor.storage.digests``). Then:

- sent: the claim becomes *sent* for a few windows (until the window can no longer be the latest, plus margin),
  so no replica and no restart sends that window again;
- refused for good (5xx, every recipient refused): the claim becomes *failed* for as long; retrying every minute
  would only repeat the refusal. The reason is logged as an error; ``monitor digest --send-now`` sends by hand;
- failed for now (4xx, timeout, server down, Redis error): the claim is deleted, so the next attempt may send;
- the process dies after claiming: the *sending* claim expires after ``sending_ttl_s`` (longer than the longest
  possible send) and the next attempt sends.

"The next attempt" is the catch-up job the daemon runs every ``CATCH_UP_EVERY_S`` seconds besides each digest's
cron job: both call ``send_scheduled``, which sends the latest window unless it was claimed. So a digest missed
while every replica was down goes out when one comes back, as long as its window is still the latest (older
windows are not replayed: the alerts themselves were delivered when they happened). Finishing a claim is a
compare-and-set on the claim's token, so a sender whose claim expired does not overwrite another's.

**A fresh install starts with the next window.** The first ``send_scheduled`` of a digest records when it was
first scheduled (``DigestStore.scheduled_since``, one key per digest, kept without expiry); a window that closed
before then is not sent: on a fresh install (or for a digest just added to the config) the latest window closed
before the monitor was watching, and mailing it at once would say nothing. An install that was down still has its
record, so the window it missed goes out when it comes back. An install from before the record counts as
scheduled since the window before the latest closed if it claimed that window; else it starts afresh too.

This is at-least-once: a sender that dies after its mail was accepted but before it marked the claim *sent* is
followed, after the TTL, by a second copy. Such a copy has the same Message-ID (it names the digest and the
window), so mail clients that deduplicate show it once. The other choice, at-most-once (mark *sent* before
sending), would turn every crash or outage at send time into a digest nobody receives and nobody is told about.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import structlog

from monitor.config import Config, DigestConfig
from monitor.config.addresses import bad_addresses
from monitor.core.clock import Clock, utc_iso
from monitor.core.errors import ConfigError, DeliveryError, PermanentDeliveryError, Problem, StoreError
from monitor.delivery.email.render import Rendered
from monitor.delivery.email.smtp import Mailer, SendResult, SmtpMailer
from monitor.digests.build import Digest, LogEntry, build_digest
from monitor.digests.render import digest_email, render_digest
from monitor.digests.window import Fires, FiresOf, Window, preview_window, scheduled_window
from monitor.storage.digests import Claim, DigestStore

__all__ = ["CATCH_UP_EVERY_S", "DigestOutcome", "DigestSender", "digest_sender"]

#: How often the daemon looks for a latest window that was not sent (a failed or crashed send).
CATCH_UP_EVERY_S = 60
#: A sending claim outlives the longest send by this much (reading the log and rendering included).
SENDING_MARGIN_S = 60
#: The most alert-log entries one digest reads (about a month of a very busy feed set); more are left out.
MAX_ENTRIES = 20_000

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class DigestOutcome:
    """What one attempt did: ``sent``, ``claimed`` (another sender has or had it), ``retry`` (failed for now),
    ``failed`` (refused for good) or ``none`` (the schedule has not fired since the digest was first scheduled)."""

    status: str
    window: Window | None = None
    digest: Digest | None = None
    reason: str = ""


def _level(entry: LogEntry | None) -> int | None:
    value = entry.alert.get("escalation_level") if entry else None
    return min(5, max(1, value)) if isinstance(value, int) and not isinstance(value, bool) else None


class DigestSender:
    """Builds and sends the configured digests; one per process, shared by the cron jobs and the catch-up job.

    ``fires`` gives each digest's fire times from its cron expression and time zone (``monitor.service.cron.fires``,
    the same arithmetic the daemon schedules the digests with).
    """

    def __init__(
        self,
        store: DigestStore,
        mailer: Mailer,
        *,
        sender: str,
        clock: Clock,
        fires: FiresOf,
        sending_ttl_s: float | None = None,
    ) -> None:
        self._store = store
        self._mailer = mailer
        self._sender = sender
        self._clock = clock
        self._fires = fires
        self.sending_ttl_s = sending_ttl_s if sending_ttl_s is not None else mailer.max_send_s + SENDING_MARGIN_S

    # -- reading -----------------------------------------------------------------------------------------

    async def read(self, window: Window) -> tuple[list[LogEntry], int | None]:
        """The window's alert-log entries (at most ``MAX_ENTRIES``) and the escalation level before it."""
        start_ms = int(window.start.timestamp() * 1000)
        end_ms = int(window.end.timestamp() * 1000) - 1  # the window is half-open
        logged = await self._store.read_log(start_ms, end_ms, LogEntry.from_stream, enough=MAX_ENTRIES)
        if logged.truncated:
            log.warning("digest_truncated", window=window.key, entries=len(logged.entries))
        return logged.entries[:MAX_ENTRIES], _level(logged.before)

    async def compose(self, digest: DigestConfig, window: Window) -> Digest:
        """The digest of ``window`` as ``digest`` configures it."""
        entries, level = await self.read(window)
        return build_digest(
            digest.name,
            window,
            entries,
            timezone=digest.timezone,
            min_severity=digest.min_severity,
            event_types=digest.event_types,
            level_before=level,
        )

    async def preview(self, digest: DigestConfig) -> tuple[Digest, Rendered]:
        """What a digest sent now would say (since its latest scheduled fire); nothing is claimed or sent."""
        window = preview_window(self._fires(digest.cron, digest.timezone).latest, self._clock.now())
        built = await self.compose(digest, window)
        return built, render_digest(built)

    # -- sending -----------------------------------------------------------------------------------------

    def _message(self, built: Digest, digest: DigestConfig, *, manual: bool) -> EmailMessage:
        return digest_email(built, sender=self._sender, to=digest.to, date=self._clock.now(), manual=manual)

    async def send_scheduled(self, digest: DigestConfig) -> DigestOutcome:
        """Send the latest window's digest unless some sender claimed it; see the module docstring.

        Never raises: it runs as a scheduler job, and every outcome is logged.
        """
        bound = log.bind(digest=digest.name)
        fires = self._fires(digest.cron, digest.timezone)
        window = scheduled_window(fires.latest, self._clock.now())
        if window is None:
            return DigestOutcome("none")
        bound = bound.bind(window=window.key)
        try:
            if window.end < await self._scheduled_since(digest, fires, window):
                bound.debug("digest_window_before_first_schedule")
                return DigestOutcome("none", window)
            claim = await self._store.claim(digest.name, window.key, self.sending_ttl_s)
        except StoreError as exc:
            bound.warning("digest_claim_failed", reason=str(exc))
            return DigestOutcome("retry", window, reason=str(exc))
        if claim is None:
            bound.debug("digest_already_claimed")
            return DigestOutcome("claimed", window)
        upcoming = fires.after(window.end)
        keep = (upcoming - window.end if upcoming else timedelta(days=1)) + max(window.length, timedelta(hours=1)) * 2
        try:
            built = await self.compose(digest, window)
            result = await self._mailer.send(self._message(built, digest, manual=False), digest.to)
        except PermanentDeliveryError as exc:
            await self._finish(claim, f"failed {utc_iso(self._clock.now())} {exc.reason}", keep)
            bound.error("digest_failed", reason=exc.reason, retry=False)
            return DigestOutcome("failed", window, reason=exc.reason)
        except (DeliveryError, StoreError) as exc:
            await self._release(claim)
            bound.warning("digest_failed", reason=str(exc), retry=True)
            return DigestOutcome("retry", window, reason=str(exc))
        except Exception as exc:  # a bug: release, so it is retried (and logged) rather than silently lost
            await self._release(claim)
            bound.exception("digest_crashed")
            return DigestOutcome("retry", window, reason=type(exc).__name__)
        if not await self._finish(claim, f"sent {utc_iso(self._clock.now())}", keep):
            bound.warning("digest_claim_lost", reason="the sending claim expired and another sender took it")
        self._log_sent(bound, built, result)
        return DigestOutcome("sent", window, built)

    async def _scheduled_since(self, digest: DigestConfig, fires: Fires, window: Window) -> datetime:
        """When ``digest`` was first scheduled (recorded now if never); see the module docstring."""
        previous = scheduled_window(fires.latest, window.start)
        earlier = (previous.key, utc_iso(previous.end)) if previous is not None else None
        since = await self._store.scheduled_since(digest.name, utc_iso(self._clock.now()), earlier=earlier)
        try:
            moment = datetime.fromisoformat(since)
        except ValueError:  # not ours (edited by hand): treat the digest as long scheduled rather than skip a window
            return datetime.min.replace(tzinfo=UTC)
        return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)

    async def send_now(self, digest: DigestConfig) -> DigestOutcome:
        """Send what a digest sent now would say, at once (``monitor digest --send-now``).

        The claim is keyed ``manual-<now>``, not on a scheduled window's start: a manual send covers the window
        that the *next* scheduled digest will also cover (since the latest fire), and claiming that window's key
        would suppress the scheduled digest. Raises ``DeliveryError`` (or ``PermanentDeliveryError``) on failure.
        """
        now = self._clock.now()
        window = preview_window(self._fires(digest.cron, digest.timezone).latest, now)
        claim = await self._store.claim(digest.name, f"manual-{utc_iso(now)}", self.sending_ttl_s)
        if claim is None:
            return DigestOutcome("claimed", window)
        try:
            built = await self.compose(digest, window)
            result = await self._mailer.send(self._message(built, digest, manual=True), digest.to)
        except BaseException:
            await self._release(claim)
            raise
        await self._finish(claim, f"sent {utc_iso(self._clock.now())}", timedelta(days=7))
        self._log_sent(log.bind(digest=digest.name, window=f"manual-{utc_iso(now)}"), built, result)
        return DigestOutcome("sent", window, built)

    @staticmethod
    def _log_sent(bound: Any, built: Digest, result: SendResult) -> None:
        # Refused recipients are recorded as the e-mail sink records them: the digest counts as sent.
        extra = {"refused": result.refused} if result.refused else {}
        bound.info(
            "digest_sent",
            events=built.events,
            escalation_level=built.level_end,
            recipients=len(result.accepted),
            **extra,
        )

    async def catch_up(self, digests: Sequence[DigestConfig]) -> None:
        """``send_scheduled`` for every digest: what a failed or crashed send left undone goes out now."""
        for digest in digests:
            await self.send_scheduled(digest)

    async def _finish(self, claim: Claim, state: str, keep: timedelta) -> bool:
        try:
            return await self._store.finish(claim, state, keep)
        except StoreError as exc:
            # The claim then lapses after its short TTL and the digest may go out twice: at least once.
            log.warning("digest_claim_not_recorded", key=claim.key, reason=str(exc))
            return False

    async def _release(self, claim: Claim) -> None:
        with contextlib.suppress(StoreError):  # if Redis is gone, the claim's TTL releases it
            await self._store.release(claim)


def digest_sender(
    config: Config, store: DigestStore, clock: Clock, *, fires: FiresOf, mailer: Mailer | None = None
) -> DigestSender:
    """The sender for ``config.digests``; checks every digest's schedule (with ``fires``) and recipients first
    (``ConfigError`` with each problem), so a typo stops the start rather than a digest a week later."""
    problems: list[Problem] = []
    for index, digest in enumerate(config.digests):
        try:
            fires(digest.cron, digest.timezone)
        except ValueError as exc:
            problems.append(Problem(config.source, None, f"digests[{index}]: {exc}"))
        bad = bad_addresses(digest.to)
        if bad:
            problems.append(
                Problem(config.source, None, f"digests[{index}].to: not an e-mail address: {', '.join(bad)}")
            )
    if config.smtp is None:
        problems.append(Problem(config.source, None, "digests need an 'smtp' section"))
    if problems:
        raise ConfigError(problems)
    assert config.smtp is not None
    mailer = mailer or SmtpMailer(config.smtp)
    return DigestSender(store, mailer, sender=config.smtp.sender, clock=clock, fires=fires)
