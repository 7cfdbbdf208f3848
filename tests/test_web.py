"""The dashboard over HTTP (no browser): its config rules, who may see it, what its JSON says after a month of news
through the real pipeline, and that the live stream reads Redis only while someone watches."""

from __future__ import annotations

import asyncio
import io
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest
import redis.asyncio as aioredis

from monitor.cli import main
from monitor.config import load_config
from monitor.core.clock import SystemClock
from monitor.core.errors import ConfigError
from monitor.service.daemon import Daemon
from monitor.service.health import HealthServer
from monitor.service.metrics import Metrics
from monitor.service.root import build_app
from monitor.storage.dashboard import DashboardStore
from monitor.storage.deadletters import dead_fields
from monitor.storage.keys import Keys
from monitor.web.app import install
from monitor.web.reads import Reader
from tests.support.commands import run_monitor
from tests.support.dashboard import END, REVISION, RULES, TOKEN, config, dashboard

ROOT = Path(__file__).resolve().parents[1]
FOREIGN = "http://evil.example"


def write(folder: Path, text: str) -> Path:
    path = folder / "monitor.yaml"
    path.write_text(f"rules: [{ROOT / 'rules'}]\n{text}")
    return path


# -- configuration --------------------------------------------------------------------------------------------


def test_a_public_bind_without_a_token_is_refused_at_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "metrics:\n  host: 0.0.0.0\n  port: 9464\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    (problem,) = caught.value.problems
    assert str(problem).startswith(f"{path}:3: metrics.host: the dashboard would be served on 0.0.0.0 without a token")
    assert load_config(path, env={"MONITOR_WEB_TOKEN": TOKEN}).web.token is not None
    off = write(tmp_path, "metrics: {host: 0.0.0.0}\nweb: {enabled: false}\n")
    assert load_config(off, env={}).web.enabled is False
    assert load_config(write(tmp_path, "web: {}\n"), env={}).metrics.host == "127.0.0.1"  # loopback needs none


@pytest.mark.parametrize("command", ["check", "run"])
def test_check_and_run_exit_2_on_a_public_bind_without_a_token(tmp_path: Path, command: str) -> None:
    path = write(tmp_path, "metrics: {host: 0.0.0.0}\n")
    done = run_monitor(command, "-c", str(path))
    assert done.returncode == 2
    assert done.stderr.splitlines()[0].startswith(f"{path}:2: metrics.host: the dashboard would be served on 0.0.0.0")


def test_the_token_is_never_printed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "web: {token: short-secret}\nfetch: {timeuot_s: 3}\n")
    assert main(["check", "-c", str(path)]) == 2
    err = capsys.readouterr().err
    assert "web.token" in err and "short-secret" not in err
    shown = repr(load_config(write(tmp_path, f"web: {{token: {TOKEN}}}\n"), env={}))
    assert TOKEN not in shown


@pytest.mark.parametrize("enabled", [True, False])
async def test_the_daemon_serves_the_dashboard_beside_its_probes(redis: aioredis.Redis, enabled: bool) -> None:
    app = await build_app(
        config(web={"enabled": enabled}), RULES, clock=SystemClock(), redis=redis, stdout=io.StringIO()
    )
    daemon = Daemon(app, metrics=Metrics())
    await daemon.open_endpoints()
    assert daemon.endpoints is not None
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{daemon.endpoints.port}/") as response:
                assert response.status == (200 if enabled else 404)
                assert ("Escalation level now" in await response.text()) is enabled
            async with http.get(f"http://127.0.0.1:{daemon.endpoints.port}/healthz") as response:
                assert response.status == 200
    finally:
        await daemon.close_endpoints()
        await app.close()


# -- access ---------------------------------------------------------------------------------------------------


async def test_with_a_token_every_page_and_api_needs_it(redis: aioredis.Redis) -> None:
    async with dashboard(redis, token=TOKEN) as dash, aiohttp.ClientSession() as http:
        for path in ("/api/events", "/api/escalation", "/api/feeds", "/api/dlq", "/stream"):
            async with http.get(dash.url + path) as response:
                assert response.status == 401, path
        async with http.get(dash.url + "/feeds", allow_redirects=False) as response:
            assert response.status == 303 and response.headers["Location"] == "/login?next=/feeds"
        async with http.get(dash.url + "/api/events", headers={"Authorization": "Bearer wrong-token"}) as response:
            assert response.status == 401
        async with http.get(dash.url + "/api/events", headers={"Authorization": f"Bearer {TOKEN}"}) as response:
            assert response.status == 200 and (await response.json())["events"] == []
        async with http.get(dash.url + "/healthz") as response:
            assert response.status == 200  # the probes stay open


async def test_login_sets_a_strict_httponly_cookie_that_opens_the_pages(redis: aioredis.Redis) -> None:
    jar = aiohttp.CookieJar(unsafe=True)  # keeps cookies of an IP address (127.0.0.1)
    async with dashboard(redis, token=TOKEN) as dash, aiohttp.ClientSession(cookie_jar=jar) as http:
        origin = {"Origin": dash.url}
        async with http.post(dash.url + "/login", data={"token": "nope"}, headers=origin) as response:
            assert response.status == 401 and "not the dashboard" in await response.text()
        form = {"token": TOKEN, "next": "//evil.example/"}
        async with http.post(dash.url + "/login", data=form, headers=origin, allow_redirects=False) as response:
            assert response.status == 303 and response.headers["Location"] == "/"
            cookie = response.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and TOKEN not in cookie
        async with http.get(dash.url + "/api/feeds") as response:
            assert response.status == 200


async def test_posts_need_the_same_origin(redis: aioredis.Redis) -> None:
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    async with dashboard(redis, token=TOKEN) as dash, aiohttp.ClientSession() as http:
        await _dead_letter(redis)
        retry = dash.url + "/api/dlq/retry"
        async with http.post(retry, json={"ids": ["1-1"]}, headers={**bearer, "Origin": FOREIGN}) as response:
            assert response.status == 403
        async with http.post(dash.url + "/login", data={"token": TOKEN}, headers={"Origin": FOREIGN}) as response:
            assert response.status == 403
        assert await redis.xlen(Keys().dead) == 1  # nothing was re-sent
        async with http.post(retry, json={"ids": ["1-1"]}, headers=bearer) as response:  # a script: no Origin
            assert response.status == 200 and [d["dead_id"] for d in (await response.json())["retried"]] == ["1-1"]
        assert await redis.xlen(Keys().dead) == 0


async def test_without_a_token_only_a_loopback_host_is_answered(redis: aioredis.Redis) -> None:
    async with dashboard(redis) as dash, aiohttp.ClientSession() as http:
        async with http.get(dash.url + "/api/events") as response:
            assert response.status == 200
        async with http.get(dash.url + "/", headers={"Host": "rebound.example:9464"}) as response:
            assert response.status == 403  # a foreign name pointed at loopback (DNS rebinding)
        async with http.post(dash.url + "/api/dlq/retry", json={"ids": []}, headers={"Origin": FOREIGN}) as response:
            assert response.status == 403


async def test_pages_carry_a_csp_without_inline_scripts(redis: aioredis.Redis) -> None:
    async with dashboard(redis) as dash, aiohttp.ClientSession() as http:
        for path in ("/", "/feeds", "/rules", "/delivery", "/events", "/login"):
            async with http.get(dash.url + path) as response:
                assert response.status == 200, path
                csp = response.headers["Content-Security-Policy"]
                assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
                assert "<script>" not in await response.text()


async def test_a_redis_outage_is_a_503_not_a_crash(unreachable: aioredis.Redis) -> None:
    reader = Reader(unreachable, Keys(), SystemClock(), lambda: config(), lambda: RULES)
    server = HealthServer(
        host="127.0.0.1", port=0, metrics=Metrics(), readiness=_ready, extend=lambda a: install(a, reader, token=None)
    )
    port = await server.start()
    try:
        async with aiohttp.ClientSession() as http:
            for path, kind in (("/", "text/plain"), ("/api/events", "application/json")):
                async with http.get(f"http://127.0.0.1:{port}{path}") as response:
                    assert response.status == 503 and response.content_type == kind
                    assert "Redis is unavailable" in await response.text()
    finally:
        await server.stop()


async def _ready() -> str | None:
    return None


# -- what it shows --------------------------------------------------------------------------------------------


async def test_the_json_after_a_month_of_news(redis: aioredis.Redis) -> None:
    async with dashboard(redis) as dash, aiohttp.ClientSession() as http:
        await dash.seed_month()
        await dash.feed(REVISION)
        first = await _json(http, dash.url + "/api/events?limit=3")
        assert len(first["events"]) == 3 and first["next"] is not None
        rest = await _json(http, dash.url + f"/api/events?limit=50&before={first['next']}")
        titles = [e["title"] for e in first["events"] + rest["events"]]
        assert len(titles) == len(set(titles)) == 6  # pages neither repeat nor skip
        strike = next(e for e in first["events"] + rest["events"] if "Kataib Hezbollah" in e["title"])
        detail = await _json(http, dash.url + f"/api/events/{strike['id']}")
        assert detail["first_reporter"] == "wire" and detail["lead_minutes"] == pytest.approx(28.8)
        assert [a["source"] for a in detail["articles"]] == ["wire", "regional"]
        embassy = next(e for e in first["events"] if "embassy compound" in e["title"])
        revisions = (await _json(http, dash.url + f"/api/events/{embassy['id']}"))["revisions"]
        assert [(r["revision"], r["changes"]) for r in revisions] == [
            (1, ["first alert"]),
            (2, ["casualties reported: 3"]),
        ]
        escalation = await _json(http, dash.url + "/api/escalation")
        chart = escalation["chart"]
        assert escalation["level"] >= 3 and len(chart["x"]) == len(chart["index"]) == len(chart["markers"])
        assert sum(1 for m in chart["markers"] if m is not None) >= 6
        assert sum(1 for i in chart["index"] if i is not None) >= 100  # a sample every six hours, and at each change
        feeds = await _json(http, dash.url + "/api/feeds")
        assert feeds["scoreboard"][0] == {"feed": "wire", "first": 3, "median_lead_minutes": pytest.approx(28.8)}
        assert {f["feed"]: f["consecutive_errors"] for f in feeds["feeds"]} == {"wire": 0, "regional": 3}
        rules = await _json(http, dash.url + "/api/rules")
        hits = {r["rule"]: r["total"] for r in rules["rules"]}
        assert hits["high-value-target-killed"] == 2 and len(rules["days"]) == 7
        async with http.get(dash.url + "/api/events/ev_nope") as response:
            assert response.status == 404


async def test_shadow_hits_count_each_article_once(redis: aioredis.Redis) -> None:
    store = DashboardStore(redis, Keys())
    for _ in range(3):  # a feed polled three times brings the same article back
        await store.count_hits(END, (), ["draft-rule"], "article-1")
    await store.count_hits(END, (), ["draft-rule"], "article-2")
    await store.count_hits(END - timedelta(days=1), ["live-rule"], (), "article-3")
    days, rules, shadow = await store.hits(END)
    assert days[-1] == "2026-01-30"
    assert shadow == {"draft-rule": [0, 0, 0, 0, 0, 0, 2]} and rules == {"live-rule": [0, 0, 0, 0, 0, 1, 0]}


async def test_the_live_stream_reads_redis_only_while_a_client_is_connected(redis: aioredis.Redis) -> None:
    async with dashboard(redis) as dash, aiohttp.ClientSession() as http:
        before = await _xreads(redis)
        await asyncio.sleep(1.0)
        assert await _xreads(redis) == before  # nobody watching: no reads
        async with http.get(dash.url + "/stream") as stream:
            assert (await stream.content.readline()).startswith(b"event: ready")
            await dash.feed(REVISION)  # no event to revise: opens one, which is an alert
            async with asyncio.timeout(30):
                while not (await stream.content.readline()).startswith(b"event: alert"):
                    pass
            assert b"embassy" in await stream.content.readline()
        assert await _xreads(redis) > before


async def _json(http: aiohttp.ClientSession, url: str) -> dict:
    async with http.get(url) as response:
        assert response.status == 200, url
        return await response.json()


async def _xreads(redis: aioredis.Redis) -> int:
    stats = await redis.info("commandstats")
    return int(stats.get("cmdstat_xread", {}).get("calls", 0))


async def _dead_letter(redis: aioredis.Redis, sink: str = "console") -> None:
    alert = b'{"id":"ev_x.r1","kind":"event","title":"A dead alert"}'
    fields = dead_fields(
        sink=sink, alert_id="ev_x.r1", alert=alert, reason="HTTP 410", attempts=1, time=END.isoformat(), entry="0-1"
    )
    await redis.xadd(Keys().dead, fields, id="1-1")
