"""The dashboard's request handlers: the pages (server-rendered), their htmx fragments, the JSON API, the login form
and the live stream. Each reads through ``Reader``; none keeps state between requests."""

from __future__ import annotations

import json
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from aiohttp_sse import sse_response

from monitor.core.errors import StoreError
from monitor.web.reads import Reader
from monitor.web.security import COOKIE, Access

__all__ = ["Handlers"]

#: How long one read of the live stream waits for a new alert (below the Redis client's socket timeout).
STREAM_BLOCK_MS = 2000


def _cursor(request: web.Request) -> float | None:
    raw = request.query.get("before", "")
    try:
        return float(raw) if raw else None
    except ValueError as exc:
        raise web.HTTPBadRequest(text="before: a Unix time") from exc


class Handlers:
    def __init__(self, reader: Reader, access: Access) -> None:
        self.reader = reader
        self.access = access

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/", self.overview),
            web.get("/events", self.events_page),
            web.get("/events/{event_id}", self.event_page),
            web.get("/feeds", self.feeds_page),
            web.get("/rules", self.rules_page),
            web.get("/delivery", self.delivery_page),
            web.get("/fragments/overview", self.overview_fragment),
            web.get("/api/events", self.api_events),
            web.get("/api/events/{event_id}", self.api_event),
            web.get("/api/escalation", self.api_escalation),
            web.get("/api/feeds", self.api_feeds),
            web.get("/api/rules", self.api_rules),
            web.get("/api/dlq", self.api_dlq),
            web.post("/api/dlq/retry", self.api_retry),
            web.get("/stream", self.stream),
            web.get("/login", self.login_form),
            web.post("/login", self.login),
            web.post("/logout", self.logout),
        ]

    # -- pages --------------------------------------------------------------------------------------------

    def _page(self, request: web.Request, template: str, data: dict[str, Any], page: str) -> web.Response:
        return aiohttp_jinja2.render_template(
            template, request, {**data, "page": page, "token_set": self.access.token is not None}
        )

    async def overview(self, request: web.Request) -> web.Response:
        return self._page(request, "overview.html", await self.reader.overview(), "overview")

    async def overview_fragment(self, request: web.Request) -> web.Response:
        return self._page(request, "_fragment.html", await self.reader.overview(), "overview")

    async def events_page(self, request: web.Request) -> web.Response:
        return self._page(request, "events.html", await self.reader.events(_cursor(request)), "events")

    async def event_page(self, request: web.Request) -> web.Response:
        event = await self.reader.event(request.match_info["event_id"])
        if event is None:
            raise web.HTTPNotFound(text="no such event (it may have expired)")
        return self._page(request, "event.html", {"event": event}, "events")

    async def feeds_page(self, request: web.Request) -> web.Response:
        return self._page(request, "feeds.html", await self.reader.feeds(), "feeds")

    async def rules_page(self, request: web.Request) -> web.Response:
        return self._page(request, "rules.html", await self.reader.rules(), "rules")

    async def delivery_page(self, request: web.Request) -> web.Response:
        return self._page(request, "delivery.html", await self.reader.delivery(), "delivery")

    # -- JSON ---------------------------------------------------------------------------------------------

    async def api_events(self, request: web.Request) -> web.Response:
        limit = request.query.get("limit", "50")
        return web.json_response(await self.reader.events(_cursor(request), int(limit) if limit.isdigit() else 50))

    async def api_event(self, request: web.Request) -> web.Response:
        event = await self.reader.event(request.match_info["event_id"])
        if event is None:
            return web.json_response({"error": "no such event"}, status=404)
        return web.json_response(event)

    async def api_escalation(self, request: web.Request) -> web.Response:
        return web.json_response(await self.reader.escalation())

    async def api_feeds(self, request: web.Request) -> web.Response:
        return web.json_response(await self.reader.feeds())

    async def api_rules(self, request: web.Request) -> web.Response:
        return web.json_response(await self.reader.rules())

    async def api_dlq(self, request: web.Request) -> web.Response:
        return web.json_response(await self.reader.delivery())

    async def api_retry(self, request: web.Request) -> web.Response:
        """Re-send dead letters: JSON ``{"ids": [...]}`` answers JSON; the page's button (a form, sent by htmx)
        gets the row that replaces the dead letter's."""
        if request.content_type == "application/json":
            try:
                body = await request.json()
            except json.JSONDecodeError:
                body = None
            ids = body.get("ids") if isinstance(body, dict) else None
            if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
                return web.json_response({"error": 'expected {"ids": ["<dead-letter id>", ...]}'}, status=400)
            return web.json_response({"retried": await self.reader.retry(ids)})
        form = await request.post()
        ids = [str(v) for v in form.getall("id", [])]
        moved = await self.reader.retry(ids)
        if request.headers.get("HX-Request"):
            return aiohttp_jinja2.render_template("_retried.html", request, {"moved": moved, "ids": ids})
        raise web.HTTPSeeOther("/delivery")

    # -- live stream --------------------------------------------------------------------------------------

    async def stream(self, request: web.Request) -> web.StreamResponse:
        """Server-sent events: one ``alert`` message per alert logged while the client stays; reads Redis only
        while a client is connected (and then only the alert log, by blocking reads)."""
        store = self.reader.store
        after = await store.last_alert_id()
        async with sse_response(request) as events:
            await events.send("connected", event="ready")
            while events.is_connected():
                try:
                    after, alerts = await store.read_new_alerts(after, STREAM_BLOCK_MS)
                except StoreError:
                    await events.send("redis unavailable", event="trouble")
                    break
                for entry in alerts:
                    brief = {k: entry.alert.get(k) for k in ("id", "kind", "event_id", "revision", "title")}
                    await events.send(json.dumps(brief), event="alert")
        return events

    # -- login --------------------------------------------------------------------------------------------

    async def login_form(self, request: web.Request) -> web.Response:
        return self._page(request, "login.html", {"next": _local(request.query.get("next", "/")), "failed": False}, "")

    async def login(self, request: web.Request) -> web.Response:
        form = await request.post()
        target = _local(str(form.get("next", "/")))
        if not self.access.matches(str(form.get("token", ""))):
            response = self._page(request, "login.html", {"next": target, "failed": True}, "")
            response.set_status(401)
            return response
        response = web.HTTPSeeOther(target)
        response.set_cookie(
            COOKIE, self.access.session, httponly=True, samesite="Strict", secure=request.secure, path="/"
        )
        raise response

    async def logout(self, request: web.Request) -> web.Response:
        response = web.HTTPSeeOther("/login")
        response.del_cookie(COOKIE, path="/")
        raise response


def _local(target: str) -> str:
    """Only a path of this site (never ``//host`` or a URL): where the login form may send the browser back to."""
    return target if target.startswith("/") and not target.startswith("//") and "\\" not in target else "/"
