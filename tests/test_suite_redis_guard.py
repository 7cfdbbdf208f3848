"""The suite never flushes a Redis it did not start that holds data: a ``REDIS_URL`` whose database holds keys is
refused (exit code 4, nothing flushed) unless ``MONITOR_TEST_REDIS_FLUSH=1``. Run as a developer would, with
pytest in a subprocess pointed at the suite's own Redis, holding someone else's key."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis as sync_redis

from tests.support.redis_guard import FLUSH_OPT_IN, refusal

ROOT = Path(__file__).resolve().parents[1]
#: A quick test that uses the ``redis`` fixture (and so flushes the database first).
NODE = "tests/test_storage_outbox.py::test_read_new_then_own_pending_entries"


@pytest.fixture
def client(redis_url: str) -> Iterator[sync_redis.Redis]:
    connection = sync_redis.Redis.from_url(redis_url)
    connection.flushdb()
    try:
        yield connection
    finally:
        connection.close()


def run_suite(redis_url: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", FLUSH_OPT_IN)}
    environ.update(REDIS_URL=redis_url, **env)
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", NODE]
    return subprocess.run(command, cwd=ROOT, env=environ, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.timeout(240)
def test_a_redis_url_that_holds_data_is_refused_and_left_alone(client: sync_redis.Redis, redis_url: str) -> None:
    client.set("someone-elses:key", "precious")
    refused = run_suite(redis_url)
    output = refused.stdout + refused.stderr
    assert refused.returncode == pytest.ExitCode.USAGE_ERROR, output
    assert "holds 1 key(s)" in output and f"{FLUSH_OPT_IN}=1" in output and "0 passed" not in output
    assert client.get("someone-elses:key") == b"precious"  # not flushed

    allowed = run_suite(redis_url, **{FLUSH_OPT_IN: "1"})
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
    assert "1 passed" in allowed.stdout
    assert client.exists("someone-elses:key") == 0  # flushed, as the developer allowed


def test_an_empty_database_or_an_opt_in_is_accepted(client: sync_redis.Redis, redis_url: str) -> None:
    assert refusal(redis_url, {}) is None  # empty: nothing to lose
    client.set("someone-elses:key", "precious")
    reason = refusal(redis_url, {})
    assert reason is not None and "holds 1 key(s)" in reason and redis_url not in reason  # a URL may hold a password
    assert refusal(redis_url, {FLUSH_OPT_IN: "1"}) is None
    assert refusal(redis_url, {FLUSH_OPT_IN: "yes"}) is not None  # only 1 says so
