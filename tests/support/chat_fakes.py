"""Loopback servers that answer like Discord webhooks, Slack's Web API and Telegram's Bot API, for the chat sink
tests. Each checks the request shapes the real API requires and keeps the messages it holds, so a test can look at
what a channel would show.

    async with ChatFakes() as fake:
        fake.discord_url                 # a webhook URL: POST ?wait=true, PATCH /messages/<id>
        fake.api_url                     # Slack: <api_url>/chat.postMessage; Telegram: <api_url>/bot<token>/...
        fake.discord_messages            # message id -> the last body posted or patched
        fake.delete(message_id)          # the message is gone: PATCH answers 404 with code 10008
        fake.fail_next(429)              # the next request of any kind is rate limited
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

__all__ = ["SLACK_TOKEN", "TELEGRAM_TOKEN", "Call", "ChatFakes"]

SLACK_TOKEN = "xoxb-test-s3cr3t-slack"
TELEGRAM_TOKEN = "123456:TEST-s3cr3t-telegram"
WEBHOOK_PATH = "/api/webhooks/1234/T0KEN-discord-s3cr3t"


@dataclass(slots=True)
class Call:
    """One request: the API and method (``discord.post``, ``slack.chat.update``, ``telegram.sendMessage``), the
    query, the JSON body, the status answered, and when (monotonic)."""

    api: str
    query: dict[str, str]
    body: dict[str, Any]
    status: int
    at: float = field(default_factory=time.monotonic)


class ChatFakes:
    """One aiohttp server with all three fakes."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.discord_messages: dict[str, dict[str, Any]] = {}
        self.slack_messages: dict[str, dict[str, Any]] = {}
        self.slack_replies: list[dict[str, Any]] = []
        self.telegram_messages: dict[int, dict[str, Any]] = {}
        self.telegram_replies: list[dict[str, Any]] = []
        self.down = False
        self._failures: list[int] = []
        self._ids = itertools.count(1_180_000_000_000_000_001)
        self._runner: web.AppRunner | None = None
        self._port = 0

    @property
    def discord_url(self) -> str:
        return f"http://127.0.0.1:{self._port}{WEBHOOK_PATH}"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self._port}/api"

    @property
    def telegram_url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    def delete(self, message_id: str | int) -> None:
        """The message was deleted in the channel."""
        self.discord_messages.pop(str(message_id), None)
        self.slack_messages.pop(str(message_id), None)
        self.telegram_messages.pop(int(message_id) if str(message_id).isdigit() else -1, None)

    def fail_next(self, *statuses: int) -> None:
        """Answer the next requests with these statuses (429: each API's rate-limit answer)."""
        self._failures.extend(statuses)

    def of(self, api: str) -> list[Call]:
        return [c for c in self.calls if c.api == api]

    async def wait_for(self, what: Any, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not what():
            if time.monotonic() > deadline:
                raise AssertionError(f"chat fake: condition not met within {timeout_s}s; calls: {self._summary()}")
            await asyncio.sleep(0.02)

    def _summary(self) -> str:
        return ", ".join(f"{c.api}={c.status}" for c in self.calls[-30:])

    def _record(self, api: str, request: web.Request, body: dict[str, Any], status: int) -> None:
        self.calls.append(Call(api, dict(request.query), body, status))

    def _failure(self) -> int | None:
        if self.down:
            return 503
        return self._failures.pop(0) if self._failures else None

    # -- Discord -----------------------------------------------------------------------------------------

    async def _discord_post(self, request: web.Request) -> web.Response:
        body = await request.json()
        assert request.headers.get("Content-Type", "").startswith("application/json")
        assert "embeds" in body and body.get("allowed_mentions") == {"parse": []}
        failed = self._failure()
        self._record("discord.post", request, body, failed or 200)
        if failed == 429:
            limited = {"message": "You are being rate limited.", "retry_after": 0.3, "global": False}
            return web.json_response(limited, status=429, headers={"Retry-After": "1"})
        if failed:
            return web.json_response({"message": "oops", "code": 0}, status=failed)
        if request.query.get("wait") != "true":
            return web.Response(status=204)
        message_id = str(next(self._ids))
        self.discord_messages[message_id] = body
        return web.json_response({"id": message_id, "type": 0, "channel_id": "99", **body})

    async def _discord_patch(self, request: web.Request) -> web.Response:
        body = await request.json()
        message_id = request.match_info["message_id"]
        failed = self._failure()
        if failed == 429:
            self._record("discord.patch", request, body, 429)
            return web.json_response({"message": "rate limited", "retry_after": 0.3, "global": False}, status=429)
        if message_id not in self.discord_messages:
            self._record("discord.patch", request, body, 404)
            return web.json_response({"message": "Unknown Message", "code": 10008}, status=404)
        self._record("discord.patch", request, body, 200)
        self.discord_messages[message_id] = body
        return web.json_response({"id": message_id, **body})

    # -- Slack -------------------------------------------------------------------------------------------

    async def _slack(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        body = await request.json()
        if request.headers.get("Authorization") != f"Bearer {SLACK_TOKEN}":
            self._record(f"slack.{method}", request, body, 200)
            return web.json_response({"ok": False, "error": "invalid_auth"})
        failed = self._failure()
        if failed:
            self._record(f"slack.{method}", request, body, failed)
            return web.json_response({"ok": False, "error": "ratelimited"}, status=failed, headers={"Retry-After": "1"})
        self._record(f"slack.{method}", request, body, 200)
        if not body.get("channel"):
            return web.json_response({"ok": False, "error": "channel_not_found"})
        if method == "chat.postMessage":
            assert body.get("text"), "Slack wants a text fallback"
            ts = f"{time.time():.6f}{len(self.calls)}"
            if "thread_ts" in body:
                if body["thread_ts"] not in self.slack_messages:
                    return web.json_response({"ok": False, "error": "thread_not_found"})
                self.slack_replies.append(body)
            else:
                self.slack_messages[ts] = body
            return web.json_response({"ok": True, "channel": "C0CHANNEL", "ts": ts, "message": {"text": body["text"]}})
        if method == "chat.update":
            assert body.get("channel") == "C0CHANNEL", "chat.update needs the channel id postMessage answered"
            if body.get("ts") not in self.slack_messages:
                return web.json_response({"ok": False, "error": "message_not_found"})
            self.slack_messages[body["ts"]] = body
            return web.json_response({"ok": True, "channel": body["channel"], "ts": body["ts"], "text": body["text"]})
        return web.json_response({"ok": False, "error": "unknown_method"}, status=404)

    # -- Telegram ----------------------------------------------------------------------------------------

    async def _telegram(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        body = await request.json()
        if request.match_info["token"] != TELEGRAM_TOKEN:
            self._record(f"telegram.{method}", request, body, 401)
            return web.json_response({"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401)
        failed = self._failure()
        if failed == 429:
            self._record(f"telegram.{method}", request, body, 429)
            limited = {"ok": False, "error_code": 429, "description": "Too Many Requests: retry after 1"}
            return web.json_response({**limited, "parameters": {"retry_after": 1}}, status=429)
        self._record(f"telegram.{method}", request, body, 200)
        assert body.get("parse_mode") == "HTML" and isinstance(body.get("text"), str) and body.get("chat_id")
        assert len(body["text"]) <= 4096
        if method == "sendMessage":
            message_id = len(self.telegram_messages) + len(self.telegram_replies) + 1
            if "reply_parameters" in body:
                self.telegram_replies.append(body)
            else:
                self.telegram_messages[message_id] = body
            return web.json_response({"ok": True, "result": {"message_id": message_id, "text": body["text"]}})
        if method == "editMessageText":
            if body.get("message_id") not in self.telegram_messages:
                bad = {"ok": False, "error_code": 400, "description": "Bad Request: message to edit not found"}
                return web.json_response(bad, status=400)
            self.telegram_messages[body["message_id"]] = body
            return web.json_response({"ok": True, "result": {"message_id": body["message_id"]}})
        return web.json_response({"ok": False, "error_code": 404, "description": "Not Found"}, status=404)

    async def __aenter__(self) -> ChatFakes:
        app = web.Application()
        app.router.add_post(WEBHOOK_PATH, self._discord_post)
        app.router.add_patch(WEBHOOK_PATH + "/messages/{message_id}", self._discord_patch)
        app.router.add_post("/api/{method}", self._slack)
        app.router.add_post("/bot{token}/{method}", self._telegram)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._port = self._runner.addresses[0][1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
