"""What a Redis URL must look like before anything connects with it (``redis.url``, ``REDIS_URL``).

Checked here rather than left to the client, whose errors arrive at start-up as tracebacks quoting the URL. A
reason never quotes the URL or a part of it: a malformed URL is most often a password with an unencoded ``/``,
``?`` or ``#``, and what looks like its port or path is then a piece of that password.
"""

from __future__ import annotations

from urllib.parse import SplitResult, urlsplit

__all__ = ["SCHEMES_REASON", "redis_url_problem"]

SCHEMES_REASON = "must be 'embedded' or a redis://, rediss:// or unix:// URL"
_ENCODE = "percent-encode / ? # in a password"


def redis_url_problem(value: str) -> str | None:
    """Why ``value`` is not ``embedded`` or a Redis URL a client can use; None when it is."""
    if value == "embedded":
        return None
    try:
        parts = urlsplit(value)
    except ValueError:  # e.g. an unclosed "[" of an IPv6 address
        return f"is not a well-formed URL ({_ENCODE})"
    if parts.scheme not in ("redis", "rediss", "unix") or not value.lower().startswith(f"{parts.scheme}://"):
        return SCHEMES_REASON
    if parts.scheme == "unix":
        return None if parts.path else "a unix:// URL needs the socket's path, e.g. unix:///run/redis/redis.sock"
    return _network_problem(parts)


def _network_problem(parts: SplitResult) -> str | None:
    try:
        port = parts.port
    except ValueError:
        port = -1
    if port is not None and not 0 < port <= 65535:
        return f"the port must be a number from 1 to 65535 ({_ENCODE})"
    if not parts.hostname:
        return f"must name a host, e.g. redis://redis.internal:6379/0 ({_ENCODE})"
    database = parts.path.strip("/")
    if database and not (database.isascii() and database.isdigit()):
        return f"the database after the host must be a number, e.g. redis://redis.internal:6379/0 ({_ENCODE})"
    return None
