"""Discord webhooks that edit their messages: one message per event, edited in place for each revision.

The first alert of an event is ``POST <webhook url>?wait=true``, whose answer is the message object; its ``id`` is
kept with the event (``monitor.storage.messages``). Each revision is ``PATCH <webhook url>/messages/<id>`` with
the whole updated message (latest severity, every source, what changed; the embed's timestamp, which Discord
shows as "today at HH:MM", is the update's time). A ``thread_id`` in the webhook URL's query is kept on both.
A 404 with code 10008 (Unknown Message: deleted in the channel) posts the event anew, once, and that message is
edited from then on; any other 404 (10015, Unknown Webhook) means the webhook is gone and disables the sink.
Escalation-level and feed notices are plain posts. A 429 waits the body's ``retry_after`` (seconds, fractional).
The webhook URL's path holds its token: errors name only ``scheme://host[:port]``.
"""

from __future__ import annotations

from typing import Any

import aiohttp
from yarl import URL

from monitor.core.clock import Clock, SystemClock
from monitor.core.errors import DeliveryError, PermanentDeliveryError
from monitor.delivery.sinks.chat import ChatApi, EditingSink, MessageGoneError
from monitor.delivery.sinks.discord import discord_payload
from monitor.network.http import parse_retry_after, safe_origin
from monitor.storage.messages import ChatMessage, MessageStore

__all__ = ["UNKNOWN_MESSAGE", "DiscordSink"]

#: Discord's JSON error code for a message that does not exist (any more).
UNKNOWN_MESSAGE = 10008


def _retry_after(answer: Any, header: str | None, clock: Clock) -> float | None:
    value = answer.get("retry_after") if isinstance(answer, dict) else None
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 86400:
        return float(value)
    return parse_retry_after(header, clock.now())


class DiscordSink(EditingSink):
    """Posts each event once to a Discord webhook and edits that message for its revisions."""

    def __init__(
        self,
        name: str,
        url: str,
        session: aiohttp.ClientSession,
        messages: MessageStore | None,
        *,
        timeout_s: float = 10.0,
        clock: Clock | None = None,
        min_severity: int | None = None,
    ) -> None:
        super().__init__(name, messages, post_claim_s=timeout_s * 3)
        self.format = "discord"
        self.min_severity = min_severity
        self.route = None
        self._url = URL(url)
        self._api = ChatApi(session, origin=safe_origin(url), timeout_s=timeout_s, secrets=[self._url.path])
        self._clock = clock or SystemClock()

    def __repr__(self) -> str:
        return f"DiscordSink(name={self.name!r}, origin={self._api.origin!r})"

    def _message_url(self, message_id: str) -> URL:
        return self._url.with_path(self._url.path.rstrip("/") + f"/messages/{message_id}").with_query(self._url.query)

    async def _post(self, alert: dict[str, Any]) -> ChatMessage:
        url = self._url.update_query(wait="true")
        status, answer, headers = await self._api.call("POST", str(url), discord_payload(alert))
        self._check(status, answer, headers)
        message_id = answer.get("id") if isinstance(answer, dict) else None
        if not isinstance(message_id, str | int) or not str(message_id).isdigit():
            raise PermanentDeliveryError(f"HTTP {status} from {self._api.origin} without a message id")
        return ChatMessage(str(message_id), 0)

    async def _edit(self, message: ChatMessage, alert: dict[str, Any]) -> None:
        status, answer, headers = await self._api.call(
            "PATCH", str(self._message_url(message.ref)), discord_payload(alert)
        )
        if status == 404 and isinstance(answer, dict) and answer.get("code") == UNKNOWN_MESSAGE:
            raise MessageGoneError(message.ref)
        self._check(status, answer, headers)

    async def _plain(self, alert: dict[str, Any]) -> None:
        status, answer, headers = await self._api.call("POST", str(self._url), discord_payload(alert))
        self._check(status, answer, headers)

    def _check(self, status: int, answer: Any, headers: Any) -> None:
        if 200 <= status < 300:
            return
        where = f"HTTP {status} from {self._api.origin}"
        if status in (408, 425, 429) or status >= 500:
            raise DeliveryError(where, retry_after=_retry_after(answer, headers.get("Retry-After"), self._clock))
        detail = ""
        if isinstance(answer, dict):
            detail = str(answer.get("message") or answer.get("_text") or "")
            if "code" in answer:
                detail += f" (code {answer['code']})"
        reason = self._api.clean(f"{where}: {detail}" if detail else where)
        if status in (401, 404, 410):  # a bad or deleted webhook: every later alert would fail the same way
            raise PermanentDeliveryError(reason, disable_sink=True)
        raise PermanentDeliveryError(reason)
