"""Per-feed fetch leases, so that replicas sharing one Redis poll each feed about once per interval in total.

Before a poll a replica takes ``{ns}:lease:feed:<name>`` with its token for the feed's poll interval less a margin
(``lease_ttl_ms``); when another replica holds it, the poll is skipped. A replica that holds the lease itself may
poll again (its own schedule fired early, or the feed speeds up) and renews it, so a feed stays with the replica
that polls it until that replica stops. Nothing but expiry or a compare-and-delete by its holder ends a lease: a
replica never deletes another's. A holder paused past its lease can overlap with the next holder once; the
article claims in Redis make that a harmless duplicate fetch, never a duplicate alert.

A poll takes the lease in the same script that reads the feed's state (``PollState.begin_poll``, with
``TAKE_LEASE_LUA``), and stretches it to the delay it chose for its next poll in the script that records it
(``PollState.finish_poll``), only while this replica still holds it; ``FeedLeases`` is the lease on its own.
"""

from __future__ import annotations

import os
import secrets

import redis.asyncio as aioredis

from monitor.storage.connection import store_errors
from monitor.storage.keys import Keys

__all__ = ["STRETCH_LEASE_LUA", "TAKE_LEASE_LUA", "FeedLeases", "lease_ttl_ms", "replica_token"]

#: Lua: take the lease when it is free or already ours (for ``ttl_ms``); otherwise return who holds it. Inside one
#: script, so two replicas firing at once cannot both win.
TAKE_LEASE_LUA = """
local function take_lease(key, token, ttl_ms)
  local holder = redis.call('GET', key)
  if holder and holder ~= token then return holder end
  redis.call('SET', key, token, 'PX', ttl_ms)
  return false
end
"""

#: Lua: while ``token`` holds the lease, make it last at least ``ttl_ms`` (never shorter); its time left in ms,
#: or -1 when the lease is not (or no longer) this token's.
STRETCH_LEASE_LUA = """
local function stretch_lease(key, token, ttl_ms)
  if redis.call('GET', key) ~= token then return -1 end
  local left = redis.call('PTTL', key)
  if left < tonumber(ttl_ms) then
    redis.call('PEXPIRE', key, ttl_ms)
    return tonumber(ttl_ms)
  end
  return left
end
"""

_ACQUIRE = TAKE_LEASE_LUA + "return take_lease(KEYS[1], ARGV[1], ARGV[2])"

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
    """The leases this process takes. Redis failures raise ``StoreError`` (the caller decides whether to poll
    anyway)."""

    def __init__(self, redis: aioredis.Redis, keys: Keys, token: str) -> None:
        self.redis = redis
        self.keys = keys
        self.token = token

    async def acquire(self, feed: str, ttl_ms: int) -> str | None:
        """Take or renew the lease of ``feed`` for ``ttl_ms``; None when it is ours now, else the token of its
        holder. (A poll takes it in ``PollState.begin_poll``; this is for a lease that must be set on its own.)"""
        with store_errors(f"taking the lease of {feed}"):
            holder = await self.redis.eval(_ACQUIRE, 1, self.keys.feed_lease(feed), self.token, str(ttl_ms))
        if not holder:
            return None
        return holder.decode() if isinstance(holder, bytes) else str(holder)

    async def release(self, feed: str) -> bool:
        """Give the lease of ``feed`` back if (and only if) this process still holds it."""
        with store_errors(f"releasing the lease of {feed}"):
            return bool(await self.redis.eval(_RELEASE, 1, self.keys.feed_lease(feed), self.token))
