"""Standard Webhooks signing (https://www.standardwebhooks.com), as the webhook contract in DESIGN.md states.

The signature is ``v1,`` + base64 of HMAC-SHA256 over ``"{id}.{timestamp}.{body}"``. The key is the secret's UTF-8
bytes, except that a secret starting with ``whsec_`` is the base64 of the key bytes (the form Svix and the
Standard Webhooks libraries generate), so receivers can use those libraries unchanged.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

__all__ = ["SECRET_PREFIX", "secret_key", "sign", "webhook_headers"]

SECRET_PREFIX = "whsec_"


def secret_key(secret: str) -> bytes:
    """The HMAC key bytes of ``secret``. Raises ``ValueError`` for an empty key or a bad ``whsec_`` secret."""
    if secret.startswith(SECRET_PREFIX):
        encoded = secret.removeprefix(SECRET_PREFIX).rstrip("=")
        # Generators differ on padding; restore it rather than reject a secret the receiver's library accepts.
        encoded += "=" * (-len(encoded) % 4)
        try:
            key = base64.b64decode(encoded, validate=True)
        except binascii.Error as exc:
            raise ValueError("a 'whsec_' secret must be base64 after the prefix") from exc
    else:
        key = secret.encode("utf-8")
    if not key:
        raise ValueError("the webhook secret is empty")
    return key


def _sign_with_key(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = b"%s.%d.%s" % (msg_id.encode("utf-8"), timestamp, body)
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value for one message: ``v1,<base64 HMAC-SHA256>``."""
    return _sign_with_key(secret_key(secret), msg_id, timestamp, body)


def webhook_headers(secret: str | bytes | None, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The request headers of one signed delivery.

    ``secret`` is the configured secret, or key bytes already derived with ``secret_key`` (so a sink derives
    once, not per request); ``None`` sends the message unsigned (no ``webhook-signature`` header).
    ``msg_id`` is the alert id, which stays the same across retries so receivers can deduplicate on it.
    """
    headers = {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
    }
    if secret is not None:
        key = secret if isinstance(secret, bytes) else secret_key(secret)
        headers["webhook-signature"] = _sign_with_key(key, msg_id, timestamp, body)
    return headers
