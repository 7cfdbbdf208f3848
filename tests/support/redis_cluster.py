"""A Redis Cluster of three primaries and three replicas on loopback, built with redis-py commands (no redis-cli):
CLUSTER MEET, ADDSLOTS and REPLICATE; and the two faults the cluster tests inject: a live slot migration and a
``CLUSTER FAILOVER``.

The ``redis_cluster`` fixture (session scope, imported by the test modules that use it) starts it once.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.redis_cluster_servers import ServerProcess, free_port, start_server, stop_all, wait_until

__all__ = ["Cluster", "redis_cluster", "start_cluster"]

SLOTS = 16384


@dataclass
class Cluster:
    servers: list[ServerProcess]

    @property
    def url(self) -> str:
        """A URL naming one node, as an operator would give it."""
        return f"redis://{self.servers[0].address}/0"

    def ids(self) -> dict[int, str]:
        return {s.port: s.client().cluster("myid").decode() for s in self.servers}

    def nodes(self) -> list[dict[str, str]]:
        """CLUSTER NODES as seen by the first live node: id, address, flags, master id."""
        live = next(s for s in self.servers if s.alive())
        parsed = live.client().execute_command("CLUSTER NODES")  # redis-py parses it: address -> fields
        return [
            {"id": f["node_id"], "address": a.split("@")[0], "flags": f["flags"], "master": f["master_id"]}
            for a, f in parsed.items()
        ]

    def server(self, address: str) -> ServerProcess:
        return next(s for s in self.servers if s.address == address)

    def owner(self, slot: int, *, seen_by: ServerProcess | None = None) -> ServerProcess:
        """The primary serving ``slot``, by CLUSTER SLOTS (of the first live node, or ``seen_by``)."""
        live = seen_by or next(s for s in self.servers if s.alive())
        for start, end, primary, *_ in live.client().execute_command("CLUSTER SLOTS"):
            if start <= slot <= end:
                return next(s for s in self.servers if s.port == int(primary[1]))
        raise AssertionError(f"no primary serves slot {slot}")

    def replica_of(self, primary: ServerProcess) -> ServerProcess:
        pid = primary.client().cluster("myid").decode()
        row = next(r for r in self.nodes() if r["master"] == pid and "slave" in r["flags"])
        return self.server(row["address"])

    def healthy(self) -> bool:
        return all(s.client().cluster("info")["cluster_state"] == "ok" for s in self.servers if s.alive())

    def begin_migration(self, slot: int, target: ServerProcess) -> ServerProcess:
        """Mark ``slot`` as moving from its owner (returned) to ``target``, as ``redis-cli --cluster reshard`` does:
        from here a script whose keys are partly moved fails with TRYAGAIN, one on keys not there yet gets ASK."""
        source = self.owner(slot)
        sid, tid = source.client().cluster("myid").decode(), target.client().cluster("myid").decode()
        target.client().execute_command("CLUSTER SETSLOT", slot, "IMPORTING", sid)
        source.client().execute_command("CLUSTER SETSLOT", slot, "MIGRATING", tid)
        return source

    def move_keys(self, slot: int, source: ServerProcess, target: ServerProcess, *, limit: int = 10**9) -> int:
        """MIGRATE up to ``limit`` keys of ``slot``, five at a time; returns how many moved."""
        moved = 0
        while moved < limit:
            keys = source.client().execute_command("CLUSTER GETKEYSINSLOT", slot, min(5, limit - moved))
            if not keys:
                break
            source.client().execute_command("MIGRATE", "127.0.0.1", target.port, "", 0, 5000, "REPLACE", "KEYS", *keys)
            moved += len(keys)
        return moved

    def finish_migration(self, slot: int, target: ServerProcess) -> None:
        tid = target.client().cluster("myid").decode()
        for s in self.servers:
            if s.alive() and s.client().info("replication")["role"] == "master":
                s.client().execute_command("CLUSTER SETSLOT", slot, "NODE", tid)
        wait_until(self.healthy, 20, "the cluster to settle after the migration")

    def failover(self, primary: ServerProcess) -> ServerProcess:
        """``CLUSTER FAILOVER`` on ``primary``'s replica; returns the promoted node once every node says it serves
        ``primary``'s slots."""
        replica = self.replica_of(primary)
        served = primary.client().execute_command("CLUSTER SLOTS")
        slot = next(int(r[0]) for r in served if int(r[2][1]) == primary.port)
        replica.client().execute_command("CLUSTER FAILOVER")
        wait_until(
            lambda: all(self.owner(slot, seen_by=s) is replica for s in self.servers if s.alive()),
            20,
            "every node to see the replica promoted",
        )
        wait_until(self.healthy, 20, "the cluster to settle after the failover")
        return replica


def start_cluster(directory: Path) -> Cluster:
    """Three primaries with a third of the slots each, one replica of each, all agreeing the cluster is ok."""
    servers: list[ServerProcess] = []
    try:
        for i in range(6):
            servers.append(
                start_server(
                    directory / f"node{i}",
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    str(directory / f"node{i}" / "nodes.conf"),
                    "--cluster-node-timeout",
                    "2000",
                    "--appendonly",
                    "yes",
                    "--maxmemory-policy",
                    "noeviction",
                    port=free_port(bus=True),
                )
            )
        first = servers[0].client()
        for s in servers[1:]:
            first.execute_command("CLUSTER MEET", "127.0.0.1", s.port)
        third = SLOTS // 3
        ranges = [(0, third), (third, 2 * third), (2 * third, SLOTS)]
        for s, (start, end) in zip(servers[:3], ranges, strict=True):
            s.client().execute_command("CLUSTER ADDSLOTS", *range(start, end))
        wait_until(lambda: all(len(s.client().cluster("nodes")) == 6 for s in servers), 30, "all nodes to meet")
        ids = [s.client().cluster("myid").decode() for s in servers]
        for replica, master_id in zip(servers[3:], ids[:3], strict=True):
            replica.client().execute_command("CLUSTER REPLICATE", master_id)
        cluster = Cluster(servers)
        wait_until(cluster.healthy, 30, "cluster_state:ok on every node")
        wait_until(
            lambda: all(s.client().info("replication")["master_link_status"] == "up" for s in servers[3:]),
            30,
            "the replicas to sync",
        )
        return cluster
    except BaseException:
        stop_all(servers)
        raise


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    cluster = start_cluster(tmp_path_factory.mktemp("cluster"))
    try:
        yield cluster
    finally:
        stop_all(cluster.servers)
