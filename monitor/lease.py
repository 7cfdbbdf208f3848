"""Per-feed fetch leases, so that replicas sharing one Redis poll each feed about once per interval in total.

Before a poll a replica takes ``{ns}:lease:feed:<name>`` with its token for the feed's poll interval less a margin
(``lease_ttl_ms``); when another replica holds it, the poll is skipped. A replica that holds the lease itself may
poll again (its own schedule fired early, or the feed speeds up) and renews it, so a feed stays with the replica
that polls it until that replica stops. Nothing but expiry or a compare-and-delete by its holder ends a lease: a
replica never deletes another's. A holder paused past its lease can overlap with the next holder once; the
article claims in Redis make that a harmless duplicate fetch, never a duplicate alert.
"""

from __future__ import annotations

import os
import secrets

import redis.asyncio as aioredis

from monitor.keys import Keys

__all__ = ["FeedLeases", "lease_ttl_ms", "replica_token"]

# Take the lease when it is free or already ours; otherwise report who holds it. One step, so two replicas
# firing at once cannot both win.
_ACQUIRE = """
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return holder end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return false
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def lease_ttl_ms(interval_s: float) -> int:
    """The interval less a margin (a tenth, at most 30 s): the lease ends just before the holder's next poll, so
    when the holder has gone another replica takes the feed over within about one interval."""
    margin = min(interval_s * 0.1, 30.0)
    return max(1, int((interval_s - margin) * 1000))


def replica_token(replica: str) -> str:
    """A token unique to this process: the replica name (for operators reading the key) and a random part, so two
    processes given the same name by mistake still never share a lease."""
    return f"{replica}/{os.getpid()}/{secrets.token_hex(4)}"


class FeedLeases:
    """The leases this process takes. Redis errors propagate (the caller decides whether to poll anyway)."""

    def __init__(self, redis: aioredis.Redis, keys: Keys, token: str) -> None:
        self.redis = redis
        self.keys = keys
        self.token = token

    async def acquire(self, feed: str, ttl_ms: int) -> str | None:
        """Take or renew the lease of ``feed``; None when it is ours now, else the token of its holder."""
        holder = await self.redis.eval(_ACQUIRE, 1, self.keys.feed_lease(feed), self.token, str(ttl_ms))
        if not holder:
            return None
        return holder.decode() if isinstance(holder, bytes) else str(holder)

    async def release(self, feed: str) -> bool:
        """Give the lease of ``feed`` back if (and only if) this process still holds it."""
        return bool(await self.redis.eval(_RELEASE, 1, self.keys.feed_lease(feed), self.token))
