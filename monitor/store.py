"""Redis state of the fetchers: HTTP validators and feed health (events live in ``eventstore``)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

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

    async def poll_state(self, feed: str) -> tuple[Validators | None, float | None, str | None]:
        """(HTTP validators, the adaptive interval, the digest of the last body) of a feed, in one round trip."""
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.hgetall(self.keys.validators(feed))
                pipe.hmget(self.keys.feed_state(feed), "interval_s", "body_digest")
                raw, (interval, digest) = await pipe.execute()
        except RedisError as exc:
            raise StoreError(f"Redis failed reading feed state: {exc}") from exc
        validators = None
        if raw:
            etag, modified = raw.get(b"etag"), raw.get(b"last_modified")
            validators = Validators(
                etag=etag.decode() if etag else None, last_modified=modified.decode() if modified else None
            )
        return validators, float(interval) if interval else None, digest.decode() if digest else None

    async def enqueue_notice(self, alert: dict[str, Any]) -> None:
        """Put an operator notice (feed down / recovered) in the outbox and the alert log."""
        body = json.dumps(alert, ensure_ascii=False, separators=(",", ":"))
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.xadd(self.keys.outbox, {"id": alert["id"], "alert": body})
                pipe.xadd(self.keys.alert_log, {"id": alert["id"], "alert": body})
                await pipe.execute()
        except RedisError as exc:
            raise StoreError(f"Redis failed enqueueing a notice: {exc}") from exc

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
        interval_s: float | None = None,
        body_digest: str | None = None,
    ) -> tuple[int, int]:
        """Update the feed's health hash; returns (consecutive errors before, after) this fetch."""
        key = self.keys.feed_state(feed)
        stamp = at.isoformat()
        fields = {
            "last_attempt": stamp,
            "last_status": str(status or ""),
            "last_latency_s": f"{latency_s:.3f}",
            "last_error": error or "",
        }
        if interval_s is not None:
            fields["interval_s"] = f"{interval_s:.1f}"
        if body_digest is not None:
            fields["body_digest"] = body_digest
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.hget(key, "consecutive_errors")
                pipe.hset(key, mapping=fields)
                if ok:
                    pipe.hset(key, mapping={"last_success": stamp, "consecutive_errors": "0"})
                    pipe.hincrby(key, "items_seen", items)
                else:
                    pipe.hincrby(key, "consecutive_errors", 1)
                result = await pipe.execute()
        except RedisError as exc:
            raise StoreError(f"Redis failed recording feed health: {exc}") from exc
        before = int(result[0] or 0)
        return before, (0 if ok else int(result[-1]))

    async def feed_health(self, feed: str) -> dict[str, str]:
        try:
            raw = await self.redis.hgetall(self.keys.feed_state(feed))
        except RedisError as exc:
            raise StoreError(f"Redis failed: {exc}") from exc
        return {k.decode(): v.decode() for k, v in raw.items()}
