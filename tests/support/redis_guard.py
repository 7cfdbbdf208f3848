"""The suite flushes the Redis it tests against before every test: never one it did not start and that holds data.

With ``REDIS_URL`` the suite uses that server instead of starting the embedded one; ``refusal`` says why it must
not (its database holds keys: a developer's or a staging Redis) unless ``MONITOR_TEST_REDIS_FLUSH=1`` says that
flushing it is fine. The URL itself is never repeated: it may carry a password.
"""

from __future__ import annotations

from collections.abc import Mapping

import redis

__all__ = ["FLUSH_OPT_IN", "refusal"]

#: Set to ``1`` to let the suite flush a ``REDIS_URL`` database that holds keys.
FLUSH_OPT_IN = "MONITOR_TEST_REDIS_FLUSH"


def refusal(url: str, environ: Mapping[str, str]) -> str | None:
    """Why the suite must not flush the Redis database at ``url``, or None when it may (empty, or opted in)."""
    if environ.get(FLUSH_OPT_IN) == "1":
        return None
    client = redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=10)
    try:
        keys = int(client.dbsize())
    finally:
        client.close()
    if not keys:
        return None
    return (
        f"REDIS_URL names a Redis database that holds {keys} key(s), and the test suite runs FLUSHDB on it before "
        f"every test. Point REDIS_URL at an empty database (or unset it: the suite starts its own Redis), or set "
        f"{FLUSH_OPT_IN}=1 if its data may be deleted."
    )
