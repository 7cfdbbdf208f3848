"""Sinks share one small protocol. Retries belong to the outbox, not to each sink."""

from __future__ import annotations

from typing import Any, Protocol

__all__ = ["Sink"]


class Sink(Protocol):
    """Delivers one alert payload (the webhook contract's JSON object).

    ``send`` returns on success, raises ``DeliveryError`` for failures worth retrying (with ``retry_after``
    when the far side said when) and ``PermanentDeliveryError`` for refusals that retrying cannot fix.
    """

    name: str

    async def send(self, alert: dict[str, Any]) -> None: ...

    async def close(self) -> None: ...
