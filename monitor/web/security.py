"""Who may see the dashboard and what a page may do in the browser.

- With a token (``web.token`` or ``MONITOR_WEB_TOKEN``) every page, API and the live stream need it: as
  ``Authorization: Bearer <token>``, or the session cookie the login form sets (HttpOnly, SameSite=Strict; its value
  is an HMAC of the token, never the token itself).
- Without a token the dashboard answers only to a loopback ``Host`` (the config refuses a non-loopback bind without
  one): a page of another site whose name was pointed at 127.0.0.1 (DNS rebinding) gets nothing.
- Every POST needs a same-origin ``Origin`` (a browser always sends one on POST); only a bearer-token client that
  sends no ``Origin`` at all (curl, a script) is let through without it.
- Every dashboard response carries a Content-Security-Policy without inline scripts or styles, and the usual
  no-sniff, no-framing, same-origin referrer headers.

The health endpoints (``/healthz``, ``/readyz``, ``/metrics``) are not the dashboard's: they stay open to probes.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable
from urllib.parse import quote

import structlog
from aiohttp import web
from aiohttp.typedefs import Middleware

from monitor.core.errors import StoreError

__all__ = ["COOKIE", "OPEN_PATHS", "Access", "guard"]

COOKIE = "monitor_session"
#: Served without the dashboard's checks or headers: the daemon's probes and scrapes.
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
#: Served without a token (but with the Host and Origin checks): the login form and the static files.
PUBLIC_PREFIXES = ("/login", "/static/")
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",  # "no-referrer" would make a browser send "Origin: null" on a POST
    "Cross-Origin-Opener-Policy": "same-origin",
}
log = structlog.get_logger(__name__)
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "[::1]", "::1"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Access:
    """The token, if any, and how to tell a request that carries it."""

    def __init__(self, token: str | None) -> None:
        self.token = token
        self.session = hmac.new(token.encode(), b"monitor-web-session", hashlib.sha256).hexdigest() if token else ""

    def bearer(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        return bool(self.token) and scheme.lower() == "bearer" and hmac.compare_digest(value.strip(), self.token or "")

    def cookie(self, request: web.Request) -> bool:
        value = request.cookies.get(COOKIE, "")
        return bool(self.session) and hmac.compare_digest(value, self.session)

    def allowed(self, request: web.Request) -> bool:
        return self.token is None or self.bearer(request) or self.cookie(request)

    def matches(self, candidate: str) -> bool:
        return bool(self.token) and hmac.compare_digest(candidate, self.token or "")


def same_origin(request: web.Request) -> bool:
    origin = request.headers.get("Origin")
    return origin is not None and origin == f"{request.scheme}://{request.host}"


def loopback_host(request: web.Request) -> bool:
    host = request.host.rsplit(":", 1)[0] if not request.host.endswith("]") else request.host
    return host in _LOOPBACK_HOSTS or host.startswith("127.")


def _refuse(request: web.Request, status: int, reason: str) -> web.StreamResponse:
    if request.path.startswith(("/api/", "/stream")) or request.method != "GET":
        return web.json_response({"error": reason}, status=status)
    if status == 401:
        raise web.HTTPSeeOther(f"/login?next={quote(request.path_qs, safe='/')}")
    return web.Response(status=status, text=reason)


def guard(access: Access) -> Middleware:
    """The middleware that applies the rules of this module to every dashboard request."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in OPEN_PATHS:
            return await handler(request)
        try:
            response = await _checked(access, request, handler)
        except web.HTTPException as exc:
            exc.headers.update(SECURITY_HEADERS)
            raise
        except StoreError as exc:  # Redis down or slow: say so, and let the next request try again
            log.warning("dashboard_read_failed", path=request.path, reason=str(exc)[:200])
            response = _refuse(request, 503, "Redis is unavailable; try again shortly")
        if not response.prepared:
            response.headers.update(SECURITY_HEADERS)
        return response

    return middleware


async def _checked(access: Access, request: web.Request, handler: Handler) -> web.StreamResponse:
    if access.token is None and not loopback_host(request):
        return _refuse(request, 403, "this dashboard answers only on loopback without a token")
    if request.method not in ("GET", "HEAD") and not (
        same_origin(request) or ("Origin" not in request.headers and access.bearer(request))
    ):
        return _refuse(request, 403, "cross-origin request refused")
    if not request.path.startswith(PUBLIC_PREFIXES) and not access.allowed(request):
        return _refuse(request, 401, "a token is needed")
    return await handler(request)
