"""The private-network (SSRF) guard for every outgoing HTTP request: feeds now, webhooks later.

A feed URL is configured by a person but redirects and DNS answers are chosen by whoever runs the server, so an
untrusted hop could point us at ``169.254.169.254`` (cloud credentials), ``localhost`` (our own Redis) or the LAN.
Two checks close that:

- ``check_url`` refuses non-http(s) schemes and IP-literal hosts that are not public. aiohttp connects to a literal
  without asking the resolver, so this must run on the first URL and on every redirect hop.
- ``GuardedResolver`` drops non-public addresses from each DNS answer. aiohttp connects to exactly the addresses
  the resolver returns, so the check is bound to the connection and a name that re-resolves to a private
  address between a check and the connect (DNS rebinding) gains nothing.

Both refuse before any connection is attempted. ``allow_private_networks: true`` switches both off.
"""

from __future__ import annotations

import ipaddress
import socket
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from monitor.config import FetchConfig
from monitor.core.errors import FetchError

__all__ = ["BlockedAddressError", "GuardedResolver", "check_url", "guard_refusal", "is_public_address", "make_session"]

IPAddress = IPv4Address | IPv6Address

# Spelled out rather than trusting only ``is_global``: its tables changed between Python patch releases, and
# a few special ranges (multicast, NAT64, 6to4) count as "global" there although they can reach private hosts.
_BLOCKED_V4 = tuple(
    IPv4Network(n)
    for n in (
        "0.0.0.0/8",  # "this network", unspecified
        "10.0.0.0/8",  # private
        "100.64.0.0/10",  # carrier-grade NAT; Alibaba's metadata service is 100.100.100.200
        "127.0.0.0/8",  # loopback
        "169.254.0.0/16",  # link-local, incl. the AWS/GCP/Azure metadata service 169.254.169.254
        "172.16.0.0/12",  # private
        "192.0.0.0/24",  # IETF protocol assignments; Oracle's metadata service is 192.0.0.192
        "192.0.2.0/24",  # documentation
        "192.88.99.0/24",  # deprecated 6to4 relay anycast
        "192.168.0.0/16",  # private
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # documentation
        "203.0.113.0/24",  # documentation
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, incl. broadcast 255.255.255.255
    )
)
_BLOCKED_V6 = tuple(
    IPv6Network(n)
    for n in (
        "::/96",  # unspecified, loopback and the deprecated IPv4-compatible form
        "64:ff9b:1::/48",  # local-use NAT64
        "100::/64",  # discard-only
        "2001::/23",  # IETF protocol assignments, incl. Teredo
        "2001:db8::/32",  # documentation
        "3fff::/20",  # documentation (2024)
        "5f00::/16",  # segment routing SIDs
        "fc00::/7",  # unique local, incl. the AWS metadata service fd00:ec2::254
        "fe80::/10",  # link-local
        "fec0::/10",  # deprecated site-local
        "ff00::/8",  # multicast
    )
)
_NAT64 = IPv6Network("64:ff9b::/96")
_NUMERIC_HOST_CHARS = frozenset("0123456789abcdefxABCDEFX.")


def _as_address(ip: str | IPAddress) -> IPAddress | None:
    if not isinstance(ip, str):
        return ip
    try:
        return ipaddress.ip_address(ip)
    except ValueError:
        return None


def is_public_address(ip: str | IPAddress) -> bool:
    """True when ``ip`` is a globally routable unicast address; anything unparseable counts as not public.

    IPv6 forms that embed an IPv4 address (IPv4-mapped ``::ffff:a.b.c.d``, 6to4 ``2002::/16``, NAT64
    ``64:ff9b::/96``) are judged by the embedded address, since that is where the packets end up.
    """
    addr = _as_address(ip)
    if addr is None:
        return False
    if isinstance(addr, IPv6Address):
        embedded = addr.ipv4_mapped or addr.sixtofour
        if embedded is None and addr in _NAT64:
            embedded = IPv4Address(int(addr) & 0xFFFFFFFF)
        if embedded is not None:
            return is_public_address(embedded)
        blocked: tuple[IPv4Network, ...] | tuple[IPv6Network, ...] = _BLOCKED_V6
    else:
        blocked = _BLOCKED_V4
    if any(addr in net for net in blocked):
        return False
    return addr.is_global and not (
        addr.is_multicast
        or addr.is_reserved
        or addr.is_link_local
        or addr.is_loopback
        or addr.is_unspecified
        or addr.is_private
    )


def _literal_address(host: str) -> IPAddress | None:
    """The address an IP-literal host means, including legacy numeric forms (``2130706433``, ``127.1``)."""
    addr = _as_address(host.split("%", 1)[0])
    if addr is not None:
        return addr
    if set(host) <= _NUMERIC_HOST_CHARS:
        try:
            # inet_aton accepts the octal, hex and short forms that some resolvers also accept.
            return IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def check_url(url: str, allow_private: bool) -> URL:
    """Parse ``url`` and refuse it unless it is http(s) and, when private networks are not allowed, its host is
    not a non-public IP literal. Host names are left to ``GuardedResolver``. Raises ``FetchError``."""
    try:
        parsed = URL(url)
    except (ValueError, TypeError) as exc:
        raise FetchError(url, "invalid URL") from exc
    if parsed.scheme not in ("http", "https"):
        raise FetchError(url, f"refused: scheme {parsed.scheme or '(none)'!r} is not http or https")
    host = parsed.raw_host
    if not host:
        raise FetchError(url, "invalid URL: no host")
    if allow_private:
        return parsed
    addr = _literal_address(host.rstrip("."))
    if addr is not None and not is_public_address(addr):
        raise FetchError(url, f"refused: {host} is not a public address (allow_private_networks is off)")
    return parsed


class BlockedAddressError(OSError):
    """A host name resolved only to non-public addresses.

    An ``OSError`` so that aiohttp treats it as a failed lookup (wrapping it in its connector error) instead of
    crashing the connector; ``guard_refusal`` digs it out again.
    """

    def __init__(self, host: str, addresses: list[str]) -> None:
        self.host = host
        self.addresses = addresses
        shown = ", ".join(addresses[:4]) or "no address"
        super().__init__(f"refused: {host} resolves only to non-public addresses ({shown})")

    def __str__(self) -> str:
        return str(self.args[0])


def guard_refusal(exc: BaseException) -> BlockedAddressError | None:
    """The guard's refusal behind an aiohttp error, if that is what the error is."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, BlockedAddressError):
            return current
        seen.add(id(current))
        nested = getattr(current, "os_error", None)
        current = nested if isinstance(nested, BaseException) else current.__cause__ or current.__context__
    return None


class GuardedResolver(AbstractResolver):
    """Resolves with ``inner`` (a threaded ``getaddrinfo`` by default) and keeps only public addresses."""

    def __init__(self, inner: AbstractResolver | None = None) -> None:
        self._inner = inner if inner is not None else aiohttp.ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        answers = await self._inner.resolve(host, port, family)
        public = [answer for answer in answers if is_public_address(answer["host"])]
        if not public:
            raise BlockedAddressError(host, [answer["host"] for answer in answers])
        return public

    async def close(self) -> None:
        await self._inner.close()


def make_session(config: FetchConfig, *, resolver: AbstractResolver | None = None) -> aiohttp.ClientSession:
    """An aiohttp session whose connections pass the guard (unless ``allow_private_networks``).

    ``resolver`` replaces the system resolver underneath the guard (tests use a fake one). Call from a running
    event loop. Callers must still run ``check_url`` on every URL they request, redirects included, and should
    not follow redirects automatically.
    """
    if not config.allow_private_networks:
        resolver = GuardedResolver(resolver)
    connector = aiohttp.TCPConnector(
        resolver=resolver, limit=config.concurrency, limit_per_host=config.per_host_concurrency
    )
    return aiohttp.ClientSession(
        connector=connector,
        # Proxies from the environment would make the guard check the proxy, not the target.
        trust_env=False,
        # Cookies set by one feed must not travel to another feed or to a webhook.
        cookie_jar=aiohttp.DummyCookieJar(),
        headers={"User-Agent": config.user_agent},
        timeout=aiohttp.ClientTimeout(total=config.timeout_s),
    )
