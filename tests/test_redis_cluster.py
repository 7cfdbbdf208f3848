"""``redis.mode: cluster``: a daemon on a 3-primary, 3-replica Redis Cluster the suite starts, fed a stream of
real-style articles while the monitor's slot migrates to another primary key by key and then its primary is
replaced by ``CLUSTER FAILOVER``. Every event is alerted, no article under two events, readiness ends 200, the
daemon exits cleanly; and every key it wrote is in the one slot of its hash tag.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import signal
import time
from pathlib import Path

import pytest
from redis.cluster import key_slot

from monitor.config import RedisConfig
from monitor.storage.batch import LuaScript
from monitor.storage.connection import close, connect
from monitor.storage.keys import Keys
from monitor.storage.replication import run_acknowledged
from monitor.storage.topology import primary_address
from tests.support.daemons import start_daemon, stop_daemon, wait_for_log
from tests.support.feedserver import FeedServer
from tests.support.redis_cluster import Cluster, redis_cluster
from tests.support.redis_cluster_stream import (
    EVENTS,
    SECRET,
    ArticleStream,
    ReadyWatch,
    events_by_article,
    write_config,
)
from tests.support.webhook_receiver import WebhookReceiver

__all__ = ["redis_cluster"]  # the session fixture, used below

pytestmark = pytest.mark.cluster
SLOT = key_slot(Keys().outbox.encode())
STEPS = 6
CLAIM = LuaScript("return redis.call('SET', KEYS[1], ARGV[1])")


def _keys_by_slot(cluster: Cluster) -> dict[int, int]:
    slots: dict[int, int] = {}
    for server in cluster.servers:
        if server.alive() and server.client().info("replication")["role"] == "master":
            for key in server.client().scan_iter(count=500):
                slots[key_slot(key)] = slots.get(key_slot(key), 0) + 1
    return slots


@pytest.mark.timeout(150)
async def test_stream_through_a_slot_migration_and_a_failover(redis_cluster: Cluster, tmp_path: Path) -> None:
    for server in redis_cluster.servers:
        if server.client().info("replication")["role"] == "master":
            server.client().flushall()
    log = tmp_path / "daemon.log"
    async with FeedServer() as feeds, WebhookReceiver(SECRET) as rx:
        stream = ArticleStream(feeds)
        config = write_config(tmp_path / "monitor.yaml", feeds, rx.url, {"url": redis_cluster.url, "mode": "cluster"})
        daemon = await start_daemon(config, log, drop=("REDIS_URL",))
        watch: ReadyWatch | None = None
        try:
            port = (await wait_for_log(log, "metrics_serving", timeout_s=30))["port"]
            await wait_for_log(log, "monitor_started", timeout_s=30)
            watch = ReadyWatch(port)
            watch.start()
            stream.reveal(1, of=STEPS)
            await rx.wait_for(1, timeout_s=30)
            # Live migration: half the slot's keys move, the stream goes on, readiness must say the monitor cannot
            # write (its scripts fail with TRYAGAIN meanwhile); then the rest move and it must recover.
            target = next(s for s in redis_cluster.servers[:3] if s is not redis_cluster.owner(SLOT))
            began = time.monotonic()
            source = await asyncio.to_thread(redis_cluster.begin_migration, SLOT, target)
            total = await asyncio.to_thread(redis_cluster.move_keys, SLOT, source, target, limit=10)
            stream.reveal(3, of=STEPS)
            down = await watch.until(503, after=began, timeout_s=20)
            total += await asyncio.to_thread(redis_cluster.move_keys, SLOT, source, target)
            await asyncio.to_thread(redis_cluster.finish_migration, SLOT, target)
            moved = time.monotonic()
            up = await watch.until(200, after=moved, timeout_s=30)
            assert redis_cluster.owner(SLOT) is target and total > 10
            stream.reveal(4, of=STEPS)
            switched = time.monotonic()
            promoted = await asyncio.to_thread(redis_cluster.failover, target)
            failover_s = time.monotonic() - switched
            assert redis_cluster.owner(SLOT) is promoted
            stream.reveal(STEPS, of=STEPS)
            await watch.until(200, after=time.monotonic(), timeout_s=30)
            await stream.until_all_alerted(rx.alerts)
        finally:
            if watch is not None:
                await watch.stop()
            code = await stop_daemon(daemon)
    text = log.read_text()
    assert code == 0, text[-3000:]
    assert "Traceback" not in text, [line for line in text.splitlines() if "Traceback" in line][:2]
    assert stream.events_alerted(rx.alerts) == EVENTS
    # No article went out under two events: a claim lost in the failover would have made a second one.
    events_of = events_by_article(rx.alerts)
    assert all(len(ids) == 1 for ids in events_of.values()), events_of
    assert not stream.negatives() & set(events_of)
    print(
        f"\ncluster: {total} keys migrated; 503 {down - began:.1f}s into the migration, 200 {up - moved:.1f}s after it;"
        f" CLUSTER FAILOVER took {failover_s:.1f}s, readiness from then on {_summary(watch, switched)};"
        f" {len(rx.alerts)} alerts"
    )
    # Every key the daemon wrote (claims, events, outbox, leases, probes, validators...) is in the one slot.
    slots = _keys_by_slot(redis_cluster)
    assert list(slots) == [SLOT], slots
    assert sum(slots.values()) > 50


def _summary(watch: ReadyWatch | None, since: float) -> str:
    statuses = [s for t, s in watch.seen if t >= since] if watch else []
    return f"{statuses.count(200)}x200 {statuses.count(503)}x503"


async def test_primary_address_names_the_node_owning_the_slot(redis_cluster: Cluster) -> None:
    client = connect(redis_cluster.url, RedisConfig(mode="cluster", url=redis_cluster.url))
    try:
        await client.set(Keys().outbox + ":probe", "1")
        assert await primary_address(client, Keys().outbox) == redis_cluster.owner(SLOT).address
    finally:
        await close(client)


def test_every_key_the_monitor_names_carries_the_hash_tag() -> None:
    """Beside the full run above (which finds what one run wrote), every key ``Keys`` can name, whatever it names."""
    keys = Keys()
    named = []
    for name in dir(Keys):
        if name.startswith("_") or name == "namespace":
            continue
        member = getattr(keys, name)
        if callable(member):
            arity = len(inspect.signature(member).parameters)
            named.append(member(*[f"arg-{i}:{{other}}" for i in range(arity)]))
        else:
            named.append(member)
    assert len(named) >= 20
    assert {key_slot(k.encode()) for k in named} == {SLOT}, named


async def test_wait_counts_the_replica_of_the_node_that_took_the_write(redis_cluster: Cluster) -> None:
    owner = redis_cluster.owner(SLOT)
    replica = redis_cluster.replica_of(owner)
    client = connect(redis_cluster.url, RedisConfig(mode="cluster", url=redis_cluster.url))
    claim = Keys().seen("wait-test")
    try:
        assert (await run_acknowledged(client, CLAIM, [claim], ["1"], 1, 5000)).replicas == 1
        # With that replica stalled, no replica has the write: a WAIT sent to every primary, or on a connection
        # that wrote nothing, would count the other primaries' replicas instead.
        os.kill(replica.process.pid, signal.SIGSTOP)
        try:
            assert (await run_acknowledged(client, CLAIM, [claim], ["2"], 1, 300)).replicas == 0
        finally:
            os.kill(replica.process.pid, signal.SIGCONT)
    finally:
        await close(client)
