"""What the chat sinks that edit their messages share: one message per event, posted once and edited for each
revision, and JSON calls to a chat API with the outcome mapped to the outbox's error kinds.

``EditingSink.send`` decides between posting and editing; a service module (``discord_messages``, ``slack_bot``,
``telegram_bot``) says how to post, edit and reply. The message that shows an event is remembered in Redis
(``monitor.storage.messages``) with the revision it shows, so:

- revisions of one event are sent one at a time per process (a lock per event), and across replicas only one
  posts the first message (a short Redis claim; the other retries later and edits);
- an older revision that arrives after a newer one (a retry, another replica) changes nothing;
- a message deleted in the chat is posted anew once, and that one is edited from then on;
- escalation and feed notices (and everything, when no store is given) are plain posts.

Delivery stays at least once: a first post whose answer was lost (a timeout after the service created the
message) is retried and leaves a second message; the second is the one edited from then on. See docs/sinks.md.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import aiohttp
import structlog

from monitor.core.errors import DeliveryError, PermanentDeliveryError
from monitor.core.redact import redact
from monitor.delivery.routing import Route
from monitor.network.guard import guard_refusal
from monitor.storage.messages import ChatMessage, MessageStore

__all__ = ["ChatApi", "EditingSink", "MessageGoneError", "is_event"]

#: How much of an error body is read and kept in a dead-letter reason.
_BODY_LIMIT = 64 * 1024
_EXCERPT = 200


class MessageGoneError(Exception):
    """The message to edit no longer exists (deleted in the chat): post a new one."""


def is_event(alert: dict[str, Any]) -> bool:
    """An event alert with an id: what gets one message that its revisions edit."""
    return alert.get("kind") == "event" and isinstance(alert.get("event_id"), str) and bool(alert["event_id"])


class ChatApi:
    """JSON requests to one chat API. Network failures and timeouts raise ``DeliveryError``; the guard's refusal of a
    private address raises ``PermanentDeliveryError``. ``secrets`` (tokens, webhook paths) are cut out of every
    reason this raises, and only ``origin`` (scheme, host, port) ever names the far side."""

    def __init__(
        self, session: aiohttp.ClientSession, *, origin: str, timeout_s: float, secrets: Iterable[str] = ()
    ) -> None:
        self.origin = origin
        self._session = session
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._secrets = [s for s in secrets if s]

    def clean(self, text: str) -> str:
        """``text`` without the secrets, on one line, at most a few hundred characters."""
        return " ".join(redact(text, self._secrets).split())[:_EXCERPT]

    async def call(
        self, method: str, url: str, body: dict[str, Any] | None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any, Mapping[str, str]]:
        """Send ``body`` as JSON; the status, the parsed JSON answer (None if it was not JSON) and the headers."""
        try:
            async with self._session.request(
                method,
                url,
                json=body,
                headers=headers,
                timeout=self._timeout,
                allow_redirects=False,
            ) as response:
                raw = await response.content.read(_BODY_LIMIT)
                try:
                    answer = json.loads(raw) if raw else None
                except ValueError:
                    answer = {"_text": raw.decode("utf-8", errors="replace")}
                return response.status, answer, response.headers
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            # ``from None``: aiohttp's messages carry the URL, and with it the token.
            refusal = guard_refusal(exc)
            if refusal is not None:
                raise PermanentDeliveryError(f"{refusal} calling {self.origin}") from None
            raise DeliveryError(f"{type(exc).__name__} calling {self.origin}") from None


@dataclass(slots=True)
class _EventLock:
    """One event's lock and how many sends hold or wait for it."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


class EditingSink:
    """The post-or-edit decision of the chat sinks; subclasses implement ``_post``, ``_edit``, ``_reply`` and
    ``_plain``. ``messages`` None: every alert is a plain post (nothing remembers the messages)."""

    name: str
    min_severity: int | None
    route: Route | None

    def __init__(self, name: str, messages: MessageStore | None, *, post_claim_s: float) -> None:
        self.name = name
        self._messages = messages
        self._post_claim_s = post_claim_s
        self._locks: dict[str, _EventLock] = {}
        self._log = structlog.get_logger(__name__).bind(sink=name)

    async def send(self, alert: dict[str, Any]) -> None:
        """Post the event's first message, or edit the one that shows it; see the module docstring."""
        if self._messages is None or not is_event(alert):
            await self._plain(alert)
            return
        event_id: str = alert["event_id"]
        held = self._locks.setdefault(event_id, _EventLock())
        held.users += 1
        try:
            async with held.lock:
                await self._send_event(self._messages, event_id, alert)
        finally:
            held.users -= 1
            if not held.users:  # nobody holds or waits for it: forget it (one lock per event with sends in flight)
                del self._locks[event_id]

    async def _send_event(self, messages: MessageStore, event_id: str, alert: dict[str, Any]) -> None:
        revision = _revision(alert)
        known = await messages.get(self.name, event_id)
        if known is None:
            await self._first(messages, event_id, alert, revision)
            return
        if known.revision >= revision:
            self._log.info("chat_message_current", event_id=event_id, revision=revision, shows=known.revision)
            return
        try:
            await self._edit(known, alert)
        except MessageGoneError:
            self._log.warning("chat_message_gone", event_id=event_id, revision=revision)
            await self._first(messages, event_id, alert, revision, reposted=True)
            return
        await self._reply(known, alert)
        await messages.put(self.name, event_id, replace(known, revision=revision))
        self._log.info("chat_message_edited", event_id=event_id, revision=revision)

    async def _first(
        self, messages: MessageStore, event_id: str, alert: dict[str, Any], revision: int, *, reposted: bool = False
    ) -> None:
        if not await messages.claim_post(self.name, event_id, self._post_claim_s):
            raise DeliveryError("the event's first message is being posted elsewhere", retry_after=1.0)
        if not reposted and await messages.get(self.name, event_id) is not None:
            # Another replica posted it between our look and our claim: the retry edits that message instead.
            await messages.release_post(self.name, event_id)
            raise DeliveryError("the event's first message was just posted elsewhere", retry_after=1.0)
        try:
            posted = await self._post(alert)
            await messages.put(self.name, event_id, replace(posted, revision=revision))
        finally:
            await messages.release_post(self.name, event_id)
        self._log.info("chat_message_posted", event_id=event_id, revision=revision, reposted=reposted)

    async def _post(self, alert: dict[str, Any]) -> ChatMessage:
        """Post the message that will show the event; its reference (the revision is filled in by the caller)."""
        raise NotImplementedError

    async def _edit(self, message: ChatMessage, alert: dict[str, Any]) -> None:
        """Replace the message's content with the alert's; ``MessageGoneError`` if it no longer exists."""
        raise NotImplementedError

    async def _reply(self, message: ChatMessage, alert: dict[str, Any]) -> None:
        """After an edit: a short reply saying what changed, where the service has replies (default: none)."""

    async def _plain(self, alert: dict[str, Any]) -> None:
        """Post a message that is never edited (escalation and feed notices)."""
        raise NotImplementedError

    async def close(self) -> None:
        """Nothing to release: the session belongs to the caller."""


def _revision(alert: dict[str, Any]) -> int:
    value = alert.get("revision")
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 1
