"""Digests: cron windows, what a digest says (pure), and sending it through a real SMTP server on loopback with
the once-per-window claim on the real Redis (two racing senders, a sender that dies after claiming, failures)."""

from __future__ import annotations

import asyncio
import io
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import redis as sync_redis
import redis.asyncio as aioredis
from apscheduler.triggers.cron import CronTrigger

from monitor.cli import main
from monitor.config import Config, DigestConfig, load_config
from monitor.core.clock import utc_iso
from monitor.core.errors import ConfigError
from monitor.delivery.email.smtp import SendResult, SmtpMailer
from monitor.digests.build import LogEntry, build_digest, sparkline
from monitor.digests.render import render_digest
from monitor.digests.send import DigestSender
from monitor.digests.window import Window, preview_window, scheduled_window
from monitor.service.bootstrap import digest_send_now
from monitor.service.cron import CONFIG_CHECKS, check_schedule, cron_trigger, fires
from monitor.service.daemon import Daemon
from monitor.storage.digests import DigestStore
from monitor.storage.keys import Keys
from tests.support.alerts import T0, FakeClock, escalation_alert, event_alert, log_alert
from tests.support.daemons import start_daemon, stop_daemon
from tests.support.smtp_server import SmtpServer

KEYS = Keys()  # the CLI uses the default namespace
DAILY = DigestConfig(name="daily", cron="0 7 * * *", to=["desk@example.org"], min_severity=3)
WINDOW = Window(T0, T0 + timedelta(days=1))
AFTER = T0 + timedelta(days=1, minutes=1)  # just after the fire that closes WINDOW


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def entry(alert: dict[str, Any], hours: float) -> LogEntry:
    return LogEntry(at(hours), alert)


async def fill_log(redis: aioredis.Redis, **killing: Any) -> None:
    """A day: an attack and its update, a strike, a killing (with ``killing``'s changes), a low-severity threat, two
    level changes."""
    await log_alert(redis, KEYS, event_alert(9, at=at(-2), level=2), at(-2))  # before the window
    await log_alert(redis, KEYS, event_alert(1, event_type="attack_on_us_forces_in_iraq", severity=3, level=2), at(1))
    await log_alert(redis, KEYS, event_alert(2, severity=4, at=at(3), level=2), at(3))
    await log_alert(redis, KEYS, escalation_alert(2, 3, at=at(5)), at(5))
    update = event_alert(1, revision=2, event_type="attack_on_us_forces_in_iraq", severity=4, at=at(6))
    await log_alert(redis, KEYS, update, at(6))
    killed = event_alert(3, event_type="high_value_target_killed", severity=5, at=at(9), **killing)
    await log_alert(redis, KEYS, killed, at(9))
    await log_alert(redis, KEYS, escalation_alert(3, 4, at=at(10)), at(10))
    await log_alert(redis, KEYS, event_alert(4, event_type="iran_retaliation_or_threat", severity=2, level=4), at(14))
    await log_alert(redis, KEYS, event_alert(5, at=at(25)), at(25))  # after the window


async def scheduled_long_ago(redis: aioredis.Redis, *names: str) -> None:
    """The digests ``names`` (default: daily) have been scheduled for a month: an install that is not fresh, whose
    latest window is due (see ``monitor.digests.send``)."""
    for name in names or ("daily",):
        await DigestStore(redis, KEYS).scheduled_since(name, utc_iso(T0 - timedelta(days=30)))


def sender(smtp: SmtpServer, redis: aioredis.Redis, now: datetime = AFTER, **options: Any) -> DigestSender:
    mailer = SmtpMailer(smtp.config(), local_hostname="monitor.test")
    store = DigestStore(redis, KEYS)
    return DigestSender(store, mailer, sender="monitor@example.org", clock=FakeClock(now), fires=fires, **options)


class HangingMailer:
    """Claims are taken, then the "process" dies in the middle of the send."""

    max_send_s = 60.0

    def __init__(self) -> None:
        self.started = asyncio.Event()

    async def send(self, message: Any, recipients: Any) -> SendResult:
        self.started.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


# -- windows -----------------------------------------------------------------------------------------------


def test_cron_weekdays_follow_crontab_not_apscheduler() -> None:
    monday = datetime(2024, 1, 1, 12, tzinfo=UTC)
    for cron, weekday in (("0 7 * * 1", "Mon"), ("0 7 * * 0", "Sun"), ("0 7 * * 7", "Sun"), ("0 7 * * fri", "Fri")):
        fire = cron_trigger(cron, "UTC").get_next_fire_time(None, monday)
        assert fire is not None and fire.strftime("%a") == weekday, cron
    assert "mon,tue,wed,thu,fri" in str(cron_trigger("0 7 * * 1-5", "UTC"))
    assert "fri,sat,sun" in str(cron_trigger("0 7 * * 5-7", "UTC"))
    assert check_schedule("0 7 1 * 1", "UTC") == "restrict the day of the month or the day of the week, not both"
    assert "time zone" in (check_schedule("0 7 * * *", "Mars/Olympus") or "")
    assert check_schedule("61 * * * *", "UTC") and check_schedule("0 7 * *", "UTC")
    assert check_schedule("*/15 8-18 * * 1-5", "Europe/London") is None


def test_scheduled_window_runs_between_two_fires_in_the_digests_time_zone() -> None:
    latest = fires("0 7 * * *", "Europe/London").latest
    # Clocks went forward on 31 March 2024: that day's window is 23 hours long.
    window = scheduled_window(latest, datetime(2024, 3, 31, 12, tzinfo=UTC))
    assert window == Window(datetime(2024, 3, 30, 7, tzinfo=UTC), datetime(2024, 3, 31, 6, tzinfo=UTC))
    assert window.length == timedelta(hours=23) and window.key == "2024-03-30T07:00:00Z"
    # Exactly at a fire time, that fire closes the window.
    assert scheduled_window(latest, datetime(2024, 1, 5, 7, tzinfo=UTC)) == WINDOW
    weekly = scheduled_window(fires("30 6 * * 1", "UTC").latest, datetime(2024, 1, 3, tzinfo=UTC))
    assert weekly == Window(datetime(2023, 12, 25, 6, 30, tzinfo=UTC), datetime(2024, 1, 1, 6, 30, tzinfo=UTC))
    quarter = scheduled_window(fires("*/15 * * * *", "UTC").latest, datetime(2024, 1, 3, 12, 7, tzinfo=UTC))
    assert quarter is not None and quarter.length == timedelta(minutes=15)
    preview = preview_window(latest, AFTER)
    assert preview == Window(WINDOW.end, AFTER)


# -- what a digest says ------------------------------------------------------------------------------------


def day_entries() -> list[LogEntry]:
    return [
        entry(event_alert(1, event_type="attack_on_us_forces_in_iraq", severity=3, level=2), 1),
        entry(event_alert(2, severity=4, at=at(3), level=2), 3),
        entry(escalation_alert(2, 3, at=at(5)), 5),
        entry(event_alert(1, revision=2, event_type="attack_on_us_forces_in_iraq", severity=4, at=at(6)), 6),
        entry(event_alert(3, event_type="high_value_target_killed", severity=5, at=at(9)), 9),
        entry(escalation_alert(3, 4, at=at(10)), 10),
        entry(event_alert(4, event_type="iran_retaliation_or_threat", severity=2, level=4), 14),
        entry(event_alert(5, at=at(30)), 30),  # outside the window
    ]


def test_events_are_grouped_by_type_most_severe_first_with_their_latest_revision() -> None:
    digest = build_digest("daily", WINDOW, day_entries(), min_severity=3, level_before=2)
    assert [g.event_type for g in digest.groups] == [
        "high_value_target_killed",
        "attack_on_us_forces_in_iraq",
        "us_strike_in_iraq",
    ]
    attack = digest.groups[1].events[0]
    assert attack.view.revision == 2 and attack.view.severity == 4 and attack.revisions == 2 and attack.new
    assert digest.events == 3 and digest.hidden == 1  # the severity-2 threat
    assert digest.by_severity == {5: 1, 4: 2}
    assert [e.view.title for e in digest.escalations] == [
        "Escalation level rose from 2 to 3",
        "Escalation level rose from 3 to 4",
    ]
    assert (digest.level_start, digest.level_end, digest.peak) == (2, 4, 4)
    levels = [s.level for s in digest.trend]
    assert len(levels) == 24 and levels[:5] == [2] * 5 and levels[5] == 3 and levels[10:] == [4] * 14
    assert digest.sparkline == sparkline(levels) and digest.sparkline.startswith("▂▂▂▂▂▄")
    only_strikes = build_digest("d", WINDOW, day_entries(), event_types=["us_strike_in_iraq"])
    assert [g.event_type for g in only_strikes.groups] == ["us_strike_in_iraq"] and only_strikes.hidden == 3


def test_an_event_that_began_before_the_window_is_ongoing() -> None:
    update = event_alert(8, revision=3, at=at(2))
    update["first_seen"] = "2024-01-03T20:00:00Z"
    digest = build_digest("d", WINDOW, [entry(update, 2)], timezone="Asia/Baghdad")
    [item] = digest.groups[0].events
    assert not item.new and item.meta == "first seen 03 Jan 23:00 · ongoing"
    assert digest.window_label.endswith("(Asia/Baghdad)") and "10:00" in digest.window_label


def test_digest_html_is_a_table_chart_with_inline_styles_only() -> None:
    rendered = render_digest(build_digest("daily", WINDOW, day_entries(), min_severity=3, level_before=2))
    html = rendered.html.lower()
    for forbidden in ("<style", "class=", "<script", "<img", "<svg", "javascript:"):
        assert forbidden not in html, forbidden
    filled = re.findall(r'<td width="4%" height="10" bgcolor="(#[0-9a-f]{6})"', html)
    assert len(filled) == 24 * 5  # five rows of 24 bars
    assert filled.count("#f3f4f6") == 24 * 5 - (5 * 2 + 5 * 3 + 14 * 4)  # empty cells above each bar
    assert "high-value target killed" in html and "escalation level changes" in html
    assert rendered.text.count("▆") == 14 and "== High-value target killed ==" in rendered.text
    assert rendered.subject == "Escalation digest daily, 05 Jan 2024 07:00: 3 events, 2 level changes, level 4"


def test_an_empty_window_still_makes_a_digest() -> None:
    digest = build_digest("daily", WINDOW, [], level_before=3)
    rendered = render_digest(digest)
    assert digest.empty and digest.trend[0].level == 3 and digest.sparkline == "▄" * 24
    assert "No new alerts" in rendered.html and "The monitor is running" in rendered.text
    assert rendered.subject.endswith("no new alerts, level 3")


# -- sending through SMTP, once per window -----------------------------------------------------------------


async def test_digest_end_to_end(redis: aioredis.Redis) -> None:
    await scheduled_long_ago(redis)
    await fill_log(redis)
    async with SmtpServer() as smtp:
        outcome = await sender(smtp, redis).send_scheduled(DAILY)
        [received] = smtp.messages
    assert outcome.status == "sent" and outcome.window == WINDOW
    message = received.message
    assert message.get_content_type() == "multipart/alternative"
    assert message["Message-ID"] == "<digest.daily.20240104T070000Z@escalation-monitor>"
    assert str(message["Subject"]).startswith("Escalation digest daily, 05 Jan 2024 07:00: 3 events")
    html = str(message.get_body(("html",)).get_content())  # type: ignore[union-attr]
    text = str(message.get_body(("plain",)).get_content())  # type: ignore[union-attr]
    positions = [html.index(label) for label in ("High-value target killed", "Attack on US forces", "US strike in")]
    assert positions == sorted(positions)  # grouped by type, most severe first
    assert html.count('bgcolor="#f3f4f6"') > 0 and "Escalation level 2 &#8594;" in html
    assert "(5)" not in html and "(9)" not in html  # entries outside the window
    assert "Trend, highest level per 1 h: ▂▂▂▂▂▄" in text
    state: Any = await redis.get(KEYS.digest_sent("daily", "2024-01-04T07:00:00Z"))
    assert state is not None and state.startswith(b"sent ")
    ttl = await redis.pttl(KEYS.digest_sent("daily", "2024-01-04T07:00:00Z"))
    assert timedelta(days=2) < timedelta(milliseconds=ttl) <= timedelta(days=3)  # a few windows


async def test_the_subject_arrives_trimmed_and_no_part_keeps_a_bidi_control(redis: aioredis.Redis) -> None:
    """A 76-character subject (one Python's folder would move whole onto a continuation line, read back with a
    leading space), and bidirectional controls in a headline, which the digest's text and HTML parts drop."""
    await scheduled_long_ago(redis, "ops")
    await fill_log(redis, title="Drone\u202e strike on \u2067Ain al-Asad\u2069\u200f base kills commander")
    ops = DAILY.model_copy(update={"name": "ops"})
    async with SmtpServer() as smtp:
        outcome = await sender(smtp, redis).send_scheduled(ops)
        [received] = smtp.messages
    subject = str(received.message["Subject"])
    assert outcome.digest is not None and subject == outcome.digest.subject and len(subject) == 76
    assert subject.startswith("Escalation digest ops, 05 Jan 2024 07:00: 3 events")
    for part in ("plain", "html"):
        body = str(received.message.get_body((part,)).get_content())  # type: ignore[union-attr]
        assert "Drone strike on Ain al-Asad base kills commander" in body
        assert not set(body) & set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")


async def test_two_racing_senders_send_one_digest(redis: aioredis.Redis) -> None:
    await scheduled_long_ago(redis)
    await fill_log(redis)
    async with SmtpServer() as smtp:
        outcomes = await asyncio.gather(*(sender(smtp, redis).send_scheduled(DAILY) for _ in range(4)))
        again = await sender(smtp, redis, now=AFTER + timedelta(hours=3)).send_scheduled(DAILY)
        assert len(smtp.messages) == 1
    assert sorted(o.status for o in outcomes) == ["claimed", "claimed", "claimed", "sent"]
    assert again.status == "claimed"


async def test_a_sender_that_dies_after_claiming_is_followed_after_the_claim_expires(redis: aioredis.Redis) -> None:
    await scheduled_long_ago(redis)
    await fill_log(redis)
    hanging = HangingMailer()
    clock = FakeClock(AFTER)
    doomed = DigestSender(
        DigestStore(redis, KEYS), hanging, sender="m@example.org", clock=clock, fires=fires, sending_ttl_s=0.5
    )
    task = asyncio.create_task(doomed.send_scheduled(DAILY))
    await asyncio.wait_for(hanging.started.wait(), 5)
    task.cancel()  # the process dies between its claim and the end of the send
    with pytest.raises(asyncio.CancelledError):
        await task
    key = KEYS.digest_sent("daily", WINDOW.key)
    claim: Any = await redis.get(key)
    assert claim.startswith(b"sending ")
    async with SmtpServer() as smtp:
        survivor = sender(smtp, redis, now=AFTER + timedelta(minutes=1))
        assert (await survivor.send_scheduled(DAILY)).status == "claimed"  # the claim still stands
        await asyncio.sleep(0.6)
        assert (await survivor.send_scheduled(DAILY)).status == "sent"  # the next catch-up run, after the TTL
        assert len(smtp.messages) == 1


async def test_a_temporary_failure_releases_the_claim_and_a_refusal_does_not(redis: aioredis.Redis) -> None:
    await scheduled_long_ago(redis)
    async with SmtpServer() as smtp:
        smtp.script([451, None])
        first = await sender(smtp, redis).send_scheduled(DAILY)
        assert first.status == "retry" and first.reason.startswith("451")
        assert await redis.get(KEYS.digest_sent("daily", WINDOW.key)) is None
        assert (await sender(smtp, redis).send_scheduled(DAILY)).status == "sent"
        assert len(smtp.messages) == 1 and "no new alerts" in str(smtp.messages[0].message["Subject"])

        await redis.flushdb()
        await scheduled_long_ago(redis)
        smtp.script([550])
        refused = await sender(smtp, redis).send_scheduled(DAILY)
        assert refused.status == "failed" and refused.reason.startswith("550")
        state: Any = await redis.get(KEYS.digest_sent("daily", WINDOW.key))
        assert state.startswith(b"failed ")
        assert (await sender(smtp, redis).send_scheduled(DAILY)).status == "claimed"
        assert len(smtp.attempts) == 3


async def test_send_now_leaves_the_scheduled_window_alone(redis: aioredis.Redis, tmp_path: Path) -> None:
    await scheduled_long_ago(redis)
    await fill_log(redis)
    async with SmtpServer() as smtp:
        now = T0 + timedelta(days=1, hours=3)
        manual = await sender(smtp, redis, now=now).send_now(DAILY)
        assert manual.status == "sent" and manual.window == Window(WINDOW.end, now)
        assert manual.digest is not None and manual.digest.events == 1  # event 5, after the last fire
        scheduled = await sender(smtp, redis, now=now).send_scheduled(DAILY)
        assert scheduled.status == "sent"
        ids = [m.message["Message-ID"] for m in smtp.messages]
    assert ids == [
        "<digest.daily.manual.20240105T100000Z@escalation-monitor>",
        "<digest.daily.20240104T070000Z@escalation-monitor>",
    ]
    assert await redis.exists(KEYS.digest_sent("daily", "manual-2024-01-05T10:00:00Z"))


# -- wiring: config checks, the daemon's jobs, the command ------------------------------------------------


def config_file(tmp_path: Path, redis_url: str, smtp_port: int = 2525) -> Path:
    path = tmp_path / "monitor.yaml"
    path.write_text(f"""\
redis: {{url: "{redis_url}"}}
rules: [{Path(__file__).resolve().parents[1] / "rules"}]
smtp: {{host: 127.0.0.1, port: {smtp_port}, sender: monitor@example.org, timeout_s: 2}}
digests:
  - {{name: daily, cron: "0 7 * * *", to: [desk@example.org], min_severity: 3}}
  - {{name: weekly, cron: "0 7 * * 1", to: [desk@example.org], timezone: Europe/London}}
log: {{format: json}}
""")
    return path


def test_bad_digests_are_config_errors_with_lines(tmp_path: Path) -> None:
    path = tmp_path / "monitor.yaml"
    path.write_text(
        "smtp: {host: 127.0.0.1}\n"
        "digests:\n"
        "  - {name: a, cron: '0 7 1 * 1', to: [desk@example.org]}\n"
        "  - {name: b, cron: '0 7 * * *', to: [desk@example.org], timezone: Nowhere/Town}\n"
        "  - {name: c, cron: '0 7 * * *', to: [not an address]}\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={}, checks=CONFIG_CHECKS)
    assert [str(p).removeprefix(f"{path}:") for p in caught.value.problems] == [
        "3: digests[0]: restrict the day of the month or the day of the week, not both",
        "4: digests[1]: unknown time zone 'Nowhere/Town'",
        "5: digests[2].to: not an e-mail address: not an address",
    ]


def test_the_schedulers_check_is_passed_in_by_the_service_layer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The config checks five fields on its own; the rest of a schedule is checked by the scheduler's arithmetic,
    which the service layer passes to ``load_config``: ``monitor check`` reports both at their lines, exit 2."""
    path = tmp_path / "monitor.yaml"
    path.write_text(
        "smtp: {host: 127.0.0.1}\n"
        "digests:\n"
        "  - {name: a, cron: '61 7 * * *', to: [desk@example.org]}\n"
        "  - {name: b, cron: '0 7 * *', to: [desk@example.org]}\n"
        "  - {name: c, cron: '0 7 * * 8', to: [desk@example.org]}\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    assert [str(p) for p in caught.value.problems] == [
        f"{path}:4: digests[1].cron: must be a five-field cron expression, e.g. '0 7 * * *'"
    ]
    assert main(["check", "-c", str(path)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"{path}:3: digests[0]: Error validating expression '61': the last value (61) is higher than the maximum"
        " value (59)",
        f"{path}:4: digests[1].cron: must be a five-field cron expression, e.g. '0 7 * * *'",
        f"{path}:5: digests[2]: bad day of week '8' (0-7 or sun-sat)",
    ]


class AppStub(SimpleNamespace):
    """Just what ``Daemon._schedule`` reads; every other job target is a no-op."""

    def __getattr__(self, name: str) -> Any:
        async def nothing(*args: Any, **kwargs: Any) -> None:
            return None

        return nothing


def test_the_daemon_schedules_each_digest_and_a_catch_up() -> None:
    config = Config.model_validate(
        {"smtp": {}, "digests": [{"name": "weekly", "cron": "0 7 * * 1", "to": ["d@example.org"]}]}
    )
    app = AppStub(config=config, redis=None, store=SimpleNamespace(keys=KEYS), clock=FakeClock(T0))
    scheduler = Daemon(app)._schedule()  # type: ignore[arg-type]
    jobs = {job.id: job for job in scheduler.get_jobs()}
    trigger = jobs["digest-weekly"].trigger
    assert isinstance(trigger, CronTrigger) and "day_of_week='mon'" in str(trigger)
    assert jobs["digest-weekly"].args == (config.digests[0],)
    assert jobs["digest-catch-up"].args == (config.digests,)


def test_preview_command_writes_the_html(redis_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    client = sync_redis.Redis.from_url(redis_url)
    client.flushdb()
    now = datetime.now(UTC)
    # Logged now, not a minute ago: the preview covers the time since the last scheduled run (07:00 for the daily
    # digest), which at 07:00:30 began only half a minute ago.
    millis = int(now.timestamp() * 1000)
    alert = event_alert(1, severity=5, title="Preview <b>headline</b>", at=now)
    client.xadd(KEYS.alert_log, {"id": alert["id"], "alert": json.dumps(alert)}, id=f"{millis}-0")
    client.close()
    config = config_file(tmp_path, redis_url)
    out = tmp_path / "preview" / "digest.html"
    out.parent.mkdir()
    assert main(["digest", "-c", str(config), "--preview", str(out)]) == 0
    html = out.read_text(encoding="utf-8")
    assert "Preview &lt;b&gt;headline&lt;/b&gt;" in html and "Escalation digest" in html
    printed = capsys.readouterr().out
    assert printed.startswith(f"wrote {out}: Escalation digest daily") and "1 event(s)" in printed
    assert main(["digest", "-c", str(config), "--preview", str(out), "--name", "weekly"]) == 0
    assert main(["digest", "-c", str(config), "--preview", str(out), "--name", "nope"]) == 2
    assert "no digest named 'nope' (configured: daily, weekly)" in capsys.readouterr().err
    assert main(["digest", "-c", str(config), "--send-now", "daily", "--name", "x"]) == 2


async def test_send_now_command(redis: aioredis.Redis, redis_url: str, tmp_path: Path) -> None:
    async with SmtpServer() as smtp:
        out = io.StringIO()
        config = config_file(tmp_path, redis_url, smtp.port)
        assert await digest_send_now(config, {}, out, name="weekly") == 0
        [received] = smtp.messages
    assert out.getvalue().startswith("sent digest weekly to 1 recipient(s): Escalation digest weekly")
    assert received.message["X-Monitor-Digest"] == "weekly"


@pytest.mark.timeout(60)
async def test_the_daemon_sends_a_missed_digest_when_it_starts(
    redis: aioredis.Redis, redis_url: str, tmp_path: Path
) -> None:
    """``monitor run`` as a real process: its catch-up job sends the latest window, once, soon after start, when
    the install was down at its fire time (not fresh: see ``test_digest_first_start``)."""
    await scheduled_long_ago(redis, "daily", "weekly")
    async with SmtpServer() as smtp:
        config = config_file(tmp_path, redis_url, smtp.port)
        daemon = await start_daemon(config, tmp_path / "daemon.log", REDIS_URL=redis_url)
        try:
            await smtp.wait_for(2, timeout_s=30)  # daily and weekly
        finally:
            await stop_daemon(daemon, 15)
    subjects = sorted(str(m.message["Subject"]) for m in smtp.messages)
    assert len(subjects) == 2, (tmp_path / "daemon.log").read_text()
    assert subjects[0].startswith("Escalation digest daily") and subjects[1].startswith("Escalation digest weekly")
    assert '"event": "digest_sent"' in (tmp_path / "daemon.log").read_text()
