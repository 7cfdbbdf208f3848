"""Credentials out of text: the one place that knows what a password in a URL looks like, for log events
(``core.logs``), configuration errors (``config``) and whatever the command line prints (``cli``).

A malformed URL is the usual reason its password is printed at all (a ``/``, ``?`` or ``#`` in the password
not percent-encoded), so URLs of the schemes that carry a password to a server (Redis, SMTP, databases) lose
everything up to the last ``@`` of their token; other URLs lose the user-info the RFC delimits.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["REDACTED", "redact", "url_credentials"]

REDACTED = "[redacted]"
#: Secrets shorter than this are not searched for as plain text (they would garble every message); the URL
#: patterns below still remove them from URLs.
_MIN_SECRET = 4

_SECRET_SCHEMES = r"redis|rediss|unix|smtp|smtps|amqp|amqps|mongodb|postgres|postgresql|mysql"
_GREEDY_USERINFO = re.compile(rf"\b(?P<scheme>(?:{_SECRET_SCHEMES})://)\S*@", re.IGNORECASE)
_USERINFO = re.compile(r"\b(?P<scheme>[a-z][a-z0-9+.-]*://)[^/?#\s@'\"<>]+@", re.IGNORECASE)
_QUERY_SECRET = re.compile(
    r"(?P<key>[?&](?:password|passwd|pass|pwd|secret|token|auth|api[_-]?key)=)[^&#\s'\"<>]+", re.IGNORECASE
)


def url_credentials(url: str) -> list[str]:
    """The credentials in ``url`` as plain strings to search for, found leniently so that a malformed URL gives
    them up too: its whole user-info and the password after the first ``:``."""
    _, scheme, rest = url.partition("://")
    userinfo, at, _ = rest.rpartition("@")
    if not scheme or not at:
        return []
    password = userinfo.partition(":")[2]
    return [s for s in {userinfo, password} if len(s) >= _MIN_SECRET]


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` without the ``secrets`` given (the longest first) and without any URL's credentials."""
    for secret in sorted({s for s in secrets if s and len(s) >= _MIN_SECRET}, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, REDACTED)
    text = _GREEDY_USERINFO.sub(rf"\g<scheme>{REDACTED}@", text)
    text = _USERINFO.sub(rf"\g<scheme>{REDACTED}@", text)
    return _QUERY_SECRET.sub(rf"\g<key>{REDACTED}", text)
