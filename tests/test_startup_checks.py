"""The start-up check of Redis, against real throwaway servers: safe, unsafe (evicting, not persisting), and one
that refuses CONFIG like many managed services. ``monitor run`` warns about an unsafe Redis and goes on, or exits 1
with a clear message when ``redis.require_safe`` is set."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from structlog.testing import capture_logs

from monitor.config import RedisConfig
from monitor.core.errors import StartupError
from monitor.storage.connection import connect, embedded_server_binary
from monitor.storage.safety import check_redis_safety, inspect_redis
from tests.support.daemons import start_daemon, stop_daemon, wait_for_log

ROOT = Path(__file__).resolve().parents[1]
SAFE = ("--maxmemory-policy", "noeviction", "--appendonly", "yes", "--save", "")
UNSAFE = ("--maxmemory-policy", "allkeys-lru", "--appendonly", "no", "--save", "")
NO_CONFIG = ("--maxmemory-policy", "allkeys-lru", "--appendonly", "no", "--rename-command", "CONFIG", "")


def serve(folder: Path, *settings: str) -> Iterator[str]:
    """A redis-server on a Unix socket in ``folder`` with these settings; yields its URL."""
    sock = folder / "redis.sock"
    args = [embedded_server_binary(), "--port", "0", "--unixsocket", str(sock), "--dir", str(folder), *settings]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                if redis.Redis(unix_socket_path=str(sock), socket_timeout=1).ping():
                    break
            except (redis.RedisError, OSError):
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "throwaway redis-server did not start"
            time.sleep(0.02)
        yield f"unix://{sock}"
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def safe_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from serve(tmp_path_factory.mktemp("safe"), *SAFE)


@pytest.fixture
def unsafe_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from serve(tmp_path_factory.mktemp("unsafe"), *UNSAFE)


@pytest.fixture
def managed_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from serve(tmp_path_factory.mktemp("managed"), *NO_CONFIG)


async def test_a_safe_redis_passes_quietly(safe_redis: str) -> None:
    client = connect(safe_redis, RedisConfig())
    try:
        with capture_logs() as logs:
            found = await check_redis_safety(client, require_safe=True)
    finally:
        await client.aclose()
    assert found.safe and found.unchecked == [] and (found.policy, found.aof) == ("noeviction", True)
    assert [e["event"] for e in logs] == ["redis_checked"]


async def test_an_evicting_redis_without_persistence_is_unsafe(unsafe_redis: str) -> None:
    client = connect(unsafe_redis, RedisConfig())
    try:
        with capture_logs() as logs:
            found = await check_redis_safety(client, require_safe=False)
        with pytest.raises(StartupError, match="allkeys-lru"):
            await check_redis_safety(client, require_safe=True)
    finally:
        await client.aclose()
    assert (found.policy, found.aof, found.save) == ("allkeys-lru", False, "")
    assert len(found.problems) == 2
    assert "maxmemory-policy is allkeys-lru" in found.problems[0] and "no persistence" in found.problems[1]
    assert [(e["event"], e["log_level"]) for e in logs] == [("redis_unsafe", "warning")]


async def test_a_redis_that_refuses_config_is_reported_as_unchecked(managed_redis: str) -> None:
    client = connect(managed_redis, RedisConfig())
    try:
        found = await inspect_redis(client)
    finally:
        await client.aclose()
    assert found.policy == "allkeys-lru"  # from INFO memory, which managed services allow
    assert found.aof is False and found.save is None
    assert len(found.unchecked) == 1 and found.unchecked[0].startswith("RDB save schedule")


def config(tmp_path: Path, *, require_safe: bool) -> Path:
    path = tmp_path / f"monitor-{require_safe}.yaml"
    path.write_text(f"""\
rules: [{ROOT / "rules"}]
redis: {{require_safe: {str(require_safe).lower()}}}
metrics: {{port: 0}}
log: {{format: json}}
""")
    return path


@pytest.mark.timeout(40)
async def test_monitor_run_refuses_an_unsafe_redis_only_when_asked(unsafe_redis: str, tmp_path: Path) -> None:
    strict_log, lax_log = tmp_path / "strict.log", tmp_path / "lax.log"
    strict = await start_daemon(config(tmp_path, require_safe=True), strict_log, REDIS_URL=unsafe_redis)
    lax = await start_daemon(config(tmp_path, require_safe=False), lax_log, REDIS_URL=unsafe_redis)
    try:
        assert await asyncio.wait_for(strict.wait(), 20) == 1
        await wait_for_log(lax_log, "redis_unsafe")
        await wait_for_log(lax_log, "monitor_started")  # warned, and running
    finally:
        code = await stop_daemon(lax)
    assert code == 0
    message = strict_log.read_text()
    assert "monitor: refusing to start: the Redis server is not safe" in message
    assert "redis.require_safe: false" in message and "monitor_started" not in message
