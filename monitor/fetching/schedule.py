"""When to poll a feed next: adaptive between a minimum and a maximum, polite to servers, patient with failures.

Pure: given what the last poll saw, return the delay before the next one.

* A feed that changed is polled sooner (the interval halves, down to the minimum); one that did not change is
  polled later (x1.25, up to the maximum). Busy feeds settle near their minimum, quiet ones near their maximum.
* What the server asks for is honoured: ``Retry-After`` after a 429/503 (up to ``MAX_HINT_S``), and
  ``Cache-Control: max-age``, ``Expires`` and the RSS ``<ttl>`` as a floor up to the feed's maximum interval —
  the maximum is the user's limit on staleness, which a server's caching advice does not override. A feed with
  ``adaptive: false`` is polled every ``interval_s``, hints or not.
* Failures back off exponentially from the base interval, capped at ``MAX_BACKOFF_S`` (or the maximum, if larger).
* Every delay gets +-10% jitter so feeds configured alike do not fire in lockstep.
"""

from __future__ import annotations

import contextlib
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime

__all__ = ["MAX_BACKOFF_S", "MAX_HINT_S", "Cadence", "next_delay", "reseed_jitter", "server_hint"]

MAX_HINT_S = 6 * 3600.0
MAX_BACKOFF_S = 3600.0
JITTER = 0.1
_MAX_AGE = re.compile(r"(?:^|[,\s])max-age\s*=\s*(\d{1,9})", re.IGNORECASE)
_RSS_TTL = re.compile(rb"<ttl>\s*(\d{1,6})\s*</ttl>", re.IGNORECASE)


@dataclass(frozen=True)
class Cadence:
    base_s: float
    min_s: float
    max_s: float
    adaptive: bool = True


def server_hint(headers: Mapping[str, str], body: bytes | None, now: datetime) -> float | None:
    """The longest wait the server asked for through caching headers or the RSS ``ttl`` (minutes), in seconds."""
    hints: list[float] = []
    control = headers.get("cache-control", "")
    if "no-cache" not in control.lower() and "no-store" not in control.lower():
        m = _MAX_AGE.search(control)
        if m:
            hints.append(float(m.group(1)))
        elif headers.get("expires"):
            with contextlib.suppress(TypeError, ValueError, IndexError):
                hints.append((parsedate_to_datetime(headers["expires"]) - now).total_seconds())
    if body:
        ttl = _RSS_TTL.search(body[:65536])
        if ttl:
            hints.append(float(ttl.group(1)) * 60)
    hints = [h for h in hints if h > 0]
    return min(max(hints), MAX_HINT_S) if hints else None


# One generator for the jitter: seeding a new one per poll costs more than the rest of the delay computation.
_JITTER = random.Random()


def reseed_jitter() -> None:
    """A fresh seed for the jitter: for a process forked from another that imported this module (a fetch worker),
    which would otherwise draw the same delays as its siblings."""
    _JITTER.seed()


def next_delay(
    cadence: Cadence,
    *,
    previous_s: float | None,
    changed: bool,
    failed: bool,
    consecutive_errors: int,
    retry_after_s: float | None = None,
    hint_s: float | None = None,
    rng: random.Random | None = None,
) -> tuple[float, float]:
    """(the delay before the next poll with jitter, the interval to remember without it)."""
    rng = rng or _JITTER
    current = previous_s or cadence.base_s
    if failed:
        ceiling = max(MAX_BACKOFF_S, cadence.max_s)
        interval = min(ceiling, cadence.base_s * 2 ** max(0, consecutive_errors - 1))
        if retry_after_s:
            interval = max(interval, min(retry_after_s, MAX_HINT_S))
        remembered = current  # a failure says nothing about how often the feed changes
    else:
        if not cadence.adaptive:
            interval = cadence.base_s
        elif changed:
            interval = max(cadence.min_s, current / 2)
        else:
            interval = min(cadence.max_s, current * 1.25)
        remembered = interval
        if hint_s and cadence.adaptive:  # a fixed interval is the user's explicit choice: it is kept as is
            interval = max(interval, min(hint_s, cadence.max_s))
    return interval * rng.uniform(1 - JITTER, 1 + JITTER), remembered
