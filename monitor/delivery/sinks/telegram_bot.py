"""A Telegram bot that edits its messages: ``sendMessage`` for an event's first alert, ``editMessageText`` for each
revision and a reply to the message (``reply_parameters``) saying what changed.

The Bot API answers ``{"ok": false, "error_code": N, "description": "..."}`` on failure: 429 waits
``parameters.retry_after``; 5xx is retried; "message to edit not found" posts the event anew, once; "message is
not modified" (a retry of an edit that went through) is success; 401, 403 and 404 (a bad token, a bot removed
from the chat) and "chat not found" disable the sink until restart; other refusals are dead letters. The bot
token is part of every request's path (``/bot<token>/sendMessage``): it is cut out of every error this raises, and
nothing here logs a URL.
"""

from __future__ import annotations

from typing import Any

import aiohttp

from monitor.core.errors import DeliveryError, PermanentDeliveryError
from monitor.delivery.sinks.chat import ChatApi, EditingSink, MessageGoneError
from monitor.delivery.sinks.telegram import telegram_change_note, telegram_text
from monitor.network.http import safe_origin
from monitor.storage.messages import ChatMessage, MessageStore

__all__ = ["TelegramSink"]

_GONE = ("message to edit not found", "message_id_invalid")
_DISABLE = ("chat not found", "bot was blocked", "bot was kicked", "not enough rights")


def _retry_after(answer: dict[str, Any]) -> float | None:
    parameters = answer.get("parameters")
    value = parameters.get("retry_after") if isinstance(parameters, dict) else None
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 86400:
        return float(value)
    return None


class TelegramSink(EditingSink):
    """Sends each event once to a Telegram chat and edits that message for its revisions."""

    def __init__(
        self,
        name: str,
        token: str,
        chat_id: str | int,
        session: aiohttp.ClientSession,
        messages: MessageStore | None,
        *,
        api_url: str = "https://api.telegram.org",
        timeout_s: float = 10.0,
        min_severity: int | None = None,
    ) -> None:
        super().__init__(name, messages, post_claim_s=timeout_s * 3)
        self.min_severity = min_severity
        self.route = None
        self._chat_id = chat_id
        self._base = f"{api_url.rstrip('/')}/bot{token}"
        self._api = ChatApi(session, origin=safe_origin(api_url), timeout_s=timeout_s, secrets=[token])

    def __repr__(self) -> str:
        return f"TelegramSink(name={self.name!r}, origin={self._api.origin!r})"

    def _message(self, text: str, **extra: Any) -> dict[str, Any]:
        return {
            "chat_id": self._chat_id,
            "text": text,
            "parse_mode": "HTML",
            "link_preview_options": {"is_disabled": True},
            **extra,
        }

    async def _post(self, alert: dict[str, Any]) -> ChatMessage:
        result = await self._call("sendMessage", self._message(telegram_text(alert)))
        message_id = result.get("message_id") if isinstance(result, dict) else None
        if not isinstance(message_id, int) or isinstance(message_id, bool):
            raise PermanentDeliveryError(f"sendMessage on {self._api.origin} answered without a message_id")
        return ChatMessage(str(message_id), 0)

    async def _edit(self, message: ChatMessage, alert: dict[str, Any]) -> None:
        body = self._message(telegram_text(alert), message_id=int(message.ref))
        await self._call("editMessageText", body, edit=True)

    async def _reply(self, message: ChatMessage, alert: dict[str, Any]) -> None:
        reply = {"message_id": int(message.ref), "allow_sending_without_reply": True}
        await self._call("sendMessage", self._message(telegram_change_note(alert), reply_parameters=reply))

    async def _plain(self, alert: dict[str, Any]) -> None:
        await self._call("sendMessage", self._message(telegram_text(alert)))

    async def _call(self, method: str, body: dict[str, Any], *, edit: bool = False) -> Any:
        status, answer, _ = await self._api.call("POST", f"{self._base}/{method}", body)
        where = f"{method} on {self._api.origin}"
        if not isinstance(answer, dict):
            if status >= 500 or status in (408, 429):
                raise DeliveryError(f"HTTP {status} from {where}")
            raise PermanentDeliveryError(self._api.clean(f"HTTP {status} from {where}: not a Bot API answer"))
        if answer.get("ok") is True:
            return answer.get("result")
        description = str(answer.get("description") or f"HTTP {status}")
        lowered = description.lower()
        reason = self._api.clean(f"{where}: {description}")
        if status == 429 or status >= 500:
            raise DeliveryError(reason, retry_after=_retry_after(answer))
        if edit and "message is not modified" in lowered:
            return None  # the edit went through before (a retry after a lost answer)
        if edit and any(text in lowered for text in _GONE):
            raise MessageGoneError(description)
        disable = status in (401, 403, 404) or any(text in lowered for text in _DISABLE)
        raise PermanentDeliveryError(reason, disable_sink=disable)
