"""A real webhook receiver on 127.0.0.1 for tests: verifies Standard Webhooks signatures with the reference
``standardwebhooks`` package (not our own code) and answers a scripted sequence of replies.

    async with WebhookReceiver("whsec_...") as rx:
        rx.script([503, Reply(429, {"Retry-After": "1"}), 200, HANG])
        ...  # point a WebhookSink at rx.url
        alerts = await rx.wait_for(2, timeout_s=5)
        assert rx.invalid_signatures == []

Replies are used one per validly signed request, in order; once the script is used up every request gets
``rx.default`` (200 unless changed). A request with a bad signature gets 401, is recorded in
``invalid_signatures`` and does not use up a scripted reply.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

__all__ = ["HANG", "Received", "Reply", "WebhookReceiver"]

#: The path the receiver listens on; it stands for the secret token that real hook URLs carry in their path.
SECRET_PATH = "/hooks/T0KEN-s3cr3t"


@dataclass(frozen=True, slots=True)
class Reply:
    """One scripted answer. ``hang`` holds the request open (no answer) until the receiver closes."""

    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    body: str = ""
    hang: bool = False


#: Hold the request open without answering, e.g. to kill a deliverer between the send and the acknowledgement.
HANG = Reply(status=503, hang=True)


@dataclass(frozen=True, slots=True)
class Received:
    """One request as it arrived: ``status`` is what it was answered (None while or if it hung)."""

    at: float
    headers: dict[str, str]
    body: bytes
    signature_ok: bool
    reply: Reply | None

    @property
    def webhook_id(self) -> str | None:
        return self.headers.get("webhook-id")

    @property
    def alert(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.body)
        return loaded


class WebhookReceiver:
    """An aiohttp server that records every request; a reusable async context manager."""

    def __init__(self, secret: str | None = None, *, default: Reply | int = 200) -> None:
        self.secret = secret
        self.default: Reply = default if isinstance(default, Reply) else Reply(default)
        self.requests: list[Received] = []
        self.invalid_signatures: list[str] = []
        self._script: deque[Reply] = deque()
        self._verifier = (
            None if secret is None else Webhook(secret if secret.startswith("whsec_") else secret.encode("utf-8"))
        )
        self._closing = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}{SECRET_PATH}?token=query-s3cr3t"

    @property
    def alerts(self) -> list[dict[str, Any]]:
        """Bodies of the validly signed requests answered with a 2xx: what the receiver accepted."""
        return [
            r.alert
            for r in self.requests
            if r.signature_ok and r.reply and 200 <= r.reply.status < 300 and not r.reply.hang
        ]

    def script(self, replies: Iterable[Reply | int]) -> None:
        """Queue replies for the next validly signed requests (ints are bare statuses)."""
        self._script.extend(r if isinstance(r, Reply) else Reply(r) for r in replies)

    async def wait_for(self, n: int, timeout_s: float = 5.0) -> list[dict[str, Any]]:
        """Wait until at least ``n`` alerts were accepted; returns them. Fails the test on timeout."""
        await self._until(lambda: len(self.alerts) >= n, timeout_s, f"{n} accepted alerts")
        return self.alerts

    async def wait_for_requests(self, n: int, timeout_s: float = 5.0) -> list[Received]:
        """Wait until at least ``n`` requests arrived, whatever they were answered."""
        await self._until(lambda: len(self.requests) >= n, timeout_s, f"{n} requests")
        return self.requests

    async def _until(self, condition: Any, timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"webhook receiver: no {what} within {timeout_s}s "
                    f"(got {len(self.requests)} requests, {len(self.alerts)} accepted)"
                )
            await asyncio.sleep(0.01)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        signature_ok = True
        if self._verifier is not None:
            try:
                self._verifier.verify(body, headers)
            except WebhookVerificationError as exc:
                signature_ok = False
                self.invalid_signatures.append(str(exc))
        reply = (self._script.popleft() if self._script else self.default) if signature_ok else Reply(401)
        self.requests.append(Received(time.monotonic(), headers, body, signature_ok, None if reply.hang else reply))
        if reply.hang:
            await self._closing.wait()
        return web.Response(status=reply.status, headers=dict(reply.headers), text=reply.body)

    async def __aenter__(self) -> WebhookReceiver:
        app = web.Application()
        app.router.add_post(SECRET_PATH, self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._port = self._runner.addresses[0][1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._closing.set()  # release hanging handlers so shutdown is quick
        if self._runner is not None:
            await self._runner.cleanup()
