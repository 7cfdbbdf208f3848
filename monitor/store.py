"""Redis state of the fetchers: HTTP validators and feed health (events live in ``eventstore``)."""

from __future__ import annotations

from datetime import datetime

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from monitor.errors import StoreError
from monitor.fetch import Validators
from monitor.keys import VALIDATORS_TTL_S, Keys

__all__ = ["Store"]


class Store:
    """Typed access to the monitor's Redis keys. Redis failures surface as ``StoreError``."""

    def __init__(self, redis: aioredis.Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys

    async def validators(self, feed: str) -> Validators | None:
        try:
            raw = await self.redis.hgetall(self.keys.validators(feed))
        except RedisError as exc:
            raise StoreError(f"Redis failed reading validators: {exc}") from exc
        if not raw:
            return None
        etag = raw.get(b"etag")
        modified = raw.get(b"last_modified")
        return Validators(etag=etag.decode() if etag else None, last_modified=modified.decode() if modified else None)

    async def save_validators(self, feed: str, validators: Validators) -> None:
        fields = {"etag": validators.etag or "", "last_modified": validators.last_modified or ""}
        key = self.keys.validators(feed)
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.hset(key, mapping=fields).expire(key, VALIDATORS_TTL_S)
                await pipe.execute()
        except RedisError as exc:
            raise StoreError(f"Redis failed saving validators: {exc}") from exc

    async def record_fetch(
        self,
        feed: str,
        *,
        at: datetime,
        ok: bool,
        status: int | None,
        items: int,
        latency_s: float,
        error: str | None = None,
    ) -> int:
        """Update the feed's health hash; returns its consecutive error count after this fetch."""
        key = self.keys.feed_state(feed)
        stamp = at.isoformat()
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.hset(
                    key,
                    mapping={
                        "last_attempt": stamp,
                        "last_status": str(status or ""),
                        "last_latency_s": f"{latency_s:.3f}",
                        "last_error": error or "",
                    },
                )
                if ok:
                    pipe.hset(key, mapping={"last_success": stamp, "consecutive_errors": "0"})
                    pipe.hincrby(key, "items_seen", items)
                    pipe.hget(key, "consecutive_errors")
                else:
                    pipe.hincrby(key, "consecutive_errors", 1)
                result = await pipe.execute()
        except RedisError as exc:
            raise StoreError(f"Redis failed recording feed health: {exc}") from exc
        return 0 if ok else int(result[-1])

    async def feed_health(self, feed: str) -> dict[str, str]:
        try:
            raw = await self.redis.hgetall(self.keys.feed_state(feed))
        except RedisError as exc:
            raise StoreError(f"Redis failed: {exc}") from exc
        return {k.decode(): v.decode() for k, v in raw.items()}
