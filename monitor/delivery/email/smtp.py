"""Sending e-mail over SMTP (aiosmtplib), with its outcomes mapped onto the outbox's error kinds.

One connection per message: alerts are rare and digests rarer, and a fresh connection never finds a half-closed
one that a server timed out while we waited. Every step is bounded by ``smtp.timeout_s``, the whole send by
``max_send_s``.

| what happened | raised |
| --- | --- |
| 2xx for at least one recipient | nothing; refused recipients come back in ``SendResult.refused`` |
| 4xx (451 try later, 421 closing, 452 out of space...) | ``DeliveryError``: the outbox retries |
| 5xx (550 no such user, 554 refused, 535 bad login...) | ``PermanentDeliveryError``: a dead letter |
| every recipient refused, any of them with a 4xx | ``DeliveryError`` |
| every recipient refused with a 5xx | ``PermanentDeliveryError`` |
| timeout, refused connection, dropped connection, TLS failure | ``DeliveryError`` |

Server replies are kept in the reasons (they are short and say why), but never the password.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Protocol

import aiosmtplib

from monitor.config import SmtpConfig
from monitor.core.errors import DeliveryError, PermanentDeliveryError
from monitor.delivery.sinks.view import one_line

__all__ = ["Mailer", "SendResult", "SmtpMailer"]

_REPLY_CHARS = 200


@dataclass(frozen=True, slots=True)
class SendResult:
    """Who took the message; ``refused`` maps each refused recipient to the server's reply ("550 no such user")."""

    accepted: list[str]
    refused: dict[str, str] = field(default_factory=dict)


class Mailer(Protocol):
    """What the e-mail sink and the digests need from a mail transport (tests may pass their own)."""

    #: Upper bound of one ``send``, in seconds: a claim or lease around a send must outlive it.
    max_send_s: float

    async def send(self, message: EmailMessage, recipients: Sequence[str]) -> SendResult:
        """Send ``message`` to ``recipients``; raise ``DeliveryError`` / ``PermanentDeliveryError`` on failure."""
        ...


def _reply(code: int, message: str) -> str:
    return f"{code} {one_line(message)[:_REPLY_CHARS]}".strip()


def _classify(code: int, reason: str) -> DeliveryError:
    if 400 <= code < 500:
        return DeliveryError(reason)
    return PermanentDeliveryError(reason)


class SmtpMailer:
    """Sends through the server in ``SmtpConfig``: plain, ``starttls: true`` (upgrade required, certificate
    checked) or ``ssl: true`` (TLS from the first byte, usually port 465); logs in when ``username`` is set.

    ``local_hostname`` is the name given in EHLO (default: this machine's fully qualified name).
    """

    def __init__(self, config: SmtpConfig, *, local_hostname: str | None = None) -> None:
        self.config = config
        self._local_hostname = local_hostname
        # Connect, EHLO, STARTTLS, AUTH, MAIL, RCPT per recipient, DATA, the body: each bounded by timeout_s; in
        # practice a send takes a few round trips, so four timeouts bound the whole without cutting a slow one.
        self.max_send_s = config.timeout_s * 4
        self._where = f"smtp://{config.host}:{config.port}"

    def __repr__(self) -> str:
        return f"SmtpMailer({self._where})"

    async def send(self, message: EmailMessage, recipients: Sequence[str]) -> SendResult:
        """Send ``message`` to ``recipients`` (the envelope; the headers are the message's own)."""
        config = self.config
        try:
            async with asyncio.timeout(self.max_send_s):
                refused, _ = await aiosmtplib.send(
                    message,
                    sender=config.sender,
                    recipients=list(recipients),
                    hostname=config.host,
                    port=config.port,
                    username=config.username,
                    password=config.password,
                    use_tls=config.ssl,
                    # False, not None: aiosmtplib's None upgrades whenever offered, which fails on relays with
                    # private certificates; STARTTLS is used exactly when configured.
                    start_tls=config.starttls and not config.ssl,
                    timeout=config.timeout_s,
                    local_hostname=self._local_hostname,
                )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            replies = {r.recipient: _reply(r.code, r.message) for r in exc.recipients}
            reason = f"every recipient refused by {self._where}: " + "; ".join(f"{k}: {v}" for k, v in replies.items())
            temporary = any(400 <= r.code < 500 for r in exc.recipients)
            raise (DeliveryError(reason) if temporary else PermanentDeliveryError(reason)) from None
        except aiosmtplib.SMTPResponseException as exc:
            raise _classify(exc.code, f"{_reply(exc.code, exc.message)} from {self._where}") from None
        except (aiosmtplib.SMTPTimeoutError, TimeoutError):
            raise DeliveryError(f"timed out talking to {self._where}") from None
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"{type(exc).__name__} talking to {self._where}: {one_line(exc)[:200]}") from None
        except ValueError as exc:  # an address aiosmtplib will not put on the wire (a config problem)
            raise PermanentDeliveryError(f"cannot send: {one_line(exc)[:200]}") from None
        accepted = [r for r in recipients if r not in refused]
        return SendResult(accepted, {k: _reply(v.code, v.message) for k, v in refused.items()})
