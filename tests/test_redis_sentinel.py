"""``redis.mode: sentinel``: a daemon on a primary/replica pair watched by three sentinels, fed a stream of
real-style articles; the primary is SIGKILLed mid-stream. ``/readyz`` turns 503 while the monitor cannot write and
200 once it writes to the promoted replica; every event is alerted, no article under two events, the primary gauge
names the new node, and the daemon exits cleanly on SIGTERM.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import aiohttp
import pytest

from monitor.config import RedisConfig
from monitor.storage.batch import LuaScript
from monitor.storage.connection import close, connect
from monitor.storage.keys import Keys
from monitor.storage.readiness import redis_primary
from monitor.storage.replication import ReplicaWait, run_acknowledged
from monitor.storage.topology import primary_address
from tests.support.daemons import start_daemon, stop_daemon, wait_for_log
from tests.support.feedserver import FeedServer
from tests.support.redis_cluster_servers import wait_until
from tests.support.redis_cluster_stream import (
    EVENTS,
    SECRET,
    ArticleStream,
    ReadyWatch,
    events_by_article,
    write_config,
)
from tests.support.redis_sentinel import SERVICE, SentinelGroup, redis_sentinel
from tests.support.webhook_receiver import WebhookReceiver

__all__ = ["redis_sentinel"]  # the session fixture, used below

pytestmark = pytest.mark.sentinel
STEPS = 6
CLAIM = LuaScript("return redis.call('SET', KEYS[1], ARGV[1])")


async def _primary_gauge(port: int) -> list[str]:
    async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}/metrics") as reply:
        text = await reply.text()
    return [line for line in text.splitlines() if line.startswith("monitor_redis_primary{")]


async def test_primary_address_is_the_one_the_sentinels_name(redis_sentinel: SentinelGroup) -> None:
    config = RedisConfig(mode="sentinel", sentinels=redis_sentinel.addresses, service_name=SERVICE)
    client = connect("embedded", config)
    try:
        await client.ping()
        assert await primary_address(client, Keys().outbox) == redis_sentinel.primary().address
    finally:
        await close(client)


@pytest.mark.timeout(150)
async def test_stream_through_a_primary_killed_mid_stream(redis_sentinel: SentinelGroup, tmp_path: Path) -> None:
    redis_sentinel.replica()  # a replica to promote (one killed by an earlier test comes back as one)
    old = redis_sentinel.primary()
    old.client().flushall()
    log = tmp_path / "daemon.log"
    settings = {"mode": "sentinel", "sentinels": redis_sentinel.addresses, "service_name": SERVICE}
    async with FeedServer() as feeds, WebhookReceiver(SECRET) as rx:
        stream = ArticleStream(feeds)
        daemon = await start_daemon(
            write_config(tmp_path / "monitor.yaml", feeds, rx.url, settings), log, drop=("REDIS_URL",)
        )
        watch: ReadyWatch | None = None
        try:
            port = (await wait_for_log(log, "metrics_serving", timeout_s=30))["port"]
            await wait_for_log(log, "monitor_started", timeout_s=30)
            watch = ReadyWatch(port)
            watch.start()
            stream.reveal(2, of=STEPS)
            await rx.wait_for(2, timeout_s=30)
            assert await _primary_gauge(port) == [f'monitor_redis_primary{{address="{old.address}"}} 1.0']
            stream.reveal(4, of=STEPS)
            killed = time.monotonic()
            old.kill()
            down = await watch.until(503, after=killed, timeout_s=20)
            up = await watch.until(200, after=down, timeout_s=40)
            stream.reveal(STEPS, of=STEPS)
            await stream.until_all_alerted(rx.alerts)
            gauge = await _primary_gauge(port)
        finally:
            if watch is not None:
                await watch.stop()
            code = await stop_daemon(daemon)
    text = log.read_text()
    assert code == 0, text[-3000:]
    assert "Traceback" not in text, [line for line in text.splitlines() if "Traceback" in line][:2]
    assert stream.events_alerted(rx.alerts) == EVENTS
    events_of = events_by_article(rx.alerts)
    assert all(len(ids) == 1 for ids in events_of.values()), events_of
    new = redis_sentinel.primary()
    assert new is not old
    assert f'monitor_redis_primary{{address="{new.address}"}} 1.0' in gauge, gauge
    print(
        f"\nsentinel: 503 {down - killed:.1f}s after the SIGKILL, 200 again {up - killed:.1f}s after it; "
        f"{len(rx.alerts)} alerts for {len(EVENTS)} events"
    )


@pytest.mark.timeout(60)
async def test_wait_counts_the_replica_that_copied_the_write_and_the_copy_survives_the_primary(
    redis_sentinel: SentinelGroup,
) -> None:
    replica = redis_sentinel.replica()
    old = redis_sentinel.primary()
    client = connect("embedded", RedisConfig(mode="sentinel", sentinels=redis_sentinel.addresses, service_name=SERVICE))
    claim = Keys(namespace="wait-test").seen("article-1")
    try:
        assert (await run_acknowledged(client, CLAIM, [claim], ["1"], 1, 5000)).replicas == 1
        # A stalled replica copies nothing: WAIT on the connection that wrote says so (one on another connection,
        # which wrote nothing, would count the replica at once).
        os.kill(replica.process.pid, signal.SIGSTOP)
        try:
            began = time.monotonic()
            stalled = await run_acknowledged(client, CLAIM, [claim + "-b"], ["1"], 1, 300)
            assert stalled.replicas == 0 and time.monotonic() - began >= 0.25
        finally:
            os.kill(replica.process.pid, signal.SIGCONT)
        old.kill()
        wait_until(lambda: redis_sentinel.named_by_all(replica), 30, "the sentinels to promote the replica")
        # The acknowledged claim is on the new primary: the article is not taken for a new one (no repeat alert).
        assert await client.get(claim) == b"1"
        assert await redis_primary(client, Keys()) == replica.address
    finally:
        await close(client)


def test_a_short_wait_pauses_waiting_for_a_while() -> None:
    wait = ReplicaWait(1, 100, pause_s=30)
    assert wait.wanted() == 1
    assert not wait.record(None) and not wait.record(1) and wait.wanted() == 1
    assert wait.record(0)
    assert wait.wanted() == 0
    assert RedisConfig(mode="sentinel", sentinels=["h:1"], service_name="s").replicas_to_wait == 1
    assert RedisConfig().replicas_to_wait == 0
    assert RedisConfig(mode="cluster", wait_replicas=0).replicas_to_wait == 0
