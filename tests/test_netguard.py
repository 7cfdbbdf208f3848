"""The SSRF guard. Integration tests run a loopback server with ``allow_private_networks: false`` and show that
the guard refused before any connection (the server counts accepted connections), so the refusal cannot have
come from pytest-socket, which only blocks non-loopback addresses anyway."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from monitor.config import FetchConfig
from monitor.core.errors import FetchError
from monitor.fetching.fetcher import Fetcher
from monitor.network import guard as netguard
from monitor.network.guard import BlockedAddressError, GuardedResolver, check_url, is_public_address, make_session
from tests.support.feedserver import FeedServer

RSS = b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title></channel></rss>'

NOT_PUBLIC = [
    "127.0.0.1",
    "127.255.255.254",
    "10.1.2.3",
    "172.16.0.1",
    "172.31.255.255",
    "192.168.1.1",
    "169.254.169.254",  # AWS/GCP/Azure metadata
    "100.100.100.200",  # Alibaba metadata (CGNAT range)
    "100.64.0.1",
    "192.0.0.192",
    "0.0.0.0",
    "0.1.2.3",
    "255.255.255.255",
    "224.0.0.1",
    "239.255.255.250",
    "240.0.0.1",
    "198.18.0.1",
    "192.0.2.1",
    "203.0.113.7",
    "::",
    "::1",
    "fe80::1",
    "fe80::1%eth0",
    "fd00:ec2::254",
    "fc00::1",
    "fec0::1",
    "ff02::1",
    "2001:db8::1",
    "::ffff:127.0.0.1",
    "::ffff:169.254.169.254",
    "::ffff:10.0.0.1",
    "::127.0.0.1",
    "2002:7f00:1::1",  # 6to4 wrapping 127.0.0.1
    "64:ff9b::a9fe:a9fe",  # NAT64 wrapping 169.254.169.254
    "2001::1",  # Teredo
    "not an address",
    "",
]
PUBLIC = [
    "8.8.8.8",
    "1.1.1.1",
    "93.184.216.34",
    "2606:4700:4700::1111",
    "2a00:1450:4001:80b::200e",
    "::ffff:8.8.8.8",
    "64:ff9b::808:808",
    "2002:808:808::1",
]


@pytest.mark.parametrize("address", NOT_PUBLIC)
def test_non_public_addresses(address: str) -> None:
    assert not is_public_address(address)


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses(address: str) -> None:
    assert is_public_address(address)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/feed",
        "http://127.0.0.1:6379/",
        "http://10.0.0.1:8080/x",
        "https://192.168.0.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/",
        "http://[fd00:ec2::254]/",
        "http://[::ffff:169.254.169.254]/",
        "http://[fe80::1%25eth0]/",
        "http://2130706433/",
        "http://127.1/",
        "http://0x7f.0.0.1/",
        "http://017700000001/",
        "http://0/",
        "http://127.0.0.1./",
    ],
)
def test_check_url_refuses_private_literals(url: str) -> None:
    with pytest.raises(FetchError, match="not a public address"):
        check_url(url, allow_private=False)


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://example.org/feed",
        "gopher://example.org/",
        "javascript:alert(1)",
        "data:text/xml,<rss/>",
        "unix:///var/run/redis.sock",
        "/relative/feed.xml",
    ],
)
@pytest.mark.parametrize("allow_private", [False, True])
def test_check_url_refuses_other_schemes(url: str, allow_private: bool) -> None:
    with pytest.raises(FetchError, match=r"refused: scheme|invalid URL"):
        check_url(url, allow_private)


@pytest.mark.parametrize(
    "url", ["http://example.org/feed.xml", "https://8.8.8.8/rss", "https://[2606:4700::1]/", "http://localhost/"]
)  # names are the resolver's job, not check_url's
def test_check_url_passes_public_literals_and_names(url: str) -> None:
    assert str(check_url(url, allow_private=False)) == url


def test_check_url_allows_everything_http_when_private_networks_are_allowed() -> None:
    assert check_url("http://169.254.169.254/latest/", allow_private=True).host == "169.254.169.254"


def test_check_url_rejects_garbage() -> None:
    with pytest.raises(FetchError, match="invalid URL"):
        check_url("http://", allow_private=False)


class FakeResolver(AbstractResolver):
    """Answers from a table, so tests can make names resolve anywhere without DNS."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table
        self.asked: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.asked.append(host)
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=0,
                flags=0,
            )
            for address in self.table[host]
        ]

    async def close(self) -> None:
        pass


async def test_resolver_keeps_only_public_answers() -> None:
    resolver = GuardedResolver(FakeResolver({"mixed.test": ["10.0.0.1", "93.184.216.34", "fd00::1", "1.1.1.1"]}))
    answers = await resolver.resolve("mixed.test", 443)
    assert [a["host"] for a in answers] == ["93.184.216.34", "1.1.1.1"]
    assert all(a["port"] == 443 for a in answers)


async def test_resolver_refuses_names_with_only_private_answers() -> None:
    resolver = GuardedResolver(FakeResolver({"internal.test": ["169.254.169.254", "::1"]}))
    with pytest.raises(BlockedAddressError, match=r"internal\.test resolves only to non-public") as info:
        await resolver.resolve("internal.test", 80)
    assert info.value.addresses == ["169.254.169.254", "::1"]


# -- end to end against a loopback server -------------------------------------------------------------------


@pytest.fixture
async def server() -> AsyncIterator[FeedServer]:
    async with FeedServer() as srv:
        srv.set_feed("/wire.xml", RSS)
        yield srv


@pytest.fixture
async def guarded() -> AsyncIterator[Callable[..., Fetcher]]:
    """Fetchers with ``allow_private_networks: false``; sessions are closed at the end."""
    sessions = []

    def build(resolver: AbstractResolver | None = None, **config: object) -> Fetcher:
        fetch_config = FetchConfig.model_validate({"timeout_s": 5, **config, "allow_private_networks": False})
        session = make_session(fetch_config, resolver=resolver)
        sessions.append(session)
        return Fetcher(session, fetch_config)

    yield build
    for session in sessions:
        await session.close()


@pytest.mark.parametrize("host", ["127.0.0.1", "[::1]", "[::ffff:127.0.0.1]", "2130706433"])
async def test_literal_loopback_is_refused_before_connecting(
    server: FeedServer, guarded: Callable[..., Fetcher], host: str
) -> None:
    with pytest.raises(FetchError, match="not a public address"):
        await guarded().fetch(f"http://{host}:{server.port}/wire.xml")
    assert server.connections == 0


async def test_localhost_name_is_refused_after_resolution_before_connecting(
    server: FeedServer, guarded: Callable[..., Fetcher]
) -> None:
    # Real DNS (getaddrinfo on /etc/hosts): localhost resolves to loopback only.
    with pytest.raises(FetchError, match="localhost resolves only to non-public addresses") as info:
        await guarded().fetch(f"http://localhost:{server.port}/wire.xml")
    assert server.connections == 0
    assert info.value.reason.startswith("refused:")


async def test_name_resolving_to_metadata_is_refused(server: FeedServer, guarded: Callable[..., Fetcher]) -> None:
    fake = FakeResolver({"metadata.test": ["169.254.169.254", "fd00:ec2::254"]})
    with pytest.raises(FetchError, match=r"metadata\.test resolves only to non-public"):
        await guarded(resolver=fake).fetch("http://metadata.test/latest/meta-data/")
    assert fake.asked == ["metadata.test"]


@pytest.fixture
def loopback_counts_as_public(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let the guard treat 127.0.0.1 (our test server) as a public host, so that a test can get past the
    first hop with the guard switched on and watch what it does with the next one."""
    real = netguard.is_public_address
    monkeypatch.setattr(netguard, "is_public_address", lambda ip: str(ip) == "127.0.0.1" or real(ip))


@pytest.mark.usefixtures("loopback_counts_as_public")
async def test_public_name_is_fetched_through_the_guarded_resolver(
    server: FeedServer, guarded: Callable[..., Fetcher]
) -> None:
    fake = FakeResolver({"feeds.test": ["169.254.169.254", "127.0.0.1"]})
    result = await guarded(resolver=fake).fetch(f"http://feeds.test:{server.port}/wire.xml")
    # The metadata address was dropped from the answer, so the only connection went to the "public" one.
    assert result.status == 200
    assert server.connections == 1


@pytest.mark.usefixtures("loopback_counts_as_public")
async def test_redirect_to_metadata_literal_is_refused_by_the_guard(
    server: FeedServer, guarded: Callable[..., Fetcher]
) -> None:
    with pytest.raises(FetchError) as info:
        await guarded().fetch(f"http://127.0.0.1:{server.port}/metadata")
    # The guard's own reason: pytest-socket would have failed the connect with a different error instead.
    assert info.value.reason == "refused: 169.254.169.254 is not a public address (allow_private_networks is off)"
    assert server.hits("/metadata") == 1


@pytest.mark.usefixtures("loopback_counts_as_public")
async def test_redirect_to_private_name_is_refused_by_the_guard(
    server: FeedServer, guarded: Callable[..., Fetcher]
) -> None:
    fake = FakeResolver({"feeds.test": ["127.0.0.1"], "intranet.test": ["10.0.0.5"]})
    with pytest.raises(FetchError, match=r"intranet\.test resolves only to non-public addresses"):
        await guarded(resolver=fake).fetch(
            f"http://feeds.test:{server.port}/redirect?to=http://intranet.test:{server.port}/wire.xml"
        )
    assert server.hits("/redirect") == 1
    assert server.hits("/wire.xml") == 0


@pytest.mark.usefixtures("loopback_counts_as_public")
async def test_redirect_to_a_file_url_is_refused(server: FeedServer, guarded: Callable[..., Fetcher]) -> None:
    with pytest.raises(FetchError, match="scheme 'file'"):
        await guarded().fetch(f"http://127.0.0.1:{server.port}/redirect?to=file:///etc/passwd")


async def test_session_keeps_no_cookies(server: FeedServer) -> None:
    from aiohttp import web

    async def set_cookie(request: web.BaseRequest) -> web.StreamResponse:
        response = web.Response(body=RSS)
        response.set_cookie("session", "secret")
        return response

    server.route("/cookie.xml", set_cookie)
    config = FetchConfig.model_validate({"allow_private_networks": True, "timeout_s": 5})
    async with make_session(config) as session:
        fetcher = Fetcher(session, config)
        await fetcher.fetch(server.url("/cookie.xml"))
        await fetcher.fetch(server.url("/wire.xml"))
    assert "Cookie" not in server.requests[-1].headers
