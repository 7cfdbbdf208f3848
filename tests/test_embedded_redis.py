"""The embedded server's append-only file: one that is mostly history (data written and deleted again, as every
replay does) is rewritten when the server starts, so starts stay quick."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import redis

from monitor.storage.connection import EmbeddedRedis


def _written_then_deleted(url: str, keys: int) -> None:
    client = redis.Redis.from_url(url)
    try:
        pipe = client.pipeline(transaction=False)
        for i in range(keys):
            pipe.set(f"k:{i}", "x" * 40)
            if i % 10_000 == 9_999:
                pipe.execute()
        pipe.execute()
        for start in range(0, keys, 10_000):
            client.delete(*(f"k:{i}" for i in range(start, min(keys, start + 10_000))))
    finally:
        client.close()


@pytest.mark.timeout(90)
def test_a_file_that_is_mostly_history_is_rewritten_at_start(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path / "redis", compact_above_bytes=1_000_000)
    url = server.start()
    try:
        _written_then_deleted(url, 60_000)
        client = redis.Redis.from_url(url)
        client.set("kept", "value")
        client.close()
    finally:
        server.stop()
    aof = tmp_path / "redis" / "appendonly.aof"
    grown = aof.stat().st_size
    assert grown > 3_000_000, grown
    server = EmbeddedRedis(tmp_path / "redis", compact_above_bytes=1_000_000)
    url = server.start()
    try:
        deadline = time.monotonic() + 30
        while aof.stat().st_size > 100_000 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert aof.stat().st_size < 100_000, (grown, aof.stat().st_size)
        client = redis.Redis.from_url(url)
        assert client.get("kept") == b"value"
        assert client.dbsize() == 1
        client.close()
    finally:
        server.stop()
