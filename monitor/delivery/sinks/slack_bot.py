"""A Slack bot that edits its messages: ``chat.postMessage`` for an event's first alert, ``chat.update`` for each
revision and a short reply in the message's thread (``thread_ts``) saying what changed, so the channel sees it.

Slack's Web API answers HTTP 200 with ``{"ok": false, "error": "..."}`` for most failures; those are sorted here
into retries (``ratelimited``, ``internal_error``, ``fatal_error``, ``service_unavailable``, ``request_timeout``),
a message gone (``message_not_found`` on ``chat.update``: posted anew, once), a sink that cannot work until
reconfigured (``invalid_auth``, ``token_revoked``, ``account_inactive``, ``not_authed``, ``channel_not_found``,
``is_archived``, ``not_in_channel``: the sink is disabled until restart) and other refusals (a dead letter with the
error). HTTP 429 waits its ``Retry-After``. The token travels only in the ``Authorization`` header and is cut out
of every error. The message itself is ``monitor.delivery.sinks.slack.slack_payload``, as for incoming webhooks.
"""

from __future__ import annotations

from typing import Any

import aiohttp

from monitor.core.clock import Clock, SystemClock
from monitor.core.errors import DeliveryError, PermanentDeliveryError
from monitor.delivery.sinks.chat import ChatApi, EditingSink, MessageGoneError
from monitor.delivery.sinks.slack import escape, slack_payload
from monitor.delivery.sinks.view import AlertView, clip
from monitor.network.http import parse_retry_after, safe_origin
from monitor.storage.messages import ChatMessage, MessageStore

__all__ = ["SlackBotSink", "change_note"]

_RETRY = frozenset({"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"})
_DISABLE = frozenset(
    {"invalid_auth", "token_revoked", "account_inactive", "not_authed", "channel_not_found", "is_archived",
     "not_in_channel"}
)  # fmt: skip


def change_note(alert: dict[str, Any]) -> str:
    """The plain words of a revision: "Update 2 · Severity 4/5 (high): casualties 3 -> 5; officially confirmed"."""
    view = AlertView.of(alert)
    what = "; ".join(view.changes) or "new reports"
    return f"{view.label}: {what}"


class SlackBotSink(EditingSink):
    """Posts each event once to a Slack channel with a bot token and updates that message for its revisions."""

    def __init__(
        self,
        name: str,
        token: str,
        channel: str,
        session: aiohttp.ClientSession,
        messages: MessageStore | None,
        *,
        api_url: str = "https://slack.com/api",
        timeout_s: float = 10.0,
        clock: Clock | None = None,
        min_severity: int | None = None,
    ) -> None:
        super().__init__(name, messages, post_claim_s=timeout_s * 3)
        self.min_severity = min_severity
        self.route = None
        self._channel = channel
        self._base = api_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json; charset=utf-8"}
        self._api = ChatApi(session, origin=safe_origin(api_url), timeout_s=timeout_s, secrets=[token])
        self._clock = clock or SystemClock()

    def __repr__(self) -> str:
        return f"SlackBotSink(name={self.name!r}, channel={self._channel!r})"

    async def _post(self, alert: dict[str, Any]) -> ChatMessage:
        answer = await self._call("chat.postMessage", {"channel": self._channel, **slack_payload(alert)})
        ts, channel = answer.get("ts"), answer.get("channel")
        if not isinstance(ts, str) or not ts:
            raise PermanentDeliveryError(f"chat.postMessage on {self._api.origin} answered without a ts")
        return ChatMessage(ts, 0, channel if isinstance(channel, str) and channel else self._channel)

    async def _edit(self, message: ChatMessage, alert: dict[str, Any]) -> None:
        body = {"channel": message.channel or self._channel, "ts": message.ref, **slack_payload(alert)}
        await self._call("chat.update", body, gone={"message_not_found"})

    async def _reply(self, message: ChatMessage, alert: dict[str, Any]) -> None:
        text = clip(change_note(alert), 3000, escape)
        await self._call(
            "chat.postMessage", {"channel": message.channel or self._channel, "thread_ts": message.ref, "text": text}
        )

    async def _plain(self, alert: dict[str, Any]) -> None:
        await self._call("chat.postMessage", {"channel": self._channel, **slack_payload(alert)})

    async def _call(self, method: str, body: dict[str, Any], *, gone: frozenset[str] | set[str] = frozenset()) -> Any:
        status, answer, headers = await self._api.call("POST", f"{self._base}/{method}", body, self._headers)
        where = f"{method} on {self._api.origin}"
        if status == 429 or status >= 500 or status == 408:
            retry_after = parse_retry_after(headers.get("Retry-After"), self._clock.now())
            raise DeliveryError(f"HTTP {status} from {where}", retry_after=retry_after)
        if not isinstance(answer, dict):
            raise PermanentDeliveryError(self._api.clean(f"HTTP {status} from {where}: not a Slack API answer"))
        if status == 200 and answer.get("ok") is True:
            return answer
        error = str(answer.get("error") or f"HTTP {status}")
        if error in gone:
            raise MessageGoneError(error)
        reason = self._api.clean(f"{where}: {error}")
        if error in _RETRY:
            retry_after = parse_retry_after(headers.get("Retry-After"), self._clock.now())
            raise DeliveryError(reason, retry_after=retry_after)
        raise PermanentDeliveryError(reason, disable_sink=error in _DISABLE)
