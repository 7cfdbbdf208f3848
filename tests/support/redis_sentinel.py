"""A Redis primary, its replica and three sentinels watching them, on loopback; the sentinels fail over two seconds
after the primary stops answering.

The ``redis_sentinel`` fixture (session scope, imported by the test modules that use it) starts the group once.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.redis_cluster_servers import ServerProcess, free_port, start_server, stop_all, wait_until

__all__ = ["SERVICE", "SentinelGroup", "redis_sentinel", "start_sentinel_group"]

SERVICE = "monitor-primary"
#: How long a primary may stay silent before the sentinels call it down (then a failover follows).
DOWN_AFTER_MS = 2000
DURABLE = ("--appendonly", "yes", "--maxmemory-policy", "noeviction")


@dataclass
class SentinelGroup:
    data: list[ServerProcess]  # the first one starts as the primary
    sentinels: list[ServerProcess]

    @property
    def addresses(self) -> list[str]:
        return [s.address for s in self.sentinels]

    def primary(self) -> ServerProcess:
        """The node the sentinels name now."""
        port = _named_port(self.sentinels[0])
        return next(s for s in self.data if s.port == port)

    def named_by_all(self, server: ServerProcess) -> bool:
        """Every sentinel names ``server`` the primary."""
        return all(_named_port(s) == server.port for s in self.sentinels)

    def replica(self) -> ServerProcess:
        """A live replica of the primary, restarting a node killed earlier as one (in its old directory, port)."""
        primary = self.primary()
        for i, server in enumerate(self.data):
            if not server.alive():
                server.stop()
                self.data[i] = start_server(
                    server.directory, *DURABLE, "--replicaof", "127.0.0.1", str(primary.port), port=server.port
                )
        replica = next(s for s in self.data if s is not primary)
        wait_until(lambda: replica.client().info("replication")["master_link_status"] == "up", 30, "replication")
        return replica


def _named_port(sentinel: ServerProcess) -> int:
    reply: Any = sentinel.client().sentinel_get_master_addr_by_name(SERVICE)
    return int(reply[1])


def _watching(sentinel: ServerProcess) -> bool:
    """The sentinel knows the two others and the replica."""
    state: Any = sentinel.client().sentinel_master(SERVICE)
    return int(state["num-other-sentinels"]) == 2 and int(state["num-slaves"]) == 1


def _sentinel_conf(primary_port: int) -> str:
    return (
        f"sentinel monitor {SERVICE} 127.0.0.1 {primary_port} 2\n"
        f"sentinel down-after-milliseconds {SERVICE} {DOWN_AFTER_MS}\n"
        f"sentinel failover-timeout {SERVICE} 10000\n"
        f"sentinel parallel-syncs {SERVICE} 1\n"
    )


def start_sentinel_group(directory: Path) -> SentinelGroup:
    servers: list[ServerProcess] = []
    try:
        primary = start_server(directory / "primary", *DURABLE)
        servers.append(primary)
        replica = start_server(directory / "replica", *DURABLE, "--replicaof", "127.0.0.1", str(primary.port))
        servers.append(replica)
        wait_until(lambda: replica.client().info("replication")["master_link_status"] == "up", 30, "replication")
        sentinels = []
        for i in range(3):
            sentinel = start_server(
                directory / f"sentinel{i}", "--sentinel", port=free_port(), config=_sentinel_conf(primary.port)
            )
            servers.append(sentinel)
            sentinels.append(sentinel)
        group = SentinelGroup([primary, replica], sentinels)
        wait_until(
            lambda: all(_watching(s) for s in sentinels),
            30,
            "the sentinels to find each other and the replica",
        )
        return group
    except BaseException:
        stop_all(servers)
        raise


@pytest.fixture(scope="session")
def redis_sentinel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelGroup]:
    group = start_sentinel_group(tmp_path_factory.mktemp("sentinel"))
    try:
        yield group
    finally:
        stop_all([*group.sentinels, *group.data])
