"""The dead-letter stream: alerts a sink refused for good or gave up on, and how to send them again.

Each dead entry has the fields ``sink``, ``id`` (the alert id), ``alert`` (the payload JSON), ``reason``,
``attempts``, ``time`` (ISO-8601 UTC) and ``entry`` (the outbox entry it came from).

Retrying re-enqueues the alert to the outbox with an extra field ``only_sink`` set to the sink it failed on:
every other sink's deliverer acknowledges such an entry without sending it, so a retry never repeats an alert
to the sinks that already have it. The alert keeps its id, so the webhook-id is the same as on the first try.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import redis.asyncio as aioredis

from monitor.storage.connection import store_errors
from monitor.storage.keys import DEAD_MAXLEN, Keys

__all__ = ["DEAD_MAXLEN", "DeadAlert", "dead_fields", "list_dead", "retry_dead"]  # DEAD_MAXLEN: see storage.keys

# Atomic move from the dead stream back to the outbox: two operators retrying the same id at once re-send once.
_RETRY = """
local found = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])
if #found == 0 then return false end
local fields = found[1][2]
local alert, id, sink
for i = 1, #fields, 2 do
  if fields[i] == 'alert' then alert = fields[i + 1]
  elseif fields[i] == 'id' then id = fields[i + 1]
  elseif fields[i] == 'sink' then sink = fields[i + 1] end
end
redis.call('XADD', KEYS[2], '*', 'alert', alert, 'id', id, 'only_sink', sink)
redis.call('XDEL', KEYS[1], ARGV[1])
return fields
"""


@dataclass(frozen=True, slots=True)
class DeadAlert:
    """One dead-letter entry; ``dead_id`` is its id in the dead-letter stream (what ``retry_dead`` takes)."""

    dead_id: str
    sink: str
    alert_id: str
    reason: str
    attempts: int
    time: str
    alert: dict[str, Any]


def dead_fields(
    *, sink: str, alert_id: str, alert: bytes, reason: str, attempts: int, time: str, entry: str
) -> dict[bytes, bytes | str]:
    """The fields of a new dead-letter entry (``monitor.storage.outbox`` adds it as it acknowledges the entry)."""
    return {
        b"sink": sink,
        b"id": alert_id,
        b"alert": alert,
        b"reason": reason,
        b"attempts": str(attempts),
        b"time": time,
        b"entry": entry,
    }


def _text(fields: dict[bytes, bytes], name: str) -> str:
    return fields.get(name.encode(), b"").decode("utf-8", errors="replace")


def _dead_alert(dead_id: bytes | str, fields: dict[bytes, bytes]) -> DeadAlert:
    try:
        alert = json.loads(fields.get(b"alert", b"{}"))
    except ValueError:
        alert = {}
    attempts = _text(fields, "attempts")
    return DeadAlert(
        dead_id=dead_id.decode() if isinstance(dead_id, bytes) else dead_id,
        sink=_text(fields, "sink"),
        alert_id=_text(fields, "id"),
        reason=_text(fields, "reason"),
        attempts=int(attempts) if attempts.isdigit() else 0,
        time=_text(fields, "time"),
        alert=alert if isinstance(alert, dict) else {},
    )


async def list_dead(redis: aioredis.Redis, keys: Keys, limit: int = 100) -> list[DeadAlert]:
    """The ``limit`` most recent dead alerts, newest first. Raises ``StoreError`` when Redis fails."""
    with store_errors("listing dead letters"):
        entries: Any = await redis.xrevrange(keys.dead, count=limit)
    return [_dead_alert(dead_id, fields) for dead_id, fields in entries]


async def _all_dead_ids(redis: aioredis.Redis, keys: Keys) -> list[str]:
    ids: list[str] = []
    start = "-"
    while True:
        batch: Any = await redis.xrange(keys.dead, min=start, count=500)
        if not batch:
            return ids
        ids.extend(dead_id.decode() for dead_id, _ in batch)
        start = "(" + ids[-1]


async def retry_dead(redis: aioredis.Redis, keys: Keys, ids: Iterable[str] | Literal["all"]) -> list[DeadAlert]:
    """Re-enqueue dead alerts for the sink each failed on and remove them from the dead-letter stream.

    ``ids`` are dead-letter entry ids, or ``"all"``. Returns the alerts re-enqueued; ids that are not (or no
    longer) in the dead-letter stream are skipped. Raises ``StoreError`` when Redis fails (those moved before
    stay moved).
    """
    moved: list[DeadAlert] = []
    with store_errors("re-enqueueing dead letters"):
        wanted = await _all_dead_ids(redis, keys) if ids == "all" else list(ids)
        retry = redis.register_script(_RETRY)
        for dead_id in wanted:
            flat = await retry(keys=[keys.dead, keys.outbox], args=[dead_id])
            if flat:
                moved.append(_dead_alert(dead_id, dict(zip(flat[::2], flat[1::2], strict=True))))
    return moved
