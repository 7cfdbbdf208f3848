import io
import json
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, get_args

import aiohttp
import pytest

from monitor.config import ConsoleSink as ConsoleConfig
from monitor.config import FetchConfig
from monitor.config import FileSink as FileConfig
from monitor.config import WebhookSink as WebhookConfig
from monitor.core.errors import ConfigError, DeliveryError, PermanentDeliveryError
from monitor.delivery.sinks.console import ConsoleSink, render_alert
from monitor.delivery.sinks.factory import SINKS, SinkContext, SinkRegistry, SinkSetupError, build_sinks
from monitor.delivery.sinks.file import FileSink
from monitor.delivery.sinks.formats import FORMATS
from monitor.delivery.sinks.webhook import WebhookSink, encode_body
from monitor.network.guard import make_session
from monitor.network.http import parse_retry_after, safe_origin
from tests.support.webhook_receiver import HANG, SECRET_PATH, Reply, WebhookReceiver

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


class FixedClock:
    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def now(self) -> datetime:
        return self.moment

    def monotonic(self) -> float:
        return 0.0


def make_alert(n: int = 1, **changes: Any) -> dict[str, Any]:
    alert: dict[str, Any] = {
        "id": f"evt{n}.r1",
        "kind": "event",
        "event_id": f"evt{n}",
        "revision": 1,
        "event_type": "us_strike_in_iraq",
        "severity": 4,
        "title": f"US strikes militia depot near Baghdad ({n})",
        "summary": "Officials said…",
        "escalation_level": 3,
        "first_seen": "2024-01-04T10:00:00Z",
        "updated": "2024-01-04T10:00:00Z",
        "entities": ["baghdad", "kataib_hezbollah"],
        "evidence": ["US airstrike", "Kataib Hezbollah"],
        "articles": [
            {"url": "https://example.org/a", "title": "t", "source": "wire-a", "published": None},
            {"url": "https://example.org/b", "title": "t", "source": "wire-b", "published": None},
            {"url": "https://example.org/c", "title": "t", "source": "wire-a", "published": None},
        ],
    }
    alert.update(changes)
    return alert


@pytest.fixture
async def rx() -> AsyncIterator[WebhookReceiver]:
    async with WebhookReceiver(SECRET) as receiver:
        yield receiver


# -- console and file --------------------------------------------------------------------------------------


async def test_console_prints_a_short_block() -> None:
    out = io.StringIO()
    await ConsoleSink("console", out).send(make_alert(revision=2))
    text = out.getvalue()
    assert "severity 4/5" in text and "us_strike_in_iraq" in text and "revision 2" in text
    assert "US strikes militia depot near Baghdad (1)" in text
    assert "sources: wire-a, wire-b" in text
    assert '"US airstrike", "Kataib Hezbollah"' in text


def test_console_renders_escalation_alerts_without_articles() -> None:
    text = render_alert(
        {
            "id": "esc.3",
            "kind": "escalation",
            "severity": 3,
            "escalation_level": 3,
            "title": "Escalation level rose to 3",
        }
    )
    assert "ESCALATION level 3" in text and "Escalation level rose to 3" in text


async def test_file_sink_appends_json_lines(tmp_path: Path) -> None:
    path = tmp_path / "out" / "alerts.jsonl"
    sink = FileSink("file", path)
    await sink.send(make_alert(1))
    await sink.send(make_alert(2, title="Frappe à Bagdad\nsecond line"))
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["id"] for line in lines] == ["evt1.r1", "evt2.r1"]
    assert json.loads(lines[1])["title"] == "Frappe à Bagdad\nsecond line"


async def test_file_sink_failure_is_retryable(tmp_path: Path) -> None:
    with pytest.raises(DeliveryError) as caught:
        await FileSink("file", tmp_path).send(make_alert())  # a directory cannot be appended to
    assert not isinstance(caught.value, PermanentDeliveryError)


# -- webhook -----------------------------------------------------------------------------------------------


async def test_webhook_posts_signed_json(session: aiohttp.ClientSession, rx: WebhookReceiver) -> None:
    alert = make_alert()
    await WebhookSink("hook", rx.url, session, secret=SECRET).send(alert)
    assert rx.invalid_signatures == []
    [request] = rx.requests
    assert request.webhook_id == "evt1.r1"
    assert request.headers["content-type"] == "application/json"
    assert request.body == encode_body(alert)
    assert rx.alerts == [alert]


async def test_webhook_wrong_secret_is_refused_by_receiver(session: aiohttp.ClientSession, rx: WebhookReceiver) -> None:
    with pytest.raises(PermanentDeliveryError, match="401"):
        await WebhookSink("hook", rx.url, session, secret="whsec_d3Jvbmc=").send(make_alert())
    assert len(rx.invalid_signatures) == 1


@pytest.mark.parametrize(
    ("reply", "retry_after"),
    [
        (Reply(503), None),
        (Reply(502, {"Retry-After": "12"}), 12.0),
        (Reply(429, {"Retry-After": "7"}), 7.0),
        (Reply(429, {"Retry-After": "Thu, 04 Jan 2024 10:00:30 GMT"}), 30.0),
        (Reply(408), None),
    ],
)
async def test_webhook_retryable_statuses(
    session: aiohttp.ClientSession, reply: Reply, retry_after: float | None
) -> None:
    clock = FixedClock(datetime(2024, 1, 4, 10, 0, 0, tzinfo=UTC))
    # Unsigned, because a signature from 2024 is too old for the reference verifier.
    async with WebhookReceiver(None) as plain:
        plain.script([reply])
        with pytest.raises(DeliveryError) as caught:
            await WebhookSink("hook", plain.url, session, clock=clock).send(make_alert())
    assert not isinstance(caught.value, PermanentDeliveryError)
    assert caught.value.retry_after == retry_after
    assert f"HTTP {reply.status}" in caught.value.reason


async def test_webhook_410_disables_the_sink(session: aiohttp.ClientSession, rx: WebhookReceiver) -> None:
    rx.script([410])
    with pytest.raises(PermanentDeliveryError) as caught:
        await WebhookSink("hook", rx.url, session, secret=SECRET).send(make_alert())
    assert caught.value.disable_sink


async def test_webhook_400_keeps_status_and_excerpt_but_not_the_url(
    session: aiohttp.ClientSession, rx: WebhookReceiver
) -> None:
    rx.script([Reply(400, body=f"bad field 'severity' in POST {SECRET_PATH}\n" + "x" * 1000)])
    with pytest.raises(PermanentDeliveryError) as caught:
        await WebhookSink("hook", rx.url, session, secret=SECRET).send(make_alert())
    reason = caught.value.reason
    assert not caught.value.disable_sink
    assert reason.startswith("HTTP 400 from http://127.0.0.1:")
    assert "bad field 'severity'" in reason
    assert len(reason) < 300
    assert "T0KEN" not in reason and "s3cr3t" not in reason


async def test_webhook_network_errors_are_retryable_and_hide_the_url(session: aiohttp.ClientSession) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://user:pw@127.0.0.1:{port}/hooks/T0KEN?token=s3cr3t"
    with pytest.raises(DeliveryError) as caught:
        await WebhookSink("hook", url, session).send(make_alert())
    assert not isinstance(caught.value, PermanentDeliveryError)
    text = f"{caught.value} {caught.value.__cause__} {caught.value.__context__}"
    assert f"http://127.0.0.1:{port}" in str(caught.value)
    assert "T0KEN" not in text and "s3cr3t" not in text and "pw" not in text
    assert "T0KEN" not in repr(WebhookSink("hook", url, session))


async def test_webhook_timeout_is_retryable(session: aiohttp.ClientSession, rx: WebhookReceiver) -> None:
    rx.script([HANG])
    with pytest.raises(DeliveryError, match="Timeout"):
        await WebhookSink("hook", rx.url, session, secret=SECRET, timeout_s=0.3).send(make_alert())


def test_parse_retry_after() -> None:
    clock = FixedClock(datetime(2024, 1, 4, 10, 0, 0, tzinfo=UTC))
    assert parse_retry_after("120", clock.now()) == 120.0
    assert parse_retry_after("Thu, 04 Jan 2024 10:01:00 GMT", clock.now()) == 60.0
    assert parse_retry_after("Thu, 04 Jan 2024 09:00:00 GMT", clock.now()) == 0.0
    assert parse_retry_after("soon", clock.now()) is None
    assert parse_retry_after(None, clock.now()) is None


def test_safe_origin_drops_credentials_path_and_query() -> None:
    assert safe_origin("https://u:p@hooks.example.org/T0KEN?x=1") == "https://hooks.example.org"
    assert safe_origin("http://[::1]:8080/a") == "http://[::1]:8080"


# -- factory -----------------------------------------------------------------------------------------------


async def test_build_sinks_names_and_types(session: aiohttp.ClientSession, tmp_path: Path) -> None:
    out = io.StringIO()
    sinks = build_sinks(
        [
            ConsoleConfig.model_validate({"type": "console"}),
            WebhookConfig.model_validate(
                {"type": "webhook", "url": "https://hooks.example.org/x", "secret": SECRET, "min_severity": 4}
            ),
            FileConfig.model_validate({"type": "file", "path": tmp_path / "a.jsonl", "name": "archive"}),
        ],
        session,
        out,
    )
    assert [type(s) for s in sinks] == [ConsoleSink, WebhookSink, FileSink]
    assert [s.name for s in sinks] == ["console", "webhook-1", "archive"]
    assert getattr(sinks[1], "min_severity", None) == 4
    await sinks[0].send(make_alert())
    assert "us_strike_in_iraq" in out.getvalue()


async def test_build_sinks_reports_bad_secrets(session: aiohttp.ClientSession) -> None:
    with pytest.raises(ConfigError, match=r"alerts\.sinks\[0\]\.secret"):
        bad = WebhookConfig.model_validate({"type": "webhook", "url": "https://h.example.org/", "secret": "whsec_***"})
        build_sinks([bad], session, io.StringIO())


async def test_build_sinks_refuses_private_webhook_addresses(session: aiohttp.ClientSession) -> None:
    private = WebhookConfig.model_validate({"type": "webhook", "url": "http://10.1.2.3/hooks/T0KEN"})
    with pytest.raises(ConfigError, match=r"alerts\.sinks\[0\]\.url: refused") as caught:
        build_sinks([private], session, io.StringIO())
    assert "T0KEN" not in str(caught.value)
    [sink] = build_sinks([private], session, io.StringIO(), allow_private_networks=True)
    assert isinstance(sink, WebhookSink)


def test_every_configurable_sink_has_a_registered_builder() -> None:
    formats = set(get_args(WebhookConfig.model_fields["format"].annotation))
    assert formats == set(FORMATS)
    assert SINKS.registered() == {("webhook", f) for f in formats} | {
        ("console", None),
        ("file", None),
        ("email", None),
        ("slack", None),
        ("telegram", None),
        ("apprise", None),
    }


@dataclass(frozen=True)
class PigeonEntry:
    """A third party's config entry: what ``build_sinks`` reads of any entry, and its own keys."""

    loft: str
    type: str = "pigeon"
    name: str | None = None
    min_severity: int | None = None


@dataclass
class PigeonSink:
    name: str
    loft: str

    async def send(self, alert: dict[str, Any]) -> None:
        return None

    async def close(self) -> None:
        return None


def build_pigeon(entry: PigeonEntry, context: SinkContext) -> PigeonSink:
    if not entry.loft:
        raise SinkSetupError("a pigeon needs a loft", key="loft")
    return PigeonSink(context.name, entry.loft)


async def test_a_third_party_sink_registers_as_the_built_in_ones_do(session: aiohttp.ClientSession) -> None:
    registry = SINKS.copy()
    registry.register("pigeon", build_pigeon)
    console = ConsoleConfig.model_validate({"type": "console"})
    entries: list[Any] = [console, PigeonEntry("roof"), PigeonEntry("cellar", name="spare")]
    sinks = build_sinks(entries, session, io.StringIO(), registry=registry)
    assert [type(s) for s in sinks] == [ConsoleSink, PigeonSink, PigeonSink]
    assert [s.name for s in sinks] == ["console", "pigeon-1", "spare"]
    with pytest.raises(ConfigError) as caught:
        build_sinks([PigeonEntry(""), console, PigeonEntry("")], session, io.StringIO(), registry=registry)
    assert [str(p) for p in caught.value.problems] == [
        "<config>: alerts.sinks[0].loft: a pigeon needs a loft",
        "<config>: alerts.sinks[2].loft: a pigeon needs a loft",
    ]
    with pytest.raises(ConfigError, match=r"^<config>: alerts\.sinks\[0\]: no builder for 'pigeon' sinks$"):
        build_sinks([PigeonEntry("roof")], session, io.StringIO())
    assert ("pigeon", None) not in SINKS.registered()  # the copy was changed, not the shared registry


async def test_a_builder_for_one_webhook_format_leaves_the_others_alone(session: aiohttp.ClientSession) -> None:
    registry = SINKS.copy()
    registry.register("webhook", lambda entry, context: PigeonSink(context.name, entry.url), fmt="teams")
    url = "https://hooks.example.org/x"
    teams, slack = (
        WebhookConfig.model_validate({"type": "webhook", "url": url, "format": f}) for f in ("teams", "slack")
    )
    first, second = build_sinks([teams, slack], session, io.StringIO(), registry=registry)
    assert isinstance(first, PigeonSink) and first.name == "webhook" and first.loft == url
    assert isinstance(second, WebhookSink) and second.format == "slack"
    with pytest.raises(ConfigError, match=r"alerts\.sinks\[0\]: no builder for 'console' sinks"):
        build_sinks(
            [ConsoleConfig.model_validate({"type": "console"})], session, io.StringIO(), registry=SinkRegistry()
        )


async def test_webhook_refused_by_the_private_network_guard_is_permanent() -> None:
    async with make_session(FetchConfig.model_validate({})) as guarded:
        sink = WebhookSink("hook", "http://localhost:9/hooks/T0KEN", guarded)
        with pytest.raises(PermanentDeliveryError, match="non-public") as caught:
            await sink.send(make_alert())
    assert "T0KEN" not in caught.value.reason


def test_console_renders_feed_notices_as_such() -> None:
    from monitor.delivery.sinks.console import render_alert

    text = render_alert(
        {
            "kind": "feed",
            "feed": "wire",
            "state": "down",
            "title": "Feed wire has failed 5 times",
            "summary": "https://wire.example: HTTP 503",
        }
    )
    assert text.startswith("[FEED DOWN] wire\n") and "HTTP 503" in text and "unknown event" not in text
