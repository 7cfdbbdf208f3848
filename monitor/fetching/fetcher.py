"""Fetching feeds over HTTP: conditional GET, bounded in time and size, redirects re-checked by the guard.

The fetcher only moves bytes; parsing is ``monitor.parsing.feed``. Every aiohttp error is translated into
``FetchError`` here, so aiohttp types never reach the rest of the monitor.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import aiohttp
from multidict import CIMultiDictProxy
from yarl import URL

from monitor.config import FetchConfig
from monitor.core.clock import Clock, SystemClock
from monitor.core.errors import FetchError
from monitor.core.limits import LARGE_BODY, LARGE_BODY_SLOTS
from monitor.core.memory import release_free_memory
from monitor.core.models import Validators
from monitor.network.guard import check_url, guard_refusal
from monitor.network.http import parse_retry_after

__all__ = ["FetchResult", "Fetcher"]

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/rdf+xml;q=0.9, "
    "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
)
# brotli and zstd are left out on purpose: aiohttp only decodes them when optional packages are present.
_ACCEPT_ENCODING = "gzip, deflate"
#: The Content-Encodings the body arrives decoded from: those asked for (and none).
_DECODED = frozenset({"", "identity", "gzip", "x-gzip", "deflate"})
_CHUNK = 64 * 1024
_CONNECT_TIMEOUT_S = 10.0
_READ_TIMEOUT_S = 15.0
# A server could ask us to stay away for years; past a day the scheduler's own backoff is the better judge.
# These describe the body on the wire; ``FetchResult.body`` is already decoded, so they would mislead.
_WIRE_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding"})


@dataclass(frozen=True, slots=True)
class FetchResult:
    """One successful fetch: ``status`` is 200 (any 2xx, reported as received) with the decoded ``body``,
    or 304 with ``body`` None. ``headers`` are the final response's, names lower-cased, the first value of
    repeated ones, without the wire-encoding headers. ``url`` is the URL after redirects."""

    status: int
    body: bytes | None
    headers: dict[str, str]
    validators: Validators
    url: str
    elapsed_s: float


def _plain_headers(headers: CIMultiDictProxy[str]) -> dict[str, str]:
    plain: dict[str, str] = {}
    for name, value in headers.items():
        key = name.lower()
        if key not in _WIRE_HEADERS:
            plain.setdefault(key, value)
    return plain


def _translate(url: str, exc: BaseException) -> FetchError:
    """A short, safe reason for a network failure; the original stays chained for debugging."""
    blocked = guard_refusal(exc)
    if blocked is not None:
        reason = str(blocked)
    elif isinstance(exc, aiohttp.ConnectionTimeoutError):
        reason = "connect timed out"
    elif isinstance(exc, aiohttp.ServerTimeoutError):
        reason = "read timed out"
    elif isinstance(exc, aiohttp.ClientSSLError):
        reason = "TLS handshake or certificate failed"
    elif isinstance(exc, aiohttp.ClientConnectorDNSError):
        reason = "DNS lookup failed"
    elif isinstance(exc, aiohttp.ClientConnectorError):
        reason = f"connection failed ({exc.os_error.strerror or 'refused'})"
    elif isinstance(exc, aiohttp.ServerDisconnectedError):
        reason = "server disconnected"
    elif isinstance(exc, aiohttp.ClientPayloadError):
        reason = "body truncated or wrongly encoded"
    elif isinstance(exc, aiohttp.InvalidURL):
        reason = "invalid URL"
    elif isinstance(exc, aiohttp.ClientResponseError):
        reason = "malformed HTTP response"
    else:
        reason = "network error"
    return FetchError(url, reason)


class Fetcher:
    """Fetches feed URLs with one shared session (built by ``monitor.network.guard.make_session``)."""

    def __init__(self, session: aiohttp.ClientSession, config: FetchConfig, *, clock: Clock | None = None) -> None:
        self._session = session
        self._config = config
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._large_slots: asyncio.Semaphore | None = None
        self._timeout = aiohttp.ClientTimeout(
            total=None,
            sock_connect=min(_CONNECT_TIMEOUT_S, config.timeout_s),
            sock_read=min(_READ_TIMEOUT_S, config.timeout_s),
        )

    async def fetch(self, url: str, validators: Validators | None = None) -> FetchResult:
        """GET ``url`` conditionally; raise ``FetchError`` for anything but a 2xx or a 304.

        The whole exchange, redirects and body included, must finish within ``timeout_s``: per-read timeouts
        alone let a server that drips one byte a second hold a fetch forever.
        """
        started = self._clock.monotonic()
        try:
            async with asyncio.timeout(self._config.timeout_s):
                return await self._follow(url, validators, started)
        except TimeoutError as exc:
            raise FetchError(url, f"no complete response within {self._config.timeout_s:g} s") from exc

    async def _follow(self, url: str, validators: Validators | None, started: float) -> FetchResult:
        target = check_url(url, self._config.allow_private_networks)
        headers = self._request_headers(validators)
        for _ in range(self._config.max_redirects + 1):
            try:
                async with self._session.get(
                    target, headers=headers, allow_redirects=False, timeout=self._timeout
                ) as resp:
                    if resp.status in _REDIRECTS:
                        location = resp.headers.get("Location")
                        if not location:
                            raise FetchError(url, f"HTTP {resp.status} without Location", status=resp.status)
                        target = self._next_hop(url, resp.url, location)
                        continue
                    return await self._result(url, resp, validators, started)
            except FetchError:
                raise
            except (aiohttp.ClientError, OSError, ValueError) as exc:
                raise _translate(url, exc) from exc
        raise FetchError(url, f"more than {self._config.max_redirects} redirects")

    def _next_hop(self, url: str, current: URL, location: str) -> URL:
        try:
            following = current.join(URL(location))
        except ValueError as exc:
            raise FetchError(url, "invalid redirect Location") from exc
        # Every hop passes the guard before we connect to it.
        return check_url(str(following), self._config.allow_private_networks)

    def _request_headers(self, validators: Validators | None) -> dict[str, str]:
        headers = {
            "User-Agent": self._config.user_agent,
            "Accept": _ACCEPT,
            "Accept-Encoding": _ACCEPT_ENCODING,
        }
        if validators is not None and validators.etag:
            headers["If-None-Match"] = validators.etag
        if validators is not None and validators.last_modified:
            headers["If-Modified-Since"] = validators.last_modified
        return headers

    async def _result(
        self, url: str, resp: aiohttp.ClientResponse, sent: Validators | None, started: float
    ) -> FetchResult:
        headers = _plain_headers(resp.headers)
        if resp.status == 304:
            # A 304 may omit the validators; the ones we sent are still good then.
            previous = sent or Validators()
            validators = Validators(
                etag=headers.get("etag") or previous.etag,
                last_modified=headers.get("last-modified") or previous.last_modified,
            )
            return FetchResult(304, None, headers, validators, str(resp.url), self._elapsed(started))
        if not 200 <= resp.status < 300:
            retry_after = None
            if resp.status in (429, 503):
                retry_after = parse_retry_after(resp.headers.get("Retry-After"), self._clock.now())
            raise FetchError(url, f"HTTP {resp.status}", status=resp.status, retry_after=retry_after)
        coding = ", ".join(resp.headers.getall("Content-Encoding", [])).strip().lower()
        if coding not in _DECODED:
            # aiohttp passes an encoding it does not know through undecoded, and decodes a stacked one only once:
            # either way the parser would get bytes that are not the feed (RELIABILITY.md A12).
            raise FetchError(url, f"unsupported Content-Encoding {coding[:40]!r}", status=resp.status)
        body = await self._read_capped(url, resp)
        validators = Validators(etag=headers.get("etag"), last_modified=headers.get("last-modified"))
        return FetchResult(resp.status, body, headers, validators, str(resp.url), self._elapsed(started))

    async def _read_capped(self, url: str, resp: aiohttp.ClientResponse) -> bytes:
        limit = self._config.max_bytes
        too_large = FetchError(url, f"body larger than max_bytes ({limit})")
        # Content-Length is the encoded size; a compressed body that large decodes larger still.
        if resp.content_length is not None and resp.content_length > limit:
            raise too_large
        chunks: list[bytes] = []
        size = 0
        large: asyncio.Semaphore | None = None
        try:
            # Chunks arrive already decoded, and aiohttp inflates in bounded steps, so checking per chunk stops a
            # gzip bomb after about ``limit`` bytes of output rather than after inflating all of it.
            async for chunk in resp.content.iter_chunked(_CHUNK):
                size += len(chunk)
                if size > limit:
                    raise too_large
                if size > LARGE_BODY and large is None:
                    # Only a few large bodies in memory at once, however many bombs arrive together; the wait
                    # counts against this fetch's deadline.
                    large = self._large()
                    await large.acquire()
                chunks.append(chunk)
            return b"".join(chunks)
        finally:
            if large is not None:
                chunks.clear()
                release_free_memory()
                large.release()

    def _large(self) -> asyncio.Semaphore:
        if self._large_slots is None:
            self._large_slots = asyncio.Semaphore(LARGE_BODY_SLOTS)
        return self._large_slots

    def _elapsed(self, started: float) -> float:
        return round(self._clock.monotonic() - started, 6)
