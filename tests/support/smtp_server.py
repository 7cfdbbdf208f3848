"""A real SMTP server (aiosmtpd) on 127.0.0.1 for tests, in the test's own event loop, with scripted failures.

    async with SmtpServer() as smtp:
        smtp.script([451, None, HANG])       # DATA replies: 451, then accept, then never answer
        smtp.refuse["gone@example.org"] = "550 5.1.1 no such user"
        ...  # send to smtp.config()
        [message] = smtp.messages            # accepted messages, parsed

Every DATA command is recorded in ``attempts`` (with the Message-ID it carried) whatever it was answered;
``messages`` holds only the accepted ones. ``HANG`` holds the DATA reply until the client gives up.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from monitor.config import SmtpConfig

__all__ = ["HANG", "Attempt", "Received", "SmtpServer"]

#: Never answer the DATA command (until the server closes): the client's timeout must fire.
HANG = "hang"


@dataclass(frozen=True, slots=True)
class Attempt:
    """One DATA command: the envelope, the Message-ID it carried and the reply it got."""

    mail_from: str
    rcpt_tos: list[str]
    message_id: str | None
    reply: str


@dataclass(frozen=True, slots=True)
class Received:
    """One accepted message."""

    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    message: EmailMessage


class SmtpServer:
    """Scripted aiosmtpd server; a reusable async context manager."""

    def __init__(self, *, credentials: tuple[str, str] | None = None) -> None:
        self.attempts: list[Attempt] = []
        self.messages: list[Received] = []
        self.refuse: dict[str, str] = {}
        self.logins: list[str] = []
        self._script: deque[str | None] = deque()
        self._credentials = credentials
        self._closing = asyncio.Event()
        self._arrived = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._protocols: list[SMTP] = []
        self.port = 0

    def script(self, replies: Iterable[int | str | None]) -> None:
        """Queue DATA replies: an int is that code with a stock text, a str is sent as it is (or ``HANG``),
        None accepts. Once used up, messages are accepted."""
        for reply in replies:
            if isinstance(reply, int):
                reply = f"{reply} {'4.3.0 try again later' if reply < 500 else '5.7.1 message refused'}"
            self._script.append(reply)

    def config(self, **changes: Any) -> SmtpConfig:
        settings: dict[str, Any] = {
            "host": "127.0.0.1",
            "port": self.port,
            "sender": "monitor@example.org",
            "timeout_s": 2,
        }
        return SmtpConfig.model_validate({**settings, **changes})

    async def wait_for(self, n: int, timeout_s: float = 5.0) -> list[Received]:
        """Wait until ``n`` messages were accepted (fails the test on timeout)."""
        async with asyncio.timeout(timeout_s):
            while len(self.messages) < n:
                self._arrived.clear()
                await self._arrived.wait()
        return self.messages

    # -- aiosmtpd handler hooks ---------------------------------------------------------------------------

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        reply = self._script.popleft() if self._script else None
        mail_from = str(envelope.mail_from)
        rcpts = list(envelope.rcpt_tos)
        if reply == HANG:
            self.attempts.append(Attempt(mail_from, rcpts, parsed["Message-ID"], HANG))
            await self._closing.wait()
            return "421 4.3.0 closing"
        reply = reply or "250 2.0.0 accepted"
        self.attempts.append(Attempt(mail_from, rcpts, parsed["Message-ID"], reply))
        if reply.startswith("250"):
            self.messages.append(Received(mail_from, rcpts, raw, parsed))
            self._arrived.set()
        return reply

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        if isinstance(data, LoginPassword) and self._credentials is not None:
            user, password = data.login.decode(), data.password.decode()
            if (user, password) == self._credentials:
                self.logins.append(user)
                return AuthResult(success=True)
        return AuthResult(success=False, handled=False)

    # -- lifetime -----------------------------------------------------------------------------------------

    def _protocol(self) -> SMTP:
        loop = asyncio.get_running_loop()
        auth: dict[str, Any] = {}
        if self._credentials is not None:
            # Loopback only: plain-text AUTH is fine here, and it keeps the test free of certificates.
            auth = {"authenticator": self._authenticate, "auth_require_tls": False}
        protocol = SMTP(self, hostname="localhost", loop=loop, **auth)
        self._protocols.append(protocol)
        return protocol

    async def __aenter__(self) -> SmtpServer:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._protocol, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._closing.set()
        if self._server is not None:
            self._server.close()
            for protocol in self._protocols:
                if protocol.transport is not None:
                    protocol.transport.close()
            await self._server.wait_closed()
            await asyncio.sleep(0)  # let the handlers see their connections go
