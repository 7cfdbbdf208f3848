"""Reading the outbox from the side, as ``monitor replay`` does: the alerts enqueued since the last read, without a
consumer group (nothing is acknowledged or delivered); and deleting a throw-away key namespace afterwards."""

from __future__ import annotations

import json
from typing import Any, cast

from redis.exceptions import RedisError

from monitor.core.errors import StoreError
from monitor.storage.connection import Redis
from monitor.storage.keys import Keys

__all__ = ["OutboxTail", "drop_namespace"]


class OutboxTail:
    """The outbox stream of ``keys``, read in order from where the last call stopped."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys
        self._last = "0-0"

    async def new_alerts(self) -> list[dict[str, Any]]:
        """The alert payloads added to the outbox since the previous call, oldest first."""
        try:
            raw = await self.redis.xrange(self.keys.outbox, min=f"({self._last}")
        except RedisError as exc:
            raise StoreError(f"Redis failed reading the outbox: {exc}") from exc
        # Undecoded client: ids and fields are bytes, and XRANGE returns a list (the stubs allow str and None).
        entries = cast(list[tuple[bytes, dict[bytes, bytes]]], raw)
        alerts = []
        for entry_id, fields in entries:
            self._last = entry_id.decode()
            alerts.append(json.loads(fields[b"alert"]))
        return alerts


async def drop_namespace(redis: Redis, keys: Keys) -> None:
    """Delete every key of ``keys``' namespace (a replay's own; never the daemon's)."""
    try:
        async for key in redis.scan_iter(match=keys.pattern, count=500):
            await redis.delete(key)
    except RedisError as exc:
        raise StoreError(f"Redis failed deleting namespace {keys.namespace}: {exc}") from exc
