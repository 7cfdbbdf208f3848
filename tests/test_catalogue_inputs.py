"""Regression tests for bad-input items of ``../shared/RELIABILITY.md`` §2 that had none: A8 (backslash URLs),
A12 (unknown or stacked Content-Encoding), A13 (TLS that does not verify), B5 (external DTDs), E5 (ReDoS in a
rule), E6 (YAML tags that run code). Each test names its catalogue item; all servers are on 127.0.0.1."""

from __future__ import annotations

import gzip
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from monitor.config import FetchConfig, load_config
from monitor.core.errors import ConfigError, FetchError
from monitor.core.models import Article
from monitor.detection.matcher import Matcher
from monitor.detection.rulefile import load_rules
from monitor.fetching.fetcher import Fetcher
from monitor.network.guard import check_url, make_session
from monitor.parsing.feed import parse_feed
from tests.support.articles import ESCALATION, rss
from tests.support.commands import run_monitor
from tests.support.feedserver import FeedServer
from tests.support.rulepack import ENTITIES, RULE, pack

ROOT = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.fixture
async def fetcher() -> AsyncIterator[Fetcher]:
    config = FetchConfig.model_validate({"timeout_s": 5, "allow_private_networks": True})
    session = make_session(config)
    try:
        yield Fetcher(session, config)
    finally:
        await session.close()


# -- A8 ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["http://127.0.0.1:8888\\@example.com/", "http://example.com\\@127.0.0.1/feed"])
def test_a_backslash_url_is_refused_before_any_connect(url: str) -> None:
    """A8: ``\\`` in the authority is read differently by different URL parsers (GHSA-rph4-96w6-q594): refused,
    even where private networks are allowed, rather than guessed."""
    for allow in (False, True):
        with pytest.raises(FetchError, match="invalid URL"):
            check_url(url, allow)


async def test_a_redirect_to_a_backslash_url_is_refused(fetcher: Fetcher) -> None:
    """A8, through a redirect: the hop is checked like the first URL, and the target host never gets a request."""
    async with FeedServer() as target, FeedServer() as first:
        target.set_feed("/wire.xml", rss(ESCALATION[:1]))

        async def handler(request: web.BaseRequest) -> web.StreamResponse:
            location = f"http://127.0.0.1:{target.port}\\@example.com/wire.xml"
            return web.Response(status=302, headers={"Location": location})

        first.route("/moved", handler)
        with pytest.raises(FetchError) as caught:
            await fetcher.fetch(first.url("/moved"), None)
        assert "invalid" in caught.value.reason
        assert target.requests == []


def test_a_backslash_feed_url_in_the_config_is_refused_at_load(tmp_path: Path) -> None:
    """A8 in the configuration: a feed URL the guard would refuse is a load error with ``path:line``."""
    path = tmp_path / "monitor.yaml"
    path.write_text(
        f"rules: [{ROOT / 'rules'}]\nfeeds:\n  - name: odd\n    url: 'http://127.0.0.1:8888\\@example.com/'\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    assert any(str(p).startswith(f"{path}:4") for p in caught.value.problems), caught.value.problems


# -- A12 ---------------------------------------------------------------------------------------------------


ENCODINGS = {
    "br": b"\x8b\x02\x80not really brotli",
    "zstd": b"\x28\xb5\x2f\xfd not really zstd",
    "x-custom": b"whatever this is",
    "gzip, gzip": gzip.compress(b"<rss>only once</rss>"),
}


@pytest.mark.parametrize("encoding", sorted(ENCODINGS))
async def test_an_unknown_or_stacked_encoding_is_a_feed_error(fetcher: Fetcher, encoding: str) -> None:
    """A12: the fetcher asks for ``gzip, deflate`` only; any other (or a doubled) Content-Encoding is an error of
    that feed, never a crash nor an undecoded body handed to the parser."""
    seen: list[str] = []
    async with FeedServer() as server:

        async def handler(request: web.BaseRequest) -> web.StreamResponse:
            seen.append(request.headers.get("Accept-Encoding", ""))
            return web.Response(
                body=ENCODINGS[encoding],
                headers={"Content-Type": "application/rss+xml", "Content-Encoding": encoding},
            )

        server.route("/odd.xml", handler)
        with pytest.raises(FetchError) as caught:
            await fetcher.fetch(server.url("/odd.xml"), None)
    assert seen == ["gzip, deflate"]
    assert caught.value.reason, caught.value


# -- A13 ---------------------------------------------------------------------------------------------------


def _certificate(folder: Path, host: str) -> tuple[Path, Path]:
    key, cert = folder / f"{host}.key", folder / f"{host}.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "2", "-subj", f"/CN={host}", "-addext", f"subjectAltName=DNS:{host}"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


@pytest.mark.parametrize("host", ["localhost", "wrong.example"])
async def test_tls_that_does_not_verify_fails_closed(fetcher: Fetcher, tmp_path: Path, host: str) -> None:
    """A13: a self-signed certificate (and one for another host name) fails the fetch with a TLS reason before any
    HTTP request is made; there is no insecure fallback."""
    import ssl

    cert, key = _certificate(tmp_path, host)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    requests: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        requests.append(request.path)
        return web.Response(body=rss(ESCALATION[:1]), content_type="application/rss+xml")

    app = web.Application()
    app.router.add_get("/wire.xml", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    port = runner.addresses[0][1]
    try:
        with pytest.raises(FetchError) as caught:
            await fetcher.fetch(f"https://localhost:{port}/wire.xml", None)
    finally:
        await runner.cleanup()
    assert caught.value.reason == "TLS handshake or certificate failed"
    assert requests == []


def test_nothing_turns_certificate_checks_off() -> None:
    """A13: no code path builds a client with verification off (``ssl=False``, ``CERT_NONE``, ``verify_ssl``)."""
    offending = []
    for path in (ROOT / "monitor").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        for needle in ("ssl=False", "CERT_NONE", "verify_ssl", "check_hostname = False", "_create_unverified"):
            if needle in text:
                offending.append(f"{path.relative_to(ROOT)}: {needle}")
    assert offending == []


# -- B5 ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fast", [True, False], ids=["lxml", "feedparser"])
async def test_an_external_dtd_is_never_opened_nor_fetched(tmp_path: Path, fast: bool) -> None:
    """B5: ``<!DOCTYPE rss SYSTEM "file://...">`` or an http DTD: the parsers neither open the file nor connect
    (an audit hook watches every ``open`` and ``socket.connect`` of the parse), and the items still come through."""
    canary = tmp_path / "canary.dtd"
    canary.write_text('<!ENTITY leak "CANARY-TEXT">')
    async with FeedServer() as server:
        server.set_feed("/evil.dtd", b'<!ENTITY leak "CANARY-TEXT">', content_type="application/xml-dtd")
        events: list[tuple[str, str]] = []
        for system in (canary.as_uri(), server.url("/evil.dtd")):
            body = rss(ESCALATION[:1]).replace(
                b"<rss version='2.0'>", f"<!DOCTYPE rss SYSTEM \"{system}\"><rss version='2.0'>".encode()
            )
            body = body.replace(b"</description>", b" &leak;</description>", 1)
            with _watching(events):
                articles = parse_feed(
                    body, headers={"content-type": "application/rss+xml"}, feed="f", url="http://x.test/",
                    fetched=NOW, fast=fast,
                )  # fmt: skip
            assert [a.title for a in articles] == [ESCALATION[0].title]
            assert all("CANARY" not in a.summary for a in articles)
        assert server.hits("/evil.dtd") == 0
    assert [e for e in events if e[0] == "socket.connect" or str(canary) in e[1]] == []


_AUDIT: list[Callable[[str, tuple[Any, ...]], None]] = []


def _hook(event: str, args: tuple[Any, ...]) -> None:
    for watcher in _AUDIT:
        watcher(event, args)


class _watching:
    """Record ``open`` and ``socket.connect`` audit events while active (one hook for the session: hooks cannot
    be removed, so it only forwards to whoever is watching)."""

    installed = False

    def __init__(self, events: list[tuple[str, str]]) -> None:
        self.events = events

    def _record(self, event: str, args: tuple[Any, ...]) -> None:
        if event in ("open", "socket.connect"):
            self.events.append((event, str(args[0]) if event == "open" else str(args[1:])))

    def __enter__(self) -> None:
        if not _watching.installed:
            sys.addaudithook(_hook)
            _watching.installed = True
        _AUDIT.append(self._record)

    def __exit__(self, *exc: object) -> None:
        _AUDIT.remove(self._record)


# -- E5 ----------------------------------------------------------------------------------------------------


def test_a_catastrophic_regex_in_a_rule_matches_in_linear_time(tmp_path: Path) -> None:
    """E5: ``^(\\w+\\s?)*$`` took 5.6 s on 27 characters with Python's ``re``; rules compile with RE2, so a
    title built to make it backtrack is matched at once, however long."""
    redos = "  redos: {regex: ['^(\\w+\\s?)*$']}"
    rule = RULE.replace("  yemen: {keywords: [Yemen]}", "  yemen: {keywords: [Yemen]}\n" + redos)
    rule = rule.replace("and not yemen", "and not yemen and not redos")
    matcher = Matcher(load_rules([pack(tmp_path, rule)]))
    title = "US airstrike hits depot in Baghdad " + "a" * 5000 + "!"
    article = Article("a1", "f", "http://x.test/a", None, title, "", "", NOW, NOW)
    started = time.monotonic()
    match = matcher.match_article(article)
    assert time.monotonic() - started < 2.0
    assert match.rules == ("test-strike",)  # the pattern ran (and did not match the "!")
    assert ENTITIES  # the pack's entities file is the shared one


# -- E6 ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["config", "rule"])
def test_a_yaml_tag_that_runs_code_is_refused_with_path_and_line(tmp_path: Path, where: str) -> None:
    """E6: ``!!python/object/apply:os.system`` in the configuration or a rule file: ``monitor check`` exits 2 with
    ``path:line`` and the command never runs (its canary file is not created)."""
    canary = tmp_path / "ran"
    tag = f"!!python/object/apply:os.system ['touch {canary}']"
    rules = pack(tmp_path, RULE + (f"notes: {tag}\n" if where == "rule" else ""))
    config = tmp_path / "monitor.yaml"
    config.write_text(f"rules: [{rules}]\n" + (f"replica_name: {tag}\n" if where == "config" else ""))
    done = run_monitor("check", "-c", str(config))
    bad = config if where == "config" else rules / "rule0.yaml"
    assert done.returncode == 2, done.stderr
    assert f"{bad}:" in done.stderr and "Traceback" not in done.stderr
    assert not canary.exists()
