"""The fetcher against a real loopback server (so ``allow_private_networks: true`` here; the guard has its own
tests in test_netguard.py)."""

from __future__ import annotations

import asyncio
import gzip
import socket
import time
import tracemalloc
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import pytest
from aiohttp import web

from monitor.config import FetchConfig
from monitor.core.errors import FetchError, ParseError
from monitor.core.limits import LARGE_BODY, LARGE_BODY_SLOTS
from monitor.core.models import Validators
from monitor.fetching.fetcher import Fetcher
from monitor.network.guard import make_session
from monitor.network.http import parse_retry_after
from monitor.parsing.feed import parse_feed
from tests.support.feedserver import FeedServer

RSS = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Wire</title>
<item><title>US embassy in Baghdad issues alert</title><link>https://example.org/a</link></item>
</channel></rss>"""
RSS2 = RSS.replace(b"issues alert", b"orders departure")


@pytest.fixture
async def server() -> AsyncIterator[FeedServer]:
    async with FeedServer() as srv:
        srv.set_feed("/wire.xml", RSS)
        yield srv


@pytest.fixture
async def fetcher_with() -> AsyncIterator[Callable[..., Fetcher]]:
    """Fetchers that may reach the loopback server; sessions are closed at the end."""
    sessions = []

    def build(**config: object) -> Fetcher:
        fetch_config = FetchConfig.model_validate({"timeout_s": 5, "allow_private_networks": True, **config})
        session = make_session(fetch_config)
        sessions.append(session)
        return Fetcher(session, fetch_config)

    yield build
    for session in sessions:
        await session.close()


@pytest.fixture
async def fetcher(fetcher_with: Callable[..., Fetcher]) -> Fetcher:
    return fetcher_with()


async def test_fetches_body_headers_and_validators(server: FeedServer, fetcher: Fetcher) -> None:
    result = await fetcher.fetch(server.url("/wire.xml"))
    assert result.status == 200
    assert result.body == RSS
    assert result.headers["content-type"] == "application/rss+xml; charset=utf-8"
    assert all(name == name.lower() for name in result.headers)
    assert result.validators.etag and result.validators.etag.startswith('"')
    assert result.validators.last_modified == "Mon, 01 Jan 2024 00:01:00 GMT"
    assert result.url == server.url("/wire.xml")
    assert 0 <= result.elapsed_s < 5
    sent = server.requests[-1].headers
    assert sent["User-Agent"] == FetchConfig.model_validate({}).user_agent
    assert sent["Accept-Encoding"] == "gzip, deflate"
    assert "If-None-Match" not in sent and "If-Modified-Since" not in sent


async def test_user_agent_comes_from_config(server: FeedServer, fetcher_with: Callable[..., Fetcher]) -> None:
    await fetcher_with(user_agent="desk-monitor/2 (+mailto:desk@example.org)").fetch(server.url("/wire.xml"))
    assert server.requests[-1].headers["User-Agent"] == "desk-monitor/2 (+mailto:desk@example.org)"


async def test_conditional_get_gives_304_without_body(server: FeedServer, fetcher: Fetcher) -> None:
    first = await fetcher.fetch(server.url("/wire.xml"))
    second = await fetcher.fetch(server.url("/wire.xml"), first.validators)
    assert second.status == 304
    assert second.body is None
    assert second.validators == first.validators
    sent = server.requests[-1].headers
    assert sent["If-None-Match"] == first.validators.etag
    assert sent["If-Modified-Since"] == first.validators.last_modified


async def test_changed_feed_gives_new_body_and_validators(server: FeedServer, fetcher: Fetcher) -> None:
    first = await fetcher.fetch(server.url("/wire.xml"))
    server.set_feed("/wire.xml", RSS2)
    second = await fetcher.fetch(server.url("/wire.xml"), first.validators)
    assert second.status == 200
    assert second.body == RSS2
    assert second.validators.etag != first.validators.etag
    assert server.hits("/wire.xml") == 2


async def test_last_modified_alone_is_enough(server: FeedServer, fetcher: Fetcher) -> None:
    server.set_feed("/dated.xml", RSS, etag=False)
    first = await fetcher.fetch(server.url("/dated.xml"))
    assert first.validators.etag is None
    second = await fetcher.fetch(server.url("/dated.xml"), first.validators)
    assert second.status == 304
    assert second.validators.last_modified == first.validators.last_modified


async def test_no_validators_means_no_conditional_headers(server: FeedServer, fetcher: Fetcher) -> None:
    server.set_feed("/plain.xml", RSS, etag=False, last_modified=False)
    result = await fetcher.fetch(server.url("/plain.xml"), Validators())
    assert result.validators == Validators()
    assert "If-None-Match" not in server.requests[-1].headers


async def test_gzip_body_is_decoded_and_wire_headers_dropped(server: FeedServer, fetcher: Fetcher) -> None:
    async def gzipped(request: web.BaseRequest) -> web.StreamResponse:
        return web.Response(
            body=gzip.compress(RSS), headers={"Content-Encoding": "gzip", "Content-Type": "application/rss+xml"}
        )

    server.route("/gz.xml", gzipped)
    result = await fetcher.fetch(server.url("/gz.xml"))
    assert result.body == RSS
    assert "content-encoding" not in result.headers and "content-length" not in result.headers


async def test_gzip_bomb_is_stopped_early(server: FeedServer, fetcher_with: Callable[..., Fetcher]) -> None:
    fetcher = fetcher_with(max_bytes=1_000_000)
    await fetcher.fetch(server.url("/wire.xml"))  # warm up the connection outside the measurement
    tracemalloc.start()
    try:
        started = time.monotonic()
        with pytest.raises(FetchError, match=r"larger than max_bytes \(1000000\)"):
            await fetcher.fetch(server.url("/bomb"))
        elapsed = time.monotonic() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # 1 GiB inflated would take seconds and a gigabyte; stopping at the cap takes neither.
    assert peak < 64 * 1024 * 1024
    assert elapsed < 5


@pytest.mark.parametrize("path", ["/big", "/big-chunked"])
async def test_oversized_body_is_refused(server: FeedServer, fetcher_with: Callable[..., Fetcher], path: str) -> None:
    with pytest.raises(FetchError, match="larger than max_bytes") as info:
        await fetcher_with(max_bytes=1_000_000).fetch(server.url(path))
    assert info.value.url == server.url(path)


async def test_body_exactly_at_the_cap_is_accepted(server: FeedServer, fetcher_with: Callable[..., Fetcher]) -> None:
    result = await fetcher_with(max_bytes=len(RSS)).fetch(server.url("/wire.xml"))
    assert result.body == RSS


async def test_redirects_are_followed(server: FeedServer, fetcher: Fetcher) -> None:
    result = await fetcher.fetch(server.url("/redirect?to=/wire.xml"))
    assert result.status == 200
    assert result.body == RSS
    assert result.url == server.url("/wire.xml")


async def test_redirect_loop_ends_after_max_redirects(server: FeedServer, fetcher_with: Callable[..., Fetcher]) -> None:
    with pytest.raises(FetchError, match="more than 3 redirects"):
        await fetcher_with(max_redirects=3).fetch(server.url("/loop"))
    assert server.hits("/loop") == 4


async def test_zero_max_redirects_follows_none(server: FeedServer, fetcher_with: Callable[..., Fetcher]) -> None:
    with pytest.raises(FetchError, match="more than 0 redirects"):
        await fetcher_with(max_redirects=0).fetch(server.url("/redirect?to=/wire.xml"))
    assert server.hits("/wire.xml") == 0


async def test_redirect_without_location_is_an_error(server: FeedServer, fetcher: Fetcher) -> None:
    async def bare(request: web.BaseRequest) -> web.StreamResponse:
        return web.Response(status=301)

    server.route("/bare", bare)
    with pytest.raises(FetchError, match="301 without Location") as info:
        await fetcher.fetch(server.url("/bare"))
    assert info.value.status == 301


async def test_429_carries_retry_after_seconds(server: FeedServer, fetcher: Fetcher) -> None:
    with pytest.raises(FetchError) as info:
        await fetcher.fetch(server.url("/throttled"))
    assert (info.value.status, info.value.retry_after, info.value.reason) == (429, 120.0, "HTTP 429")


async def test_503_carries_retry_after_date(server: FeedServer, fetcher: Fetcher) -> None:
    with pytest.raises(FetchError) as info:
        await fetcher.fetch(server.url("/unavailable"))
    assert info.value.status == 503
    assert info.value.retry_after is not None and 580 <= info.value.retry_after <= 600


async def test_404_is_an_error_without_retry_after(server: FeedServer, fetcher: Fetcher) -> None:
    with pytest.raises(FetchError) as info:
        await fetcher.fetch(server.url("/missing.xml"))
    assert (info.value.status, info.value.retry_after) == (404, None)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120.0),
        ("0", 0.0),
        (" 7 ", 7.0),
        ("Wed, 01 Jan 2025 00:01:40 GMT", 100.0),
        ("Tue, 31 Dec 2024 23:00:00 GMT", 0.0),
        ("99999999999", 86_400.0),
        ("-5", None),
        ("1.5", None),
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_retry_after(value: str | None, seconds: float | None) -> None:
    assert parse_retry_after(value, datetime(2025, 1, 1, tzinfo=UTC)) == seconds


async def test_slow_loris_hits_the_deadline(server: FeedServer, fetcher_with: Callable[..., Fetcher]) -> None:
    started = time.monotonic()
    with pytest.raises(FetchError, match=r"no complete response within 1 s"):
        await fetcher_with(timeout_s=1).fetch(server.url("/slow"))
    assert time.monotonic() - started < 3


async def test_silent_server_times_out(server: FeedServer, fetcher_with: Callable[..., Fetcher]) -> None:
    started = time.monotonic()
    with pytest.raises(FetchError, match=r"timed out|no complete response"):
        await fetcher_with(timeout_s=0.5).fetch(server.url("/hang"))
    assert time.monotonic() - started < 3


async def test_refused_connection_is_a_fetch_error(fetcher: Fetcher) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(FetchError, match="connection failed") as info:
        await fetcher.fetch(f"http://127.0.0.1:{port}/feed.xml")
    assert isinstance(info.value.__cause__, Exception)
    assert info.value.status is None


async def test_truncated_body_is_a_fetch_error(server: FeedServer, fetcher: Fetcher) -> None:
    async def truncated(request: web.BaseRequest) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Length": "1000"})
        await response.prepare(request)
        await response.write(b"<rss>")
        assert request.transport is not None
        request.transport.close()
        return response

    server.route("/truncated.xml", truncated)
    with pytest.raises(FetchError, match=r"truncated|disconnected"):
        await fetcher.fetch(server.url("/truncated.xml"))


async def test_corrupt_gzip_is_a_fetch_error(server: FeedServer, fetcher: Fetcher) -> None:
    async def corrupt(request: web.BaseRequest) -> web.StreamResponse:
        return web.Response(body=b"\x1f\x8bnot gzip at all", headers={"Content-Encoding": "gzip"})

    server.route("/corrupt.xml", corrupt)
    with pytest.raises(FetchError, match=r"wrongly encoded|malformed"):
        await fetcher.fetch(server.url("/corrupt.xml"))


async def test_html_page_fetches_but_does_not_parse(server: FeedServer, fetcher: Fetcher) -> None:
    result = await fetcher.fetch(server.url("/html"))
    assert result.status == 200 and result.body
    with pytest.raises(ParseError, match="not a feed"):
        parse_feed(result.body, headers=result.headers, feed="wire", url=result.url, fetched=datetime.now(UTC))


async def test_empty_body_fetches_but_does_not_parse(server: FeedServer, fetcher: Fetcher) -> None:
    result = await fetcher.fetch(server.url("/empty"))
    assert result.body == b""
    with pytest.raises(ParseError, match="empty body"):
        parse_feed(result.body, headers=result.headers, feed="wire", url=result.url, fetched=datetime.now(UTC))


async def test_fetched_feed_parses_into_articles(server: FeedServer, fetcher: Fetcher) -> None:
    result = await fetcher.fetch(server.url("/wire.xml"))
    assert result.body is not None
    articles = parse_feed(result.body, headers=result.headers, feed="wire", url=result.url, fetched=datetime.now(UTC))
    assert [a.title for a in articles] == ["US embassy in Baghdad issues alert"]


async def test_only_a_few_large_bodies_are_held_at_once(
    server: FeedServer, fetcher_with: Callable[..., Fetcher]
) -> None:
    """Bodies past LARGE_BODY wait for one of LARGE_BODY_SLOTS; the others finish once a slot frees."""
    release = asyncio.Event()

    async def big(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/rss+xml"})
        await response.prepare(request)
        await response.write(b"<rss>" + b" " * (LARGE_BODY + 100_000))
        await release.wait()
        await response.write(b"</rss>")
        await response.write_eof()
        return response

    server.route("/big", big)
    fetcher = fetcher_with(timeout_s=10, max_bytes=4 * LARGE_BODY)
    fetches = [asyncio.create_task(fetcher.fetch(server.url("/big"))) for _ in range(LARGE_BODY_SLOTS + 2)]
    for _ in range(100):
        await asyncio.sleep(0.05)
        slots = fetcher._large_slots
        if slots is not None and slots.locked() and len(getattr(slots, "_waiters", None) or ()) == 2:
            break
    else:
        pytest.fail("the fetches beyond the slots did not wait")
    release.set()
    results = await asyncio.gather(*fetches)
    assert [len(r.body or b"") for r in results] == [LARGE_BODY + 100_011] * (LARGE_BODY_SLOTS + 2)
