"""Redis state behind the pipeline: article claims with their outbox entries, HTTP validators, feed health.

Every check-and-set two replicas could race on is one Lua script, so it is atomic on the server.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from monitor.errors import StoreError
from monitor.fetch import Validators
from monitor.keys import FINGERPRINT_TTL_S, SEEN_TTL_S, VALIDATORS_TTL_S, Keys

__all__ = ["Store"]

# KEYS[1] is the outbox stream, KEYS[2..] the identities of one article (its id first, then its content
# fingerprint). If none was claimed before, all are claimed and the alert is enqueued in the same step, so a
# crash can neither lose the alert (claimed, never enqueued) nor double it (enqueued, never claimed). If any was
# claimed, the rest are claimed too, so a later copy under either identity is also recognised.
_CLAIM_AND_ENQUEUE = """
local fresh = true
for i = 2, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then fresh = false end
end
for i = 2, #KEYS do
  local ttl = tonumber(ARGV[2 + i])
  if ttl == nil then ttl = tonumber(ARGV[3]) end
  redis.call('SET', KEYS[i], ARGV[1], 'NX', 'EX', ttl)
end
if not fresh then return 0 end
redis.call('XADD', KEYS[1], '*', 'id', ARGV[1], 'alert', ARGV[2])
return 1
"""


class Store:
    """Typed access to the monitor's Redis keys. Redis failures surface as ``StoreError``."""

    def __init__(self, redis: aioredis.Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys
        self._claim = redis.register_script(_CLAIM_AND_ENQUEUE)

    async def claim_and_enqueue(self, article_id: str, fingerprint: str | None, alert: dict[str, Any]) -> bool:
        """Claim the article and enqueue its alert atomically; False if it was claimed before."""
        keys = [self.keys.outbox, self.keys.seen(article_id)]
        ttls = [str(SEEN_TTL_S)]
        if fingerprint:
            keys.append(self.keys.fingerprint(fingerprint))
            ttls.append(str(FINGERPRINT_TTL_S))
        body = json.dumps(alert, ensure_ascii=False, separators=(",", ":"))
        try:
            return bool(await self._claim(keys=keys, args=[alert["id"], body, str(SEEN_TTL_S), *ttls]))
        except RedisError as exc:
            raise StoreError(f"Redis failed while claiming an article: {exc}") from exc

    async def seen(self, article_id: str) -> bool:
        try:
            return bool(await self.redis.exists(self.keys.seen(article_id)))
        except RedisError as exc:
            raise StoreError(f"Redis failed: {exc}") from exc

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

    async def note_event(self, event_id: str, severity: int, at: datetime, window_s: int) -> int:
        """Remember an alerted event and return the highest severity alerted within ``window_s``."""
        key = self.keys.recent_events
        now = at.timestamp()
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.zadd(key, {f"{event_id}|{severity}": now})
                pipe.zremrangebyscore(key, "-inf", now - window_s)
                pipe.zrangebyscore(key, now - window_s, "+inf")
                pipe.expire(key, window_s)
                result = await pipe.execute()
        except RedisError as exc:
            raise StoreError(f"Redis failed: {exc}") from exc
        return max((int(m.rsplit(b"|", 1)[1]) for m in result[2]), default=severity)
