"""Which chat message shows which event, per sink: what lets a revision edit the message instead of posting anew.

One key per (sink, event) holds the service's reference to the message (a Discord message id, a Slack ``ts`` with
its channel, a Telegram ``message_id``) and the revision it shows; it lives as long as an event does
(``EVENT_TTL_S``). A second key, set only while a first message is being posted, keeps two replicas (or two
concurrent deliveries of one event's revisions) from both posting a first message.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass

import redis.asyncio as aioredis

from monitor.storage.connection import store_errors
from monitor.storage.keys import EVENT_TTL_S, Keys

__all__ = ["ChatMessage", "MessageStore"]

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One posted message: the service's id for it, the channel it is in (when the service needs it to edit),
    and the event revision it shows."""

    ref: str
    revision: int
    channel: str = ""


class MessageStore:
    """Chat message references by (sink name, event id) in Redis."""

    def __init__(self, redis: aioredis.Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys
        self._token = secrets.token_hex(8)

    async def get(self, sink: str, event_id: str) -> ChatMessage | None:
        """The message showing ``event_id`` in ``sink``, or None (never posted, expired, or unreadable)."""
        with store_errors("reading a chat message id"):
            raw = await self._redis.get(self._keys.chat_message(sink, event_id))
        if raw is None:
            return None
        try:
            data = json.loads(raw)
            return ChatMessage(str(data["ref"]), int(data["revision"]), str(data.get("channel", "")))
        except (ValueError, KeyError, TypeError):
            return None

    async def put(self, sink: str, event_id: str, message: ChatMessage) -> None:
        """Remember ``message`` as the one showing ``event_id`` (replacing an earlier one)."""
        value = json.dumps({"ref": message.ref, "revision": message.revision, "channel": message.channel})
        with store_errors("saving a chat message id"):
            await self._redis.set(self._keys.chat_message(sink, event_id), value, ex=EVENT_TTL_S)

    async def claim_post(self, sink: str, event_id: str, ttl_s: float) -> bool:
        """Take the right to post the event's first message for ``ttl_s`` seconds; False while another holds it."""
        with store_errors("claiming a chat post"):
            taken = await self._redis.set(
                self._keys.chat_posting(sink, event_id), self._token, nx=True, px=max(1, int(ttl_s * 1000))
            )
        return bool(taken)

    async def release_post(self, sink: str, event_id: str) -> None:
        """Give the right to post back (only if this store still holds it)."""
        with store_errors("releasing a chat post"):
            await self._redis.eval(_RELEASE, 1, self._keys.chat_posting(sink, event_id), self._token)
