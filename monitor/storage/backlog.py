"""How far behind each sink is: alerts it holds unacknowledged plus alerts it has not read yet, and the age of the
oldest of them. Read from the outbox's consumer groups, so it is the same for every replica.

Redis 7 reports each group's ``lag`` (entries not yet read); Redis 6.2 (the embedded server) does not, so there
the entries after the group's last-delivered id are counted, up to ``UNREAD_CAP`` (a sink that far behind is
alarming whatever the exact figure, and counting reads the entries themselves).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from monitor.storage.connection import store_errors
from monitor.storage.keys import Keys

__all__ = ["UNREAD_CAP", "SinkBacklog", "entry_ms", "read_backlog"]

UNREAD_CAP = 1000


@dataclass(frozen=True, slots=True)
class SinkBacklog:
    """One consumer group (one sink) of the outbox."""

    sink: str
    pending: int  # read by some replica, not yet acknowledged (in flight or waiting for a retry)
    unread: int  # not yet read by any replica
    oldest_ms: int | None  # enqueue time (ms) of the oldest of those; None when there are none

    @property
    def total(self) -> int:
        return self.pending + self.unread

    def oldest_age_s(self, now_ms: int) -> float:
        return 0.0 if self.oldest_ms is None else max(0.0, (now_ms - self.oldest_ms) / 1000)


def entry_ms(entry_id: bytes | str) -> int:
    """The time part of a stream entry id (``<ms>-<seq>``): when it was added."""
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return int(text.split("-", 1)[0])


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def read_backlog(redis: aioredis.Redis, keys: Keys) -> list[SinkBacklog]:
    """The backlog of every consumer group on the outbox (groups of removed sinks included: they block trimming).
    Raises ``StoreError`` when Redis fails."""
    with store_errors("reading the outbox backlog"):
        try:
            groups: list[dict[str, Any]] = await redis.xinfo_groups(keys.outbox)
        except ResponseError:  # no outbox yet
            return []
        return [await _group_backlog(redis, keys.outbox, group) for group in groups]


async def _group_backlog(redis: aioredis.Redis, stream: str, group: dict[str, Any]) -> SinkBacklog:
    name = _text(group["name"])
    pending = int(group.get("pending") or 0)
    oldest: list[int] = []
    if pending:
        summary = await redis.xpending(stream, name)
        if summary.get("min"):
            oldest.append(entry_ms(summary["min"]))
    after = "(" + _text(group.get("last-delivered-id", "0-0"))
    lag = group.get("lag")
    first: Any  # [(id, fields), ...]; typed loosely, as the client types stream replies
    if lag is not None:  # Redis >= 7 (None there too when it cannot tell, e.g. after XSETID or deletions)
        unread = int(lag)
        first = await redis.xrange(stream, min=after, count=1) if unread else []
    else:
        first = await redis.xrange(stream, min=after, count=UNREAD_CAP)
        unread = len(first)
    if first:
        oldest.append(entry_ms(first[0][0]))
    return SinkBacklog(name, pending, unread, min(oldest) if oldest else None)
