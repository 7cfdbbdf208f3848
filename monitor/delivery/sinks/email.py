"""The e-mail sink: one message per alert, through SMTP, delivered by the outbox like every sink.

Retries and dead letters are the outbox's: the mailer raises ``DeliveryError`` for what may pass (4xx replies,
timeouts, a server that is down) and ``PermanentDeliveryError`` for refusals (5xx). The message is rebuilt on each
attempt but its Message-ID comes from the alert id, so a retry after a lost reply is recognisably the same mail.
Recipients refused while others accepted are logged (``email_recipients_refused``) and the alert counts as
delivered: retrying would send the accepted recipients a second copy.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import structlog

from monitor.core.clock import Clock, SystemClock
from monitor.delivery.email.render import alert_email
from monitor.delivery.email.smtp import Mailer

__all__ = ["EmailSink"]

log = structlog.get_logger(__name__)


class EmailSink:
    """Sends each alert to ``to`` from ``sender`` through ``mailer``."""

    def __init__(
        self,
        name: str,
        mailer: Mailer,
        *,
        sender: str,
        to: Sequence[str],
        clock: Clock | None = None,
        min_severity: int | None = None,
    ) -> None:
        self.name = name
        self.min_severity = min_severity
        self._mailer = mailer
        self._sender = sender
        self._to = list(to)
        self._clock = clock or SystemClock()

    def __repr__(self) -> str:
        return f"EmailSink(name={self.name!r}, recipients={len(self._to)}, mailer={self._mailer!r})"

    async def send(self, alert: dict[str, Any]) -> None:
        """Render and send one alert; see the module docstring for the outcomes."""
        message = alert_email(alert, sender=self._sender, to=self._to, date=self._clock.now())
        result = await self._mailer.send(message, self._to)
        if result.refused:
            log.warning(
                "email_recipients_refused",
                sink=self.name,
                alert=str(alert.get("id")),
                refused=result.refused,
                accepted=len(result.accepted),
            )

    async def close(self) -> None:
        """Nothing is held open: each message has its own connection."""
