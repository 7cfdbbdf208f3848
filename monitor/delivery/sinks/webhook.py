"""The webhook sink: one ``POST`` per alert, its status mapped to the outbox's error kinds.

The body is the generic payload (signed per Standard Webhooks) or a chat service's format (Slack, Discord, Teams:
unsigned, since none of them can verify a signature); see ``monitor.delivery.sinks.formats``. Retries are the outbox's,
the same for every format. The URL's path and query often carry tokens (Slack-style hooks), so nothing here puts
more than ``scheme://host[:port]`` of it into an error or a log line.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from monitor.core.clock import Clock, SystemClock
from monitor.core.errors import DeliveryError, PermanentDeliveryError
from monitor.delivery.signing import secret_key, webhook_headers
from monitor.delivery.sinks.formats import FORMATS, render_payload
from monitor.network.guard import guard_refusal
from monitor.network.http import parse_retry_after, safe_origin

__all__ = ["WebhookSink", "encode_body", "safe_origin"]

#: How much of a refusal's body goes into the dead-letter reason: enough to read the receiver's complaint.
EXCERPT_CHARS = 200
_RETRYABLE = frozenset({408, 425, 429})
#: How much of a 429 body is read for a JSON ``retry_after`` (Discord's rate-limit answer is a few dozen bytes).
_RATE_LIMIT_BODY = 4096


def encode_body(alert: dict[str, Any]) -> bytes:
    """The exact bytes that are signed and sent: compact UTF-8 JSON."""
    return json.dumps(alert, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _json_retry_after(raw: bytes) -> float | None:
    """Discord's 429 body: ``{"retry_after": 0.35, ...}`` in seconds (more precise than its header)."""
    try:
        value = json.loads(raw).get("retry_after")
    except (ValueError, AttributeError):
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 86400:
        return None
    return float(value)


class WebhookSink:
    """POSTs each alert in ``fmt`` (``generic``: signed per Standard Webhooks, with a ``webhook-id`` equal to the
    alert id; ``slack``, ``discord``, ``teams``: that service's message, unsigned).

    2xx is success. 408, 425, 429, 5xx and network errors raise ``DeliveryError`` (with ``retry_after`` from
    ``Retry-After``); 410 raises ``PermanentDeliveryError(disable_sink=True)``; any other status raises
    ``PermanentDeliveryError`` with the status and an excerpt of the body. A 429 whose body is JSON with a
    ``retry_after`` (Discord's, more precise than its whole-second header) waits that long. A ``secret`` with a
    chat format is a ``ValueError``: it would suggest a signature that is never sent. Redirects are not
    followed: a receiver that moved must be reconfigured, and following one would re-send the signed body elsewhere.
    Pass a session from ``monitor.network.guard.make_session`` so host names resolving to private addresses are
    refused (a ``PermanentDeliveryError``); ``build_sinks`` refuses private IP literals up front.
    """

    def __init__(
        self,
        name: str,
        url: str,
        session: aiohttp.ClientSession,
        *,
        secret: str | None = None,
        timeout_s: float = 10.0,
        clock: Clock | None = None,
        min_severity: int | None = None,
        fmt: str = "generic",
    ) -> None:
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r}")
        if secret is not None and fmt != "generic":
            raise ValueError(f"{fmt} webhooks cannot verify signatures; remove the secret or use format: generic")
        self.name = name
        self.format = fmt
        self.min_severity = min_severity
        self._url = url
        self._origin = safe_origin(url)
        self._secret_path = urlsplit(url).path
        self._session = session
        # Derived once: a bad whsec_ secret fails at construction (start-up), not at the first alert.
        self._key = secret_key(secret) if secret is not None else None
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._clock = clock or SystemClock()

    def __repr__(self) -> str:
        return f"WebhookSink(name={self.name!r}, format={self.format!r}, origin={self._origin!r})"

    async def send(self, alert: dict[str, Any]) -> None:
        """Deliver one alert; see the class docstring for how the outcome maps to errors."""
        body = encode_body(render_payload(self.format, alert))
        if self.format == "generic":
            timestamp = int(self._clock.now().timestamp())
            headers = webhook_headers(self._key, str(alert["id"]), timestamp, body)
        else:
            headers = {"content-type": "application/json"}
        try:
            async with self._session.post(
                self._url, data=body, headers=headers, timeout=self._timeout, allow_redirects=False
            ) as response:
                if 200 <= response.status < 300:
                    return
                await self._refuse(response)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            # ``from None``: aiohttp's messages may carry the full URL, which must not travel with the error.
            refusal = guard_refusal(exc)
            if refusal is not None:  # the session's private-network guard: a config problem, not an outage
                raise PermanentDeliveryError(f"{refusal} posting to {self._origin}") from None
            raise DeliveryError(f"{type(exc).__name__} posting to {self._origin}") from None

    async def _refuse(self, response: aiohttp.ClientResponse) -> None:
        status = response.status
        where = f"HTTP {status} from {self._origin}"
        if status in _RETRYABLE or status >= 500:
            retry_after = parse_retry_after(response.headers.get("Retry-After"), self._clock.now())
            if status == 429:
                precise = _json_retry_after(await response.content.read(_RATE_LIMIT_BODY))
                retry_after = precise if precise is not None else retry_after
            raise DeliveryError(where, retry_after=retry_after)
        if status == 410:
            raise PermanentDeliveryError(f"{where}: the receiver is gone", disable_sink=True)
        excerpt = await self._excerpt(response)
        raise PermanentDeliveryError(f"{where}: {excerpt}" if excerpt else where)

    async def _excerpt(self, response: aiohttp.ClientResponse) -> str:
        raw = await response.content.read(EXCERPT_CHARS * 4)
        text = re.sub(r"\s+", " ", raw.decode("utf-8", errors="replace")).strip()
        # Receivers sometimes echo the request line; keep the tokenised path out of the dead-letter stream.
        if len(self._secret_path) > 1:
            text = text.replace(self._secret_path, "/…")
        return text[:EXCERPT_CHARS]

    async def close(self) -> None:
        """Nothing to release: the session belongs to the caller."""
