"""What ``/readyz`` asks of Redis beyond PING: that the primary takes a write, and that the outbox stream is there
to be read.

A Redis that answers PING may still refuse every write: a primary demoted to a replica during a failover
(``READONLY``), a cluster node during a slot migration (``MOVED``), a server out of memory (``OOM``) or one whose
writes are paused. So the probe writes: a SET of a key of its own with a TTL of a few seconds, so probes never
accumulate (``Keys.ready_probe``). On a cluster it also fails while the monitor's slot is being migrated: a single
key then still takes writes, but the pipeline's scripts fail with ``TRYAGAIN`` until the slot has moved.
"""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.exceptions import TryAgainError

from monitor.storage.connection import store_errors
from monitor.storage.keys import READY_PROBE_TTL_S, Keys
from monitor.storage.topology import primary_address, slot_migrating

__all__ = ["outbox_length", "probe_write", "redis_primary"]


async def probe_write(redis: aioredis.Redis, keys: Keys, replica: str, stamp: str) -> None:
    """SET this replica's probe key to ``stamp`` with a TTL of ``READY_PROBE_TTL_S``. Raises
    ``StoreUnavailableError`` when Redis cannot be reached, ``StoreError`` when it refuses the write."""
    with store_errors("to take a write"):
        await redis.set(keys.ready_probe(replica), stamp, ex=READY_PROBE_TTL_S)
        if await slot_migrating(redis, keys.outbox):
            # One key still takes writes, but the pipeline's scripts (many keys, partly moved) fail until it is over.
            raise TryAgainError("the monitor's cluster slot is being migrated")


async def outbox_length(redis: aioredis.Redis, keys: Keys) -> int:
    """XLEN of the outbox stream (0 when it does not exist yet). Raises ``StoreError`` as ``probe_write`` does,
    e.g. when the key holds something other than a stream."""
    with store_errors("reading the outbox stream"):
        return int(await redis.xlen(keys.outbox))


async def redis_primary(redis: aioredis.Redis, keys: Keys) -> str:
    """``host:port`` of the node that takes the monitor's writes (``monitor.storage.topology.primary_address``).
    Raises ``StoreError`` as ``probe_write`` does."""
    with store_errors("naming its primary"):
        return await primary_address(redis, keys.outbox)
