"""Alert payloads in the contract's shape (``kind: event`` and ``kind: escalation``), and alert-log writes as the
pipeline makes them, for the sink, e-mail and digest tests."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import redis.asyncio as aioredis

from monitor.core.clock import utc_iso
from monitor.storage.keys import Keys

__all__ = ["HOSTILE_TITLE", "T0", "FakeClock", "escalation_alert", "event_alert", "log_alert"]

T0 = datetime(2024, 1, 4, 7, 0, tzinfo=UTC)
#: A headline that tries everything: markup, mentions, header injection, Markdown links.
HOSTILE_TITLE = (
    "US strike <script>alert(1)</script> & @everyone <!channel> [bbc.co.uk](https://evil.example)\r\nBcc: x@evil"
)


class FakeClock:
    """``now()`` is whatever the test sets; ``monotonic()`` is real (timers still run)."""

    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def now(self) -> datetime:
        return self.moment

    def monotonic(self) -> float:
        return time.monotonic()


def event_alert(
    n: int = 1,
    *,
    revision: int = 1,
    severity: int = 4,
    event_type: str = "us_strike_in_iraq",
    at: datetime = T0,
    level: int = 3,
    **changes: Any,
) -> dict[str, Any]:
    alert: dict[str, Any] = {
        "id": f"evt{n}.r{revision}",
        "kind": "event",
        "event_id": f"evt{n}",
        "revision": revision,
        "event_type": event_type,
        "severity": severity,
        "title": f"US strikes militia depot near Baghdad ({n})",
        "summary": "Officials said the strike hit a weapons depot.",
        "escalation_level": level,
        "first_seen": utc_iso(at - timedelta(hours=revision - 1)),
        "updated": utc_iso(at),
        "entities": ["baghdad", "kataib_hezbollah"],
        "evidence": ["US airstrike", "Kataib Hezbollah"],
        "articles": [
            {"url": f"https://example.org/{n}/a", "title": f"Strike near Baghdad ({n})", "source": "wire-a"},
            {"url": f"https://example.org/{n}/b", "title": "Militia depot hit", "source": "wire-b"},
        ],
    }
    if revision > 1:
        alert["changes"] = ["severity rose"]
    alert.update(changes)
    return alert


def escalation_alert(previous: int, level: int, *, at: datetime = T0) -> dict[str, Any]:
    """The shape of ``monitor.events.alerts.escalation_alert``."""
    direction = "rose" if level > previous else "fell"
    return {
        "id": f"esc_{int(at.timestamp())}_{previous}_{level}",
        "kind": "escalation",
        "event_id": "evt1",
        "revision": 1,
        "event_type": None,
        "severity": level,
        "title": f"Escalation level {direction} from {previous} to {level}",
        "summary": "Index 4.1; 6 events in the past 7 days.",
        "escalation_level": level,
        "previous_level": previous,
        "first_seen": utc_iso(at),
        "updated": utc_iso(at),
        "entities": [],
        "evidence": [],
        "articles": [{"url": "https://example.org/1/a", "title": "Strike near Baghdad", "source": "wire-a"}],
    }


_seq: dict[int, int] = {}


async def log_alert(redis: aioredis.Redis, keys: Keys, alert: dict[str, Any], at: datetime) -> None:
    """XADD to the alert log as the pipeline does, with the stream id at ``at`` (ms) so windows can be tested."""
    millis = int(at.timestamp() * 1000)
    _seq[millis] = _seq.get(millis, -1) + 1
    fields: dict[Any, Any] = {"id": alert["id"], "alert": json.dumps(alert, ensure_ascii=False)}
    await redis.xadd(keys.alert_log, fields, id=f"{millis}-{_seq[millis]}")
