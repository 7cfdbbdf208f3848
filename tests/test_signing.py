import time

import pytest
from standardwebhooks.webhooks import Webhook

from monitor.delivery.signing import secret_key, sign, webhook_headers

# The published Standard Webhooks / Svix test vector.
SVIX_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SVIX_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SVIX_TS = 1614265330
SVIX_BODY = b'{"test": 2432232314}'
SVIX_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_golden_vector_whsec_secret() -> None:
    assert sign(SVIX_SECRET, SVIX_ID, SVIX_TS, SVIX_BODY) == SVIX_SIGNATURE


def test_golden_vector_plain_secret_uses_utf8_bytes() -> None:
    # printf '%s' 'a1.r1.1700000000.{"id":"a1.r1"}' | openssl dgst -sha256 -hmac plain-secret -binary | base64
    assert sign("plain-secret", "a1.r1", 1700000000, b'{"id":"a1.r1"}') == (
        "v1,QNS6BOZXgecaBTYM1IAZ7dQxPXGHYaSWtPv213rrcF8="
    )


def test_whsec_padding_is_optional() -> None:
    padded = "whsec_" + "YWJjZA=="
    assert secret_key(padded) == secret_key("whsec_YWJjZA") == b"abcd"


@pytest.mark.parametrize("bad", ["", "whsec_", "whsec_not*base64!"])
def test_bad_secrets_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        secret_key(bad)


@pytest.mark.parametrize("secret", [SVIX_SECRET, "a plain secret, é"])
def test_headers_verify_with_the_reference_library(secret: str) -> None:
    body = '{"id":"evt.r1","title":"Frappe à Bagdad"}'.encode()
    now = int(time.time())
    headers = webhook_headers(secret, "evt.r1", now, body)
    assert headers["webhook-id"] == "evt.r1"
    assert headers["webhook-timestamp"] == str(now)
    assert headers["content-type"] == "application/json"
    verifier = Webhook(secret if secret.startswith("whsec_") else secret.encode())
    assert verifier.verify(body, headers) == {"id": "evt.r1", "title": "Frappe à Bagdad"}


def test_key_bytes_and_unsigned() -> None:
    body = b"{}"
    assert webhook_headers(secret_key("k"), "x", 1, body) == webhook_headers("k", "x", 1, body)
    assert "webhook-signature" not in webhook_headers(None, "x", 1, body)
