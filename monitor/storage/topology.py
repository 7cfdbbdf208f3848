"""Clients for a Redis Cluster and for a primary found through Sentinel, and which node the monitor writes to.

- **Cluster** (``redis.mode: cluster``): redis-py's asyncio ``RedisCluster``, started from ``redis.url`` naming any
  node. Every key the monitor writes carries one hash tag (``monitor.storage.keys``), so its scripts, transactions
  and pipelines all go to the one primary owning that slot. ``MOVED`` and ``ASK`` (a slot migration) are followed
  by the client; a connection lost, ``CLUSTERDOWN`` or ``TRYAGAIN`` (a failover, a migration half done) are retried
  with a short exponential backoff, and the topology is read again.
- **Sentinel** (``redis.mode: sentinel``): redis-py's asyncio ``Sentinel``; ``master_for(service_name)`` asks the
  sentinels for the primary whenever it opens a connection, and a connection that finds its node demoted to a
  replica (``READONLY``) is dropped, so after a failover the next attempt reaches the new primary.

The rest of the monitor annotates both as ``Redis`` (``monitor.storage.connection``): the commands it uses behave
the same on all three, given the one slot.
"""

from __future__ import annotations

from typing import Any, cast
from urllib.parse import unquote, urlsplit

import redis
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import (
    Sentinel,
    SentinelConnectionPool,
    SentinelManagedConnection,
    SentinelManagedSSLConnection,
)
from redis.backoff import ExponentialBackoff

from monitor.config import RedisConfig

__all__ = ["close_sentinels", "cluster_client", "primary_address", "sentinel_client", "slot_migrating"]

#: Connections per cluster node; redis-py's cluster pool does not queue, so room for every concurrent caller (the
#: script batcher coalesces polls into a few pipelines, and each sink holds one blocking read).
CLUSTER_CONNECTIONS_PER_NODE = 256
#: Attempts after the first for a command that met a failover or a migration; with the backoff below they span
#: about 2.4 s, which covers a coordinated ``CLUSTER FAILOVER``; longer outages (a primary that died, a slot still
#: migrating) fail the poll, which the next cycle repeats (nothing it claimed was written).
RETRIES = 4
_TRANSIENT = [
    redis.ConnectionError,
    redis.TimeoutError,
    redis.exceptions.ClusterDownError,
    redis.exceptions.TryAgainError,
]


class _FollowingConnection(SentinelManagedConnection):
    """A connection to the primary that asks the sentinels where it is whenever it (re)connects.

    redis-py's own asks only when a connection is taken from the pool; one that drops mid-command (its primary
    died) reconnects to the address it had, so every retry of that command would hit the dead node."""

    async def connect_check_health(self, check_health: bool = True, retry_socket_connect: bool = True) -> None:
        if not self.is_connected and self.connection_pool.is_master:
            self.host, self.port = await self.connection_pool.get_master_address()
        await super().connect_check_health(check_health=check_health, retry_socket_connect=retry_socket_connect)


class _FollowingSSLConnection(_FollowingConnection, SentinelManagedSSLConnection):
    """The same over TLS (``rediss://``)."""


def _retry() -> Retry:
    return Retry(ExponentialBackoff(cap=1.0, base=0.1), retries=RETRIES)


def cluster_client(url: str, config: RedisConfig) -> aioredis.Redis:
    """A ``RedisCluster`` seeded with the node ``url`` names. Raises ``ValueError`` for a URL it cannot use."""
    if not url.startswith(("redis://", "rediss://")):
        raise ValueError("mode cluster needs a redis:// or rediss:// URL naming one of the cluster's nodes")
    client = RedisCluster.from_url(
        url,
        max_connections=CLUSTER_CONNECTIONS_PER_NODE,
        socket_timeout=config.socket_timeout_s,
        socket_connect_timeout=config.connect_timeout_s,
        retry=_retry(),
        retry_on_error=_TRANSIENT,
        decode_responses=False,
    )
    # Not a subclass of ``Redis``, but the commands the monitor sends behave alike on one slot (see above).
    return cast(aioredis.Redis, client)


def sentinel_client(url: str, config: RedisConfig) -> aioredis.Redis:
    """A client of the primary the sentinels name ``config.service_name``; ``url`` (a redis:// URL, else unused)
    gives the primary's user, password and database."""
    if config.service_name is None or not config.sentinels:
        raise ValueError("mode sentinel needs redis.sentinels and redis.service_name")
    credentials: dict[str, Any] = {"connection_class": _FollowingConnection}
    if url.startswith(("redis://", "rediss://")):
        parts = urlsplit(url)
        if parts.username:
            credentials["username"] = unquote(parts.username)
        if parts.password:
            credentials["password"] = unquote(parts.password)
        if parts.path.strip("/"):
            credentials["db"] = int(parts.path.strip("/"))
        if parts.scheme == "rediss":
            credentials["connection_class"] = _FollowingSSLConnection
    timeouts = {"socket_timeout": config.socket_timeout_s, "socket_connect_timeout": config.connect_timeout_s}
    sentinel_kwargs: dict[str, Any] = dict(timeouts)
    if config.sentinel_password:
        sentinel_kwargs["password"] = config.sentinel_password
    sentinel = Sentinel([_address(s) for s in config.sentinels], min_other_sentinels=0, sentinel_kwargs=sentinel_kwargs)
    return sentinel.master_for(
        config.service_name,
        redis_class=aioredis.Redis,
        connection_pool_class=SentinelConnectionPool,
        retry=_retry(),
        retry_on_error=_TRANSIENT,
        health_check_interval=15,
        decode_responses=False,
        **timeouts,
        **credentials,
    )


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


async def primary_address(client: aioredis.Redis, key: str) -> str:
    """``host:port`` (or the socket's path) of the primary that takes the writes of ``key``: the node owning its
    slot on a cluster, the one the sentinels name, else the server connected to. Raises ``RedisError``."""
    target: object = client
    if isinstance(target, RedisCluster):
        node = target.get_node_from_key(key)
        if node is None:
            raise redis.exceptions.ClusterDownError(f"no node serves the slot of {key}")
        return f"{node.host}:{node.port}"
    pool = client.connection_pool
    if isinstance(pool, SentinelConnectionPool):
        host, port = await pool.get_master_address()
        return f"{host}:{port}"
    kwargs = pool.connection_kwargs
    if "path" in kwargs:
        return str(kwargs["path"])
    return f"{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}"


async def close_sentinels(client: aioredis.Redis) -> None:
    """Close the connections to the sentinels of a client ``sentinel_client`` made (closing the client closes only
    its primary's); nothing for other clients."""
    pool = getattr(client, "connection_pool", None)
    if isinstance(pool, SentinelConnectionPool):
        for sentinel in pool.sentinel_manager.sentinels:
            await sentinel.aclose()


async def slot_migrating(client: aioredis.Redis, key: str) -> bool:
    """On a cluster, whether the slot of ``key`` is moving between nodes (``CLUSTER SETSLOT ... MIGRATING``): until
    it has moved, a script whose keys are partly moved fails with ``TRYAGAIN``. False for other clients."""
    target: object = client
    if not isinstance(target, RedisCluster):
        return False
    node = target.get_node_from_key(key)
    if node is None:
        raise redis.exceptions.ClusterDownError(f"no node serves the slot of {key}")
    slot = str(target.keyslot(key))
    nodes: Any = await target.execute_command("CLUSTER NODES", target_nodes=node)
    return any(m.get("slot") == slot for info in nodes.values() for m in info.get("migrations", []))
