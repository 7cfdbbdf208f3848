"""A real HTTP server on 127.0.0.1 that serves feeds, answers conditional GETs, and misbehaves on request.

    async with FeedServer() as srv:
        srv.set_feed("/wire.xml", xml_bytes)          # 200 with ETag and Last-Modified; 304 when they match
        fetch(srv.url("/wire.xml"))
        srv.set_feed("/wire.xml", newer_bytes)        # new content -> new ETag, later Last-Modified
        assert srv.hits("/wire.xml") == 2

Built-in misbehaving routes (``srv.url(path)``):

- ``/slow``: 200 and headers at once, then the body one byte every 0.1 s for a minute (slow loris)
- ``/hang``: accepts the request and never answers
- ``/loop``: redirects to itself
- ``/redirect?to=URL`` (302 to ``URL``), ``/metadata``: 302 to ``http://169.254.169.254/latest/meta-data/``
- ``/bomb``: a 1 MiB gzip-encoded body that inflates to 1 GiB of zeros (``Content-Encoding: gzip``)
- ``/big``: 2 MiB body with Content-Length; ``/big-chunked``: 2 MiB chunked, no Content-Length
- ``/throttled``: 429 with ``Retry-After: 120``; ``/unavailable``: 503 with an HTTP-date ``Retry-After``
- ``/html``: a web page, not a feed; ``/empty``: 200 with an empty body
- anything else not set with ``set_feed`` or ``route``: 404

``connections`` counts accepted TCP connections, so a test can show that a refusal happened before any.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import socket
import struct
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from types import TracebackType

from aiohttp import web

__all__ = ["FeedServer", "RecordedRequest", "gzip_bomb"]

Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]

_EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
_BIG = 2 * 1024 * 1024
_HTML = b"<!doctype html><html><head><title>Home</title></head><body><h1>Welcome</h1><p>No feed here.</p></body></html>"


@functools.cache
def gzip_bomb(mib: int = 1024) -> bytes:
    """A valid gzip stream of ``mib`` MiB of zeros in about ``mib`` KiB, built in about half a second.

    After a full flush the compressor forgets its history, so every further MiB of zeros compresses to the
    same bytes; repeating them is the same as compressing it all.
    """
    zeros = bytes(1 << 20)
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    first = packer.compress(zeros) + packer.flush(zlib.Z_FULL_FLUSH)
    repeat = packer.compress(zeros) + packer.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(mib):
        crc = zlib.crc32(zeros, crc)
    final_block = zlib.compressobj(9, zlib.DEFLATED, -15).flush()
    return first + repeat * (mib - 1) + final_block + struct.pack("<II", crc, (mib << 20) & 0xFFFFFFFF)


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    path: str
    headers: dict[str, str]


@dataclass(slots=True)
class _Feed:
    body: bytes
    content_type: str
    etag: str | None
    last_modified: datetime | None


@dataclass(slots=True)
class _State:
    feeds: dict[str, _Feed] = field(default_factory=dict)
    routes: dict[str, Handler] = field(default_factory=dict)
    requests: list[RecordedRequest] = field(default_factory=list)
    version: int = 0


class FeedServer:
    """An async context manager; see the module docstring."""

    def __init__(self) -> None:
        self._state = _State()
        self._stopping = asyncio.Event()
        self._web: web.Server | None = None
        self._server: asyncio.Server | None = None
        self.port = 0
        self.connections = 0

    async def __aenter__(self) -> FeedServer:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        # handler_cancellation: a handler that hangs stops when the client gives up, not at shutdown.
        self._web = web.Server(self._dispatch, handler_cancellation=True, access_log=None)
        web_server = self._web

        def protocol() -> asyncio.Protocol:
            self.connections += 1
            return web_server()

        self._server = await asyncio.get_running_loop().create_server(protocol, sock=sock)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.close()
        if self._web is not None:
            await self._web.shutdown(1.0)
        if self._server is not None:
            await self._server.wait_closed()

    # -- what tests call -------------------------------------------------------------------------------------

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def set_feed(
        self,
        path: str,
        body: bytes,
        *,
        content_type: str = "application/rss+xml; charset=utf-8",
        etag: bool = True,
        last_modified: bool = True,
    ) -> None:
        """Serve ``body`` at ``path``; setting new content gives a new ETag and a later Last-Modified."""
        self._state.version += 1
        digest = hashlib.sha256(body).hexdigest()[:16]
        self._state.feeds[path] = _Feed(
            body=body,
            content_type=content_type,
            etag=f'"{digest}"' if etag else None,
            last_modified=_EPOCH + timedelta(minutes=self._state.version) if last_modified else None,
        )

    def route(self, path: str, handler: Handler) -> None:
        """Serve ``path`` with a custom aiohttp handler."""
        self._state.routes[path] = handler

    def hits(self, path: str) -> int:
        return sum(1 for r in self._state.requests if r.path == path)

    @property
    def requests(self) -> list[RecordedRequest]:
        return list(self._state.requests)

    # -- serving ---------------------------------------------------------------------------------------------

    async def _dispatch(self, request: web.BaseRequest) -> web.StreamResponse:
        self._state.requests.append(RecordedRequest(request.path, dict(request.headers)))
        if request.path in self._state.routes:
            return await self._state.routes[request.path](request)
        if request.path in self._state.feeds:
            return self._serve_feed(request, self._state.feeds[request.path])
        builtin = _BUILTIN.get(request.path)
        if builtin is not None:
            return await builtin(self, request)
        return web.Response(status=404, text="not found")

    def _serve_feed(self, request: web.BaseRequest, feed: _Feed) -> web.Response:
        headers: dict[str, str] = {}
        if feed.etag:
            headers["ETag"] = feed.etag
        if feed.last_modified:
            headers["Last-Modified"] = format_datetime(feed.last_modified, usegmt=True)
        if _not_modified(request, feed):
            return web.Response(status=304, headers=headers)
        return web.Response(body=feed.body, headers={**headers, "Content-Type": feed.content_type})

    async def _slow(self, request: web.BaseRequest) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/rss+xml"})
        await response.prepare(request)
        for _ in range(600):
            await response.write(b" ")
            await asyncio.sleep(0.1)
        return response

    async def _hang(self, request: web.BaseRequest) -> web.StreamResponse:
        await self._stopping.wait()
        return web.Response(status=503)

    async def _loop(self, request: web.BaseRequest) -> web.StreamResponse:
        return _found("/loop")

    async def _redirect(self, request: web.BaseRequest) -> web.StreamResponse:
        return _found(request.query.get("to", "/"))

    async def _metadata(self, request: web.BaseRequest) -> web.StreamResponse:
        return _found("http://169.254.169.254/latest/meta-data/")

    async def _bomb(self, request: web.BaseRequest) -> web.StreamResponse:
        return web.Response(
            body=gzip_bomb(), headers={"Content-Encoding": "gzip", "Content-Type": "application/rss+xml"}
        )

    async def _big(self, request: web.BaseRequest) -> web.StreamResponse:
        return web.Response(body=b"<" * _BIG, content_type="application/rss+xml")

    async def _big_chunked(self, request: web.BaseRequest) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/rss+xml"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        for _ in range(_BIG // 65536):
            await response.write(b"<" * 65536)
        await response.write_eof()
        return response

    async def _throttled(self, request: web.BaseRequest) -> web.StreamResponse:
        return web.Response(status=429, headers={"Retry-After": "120"})

    async def _unavailable(self, request: web.BaseRequest) -> web.StreamResponse:
        later = datetime.now(UTC) + timedelta(minutes=10)
        return web.Response(status=503, headers={"Retry-After": format_datetime(later, usegmt=True)})

    async def _html(self, request: web.BaseRequest) -> web.StreamResponse:
        return web.Response(body=_HTML, content_type="text/html", charset="utf-8")

    async def _empty(self, request: web.BaseRequest) -> web.StreamResponse:
        return web.Response(body=b"", content_type="application/rss+xml")


def _found(location: str) -> web.Response:
    return web.Response(status=302, headers={"Location": location})


def _not_modified(request: web.BaseRequest, feed: _Feed) -> bool:
    # RFC 9110 13.2.2: If-None-Match wins over If-Modified-Since when both are sent.
    if_none_match = request.headers.get("If-None-Match")
    if if_none_match is not None:
        return feed.etag is not None and feed.etag in {tag.strip() for tag in if_none_match.split(",")}
    if_modified_since = request.headers.get("If-Modified-Since")
    if if_modified_since and feed.last_modified:
        try:
            return feed.last_modified <= parsedate_to_datetime(if_modified_since)
        except (TypeError, ValueError):
            return False
    return False


_BUILTIN: dict[str, Callable[[FeedServer, web.BaseRequest], Awaitable[web.StreamResponse]]] = {
    "/slow": FeedServer._slow,
    "/hang": FeedServer._hang,
    "/loop": FeedServer._loop,
    "/redirect": FeedServer._redirect,
    "/metadata": FeedServer._metadata,
    "/bomb": FeedServer._bomb,
    "/big": FeedServer._big,
    "/big-chunked": FeedServer._big_chunked,
    "/throttled": FeedServer._throttled,
    "/unavailable": FeedServer._unavailable,
    "/html": FeedServer._html,
    "/empty": FeedServer._empty,
}
