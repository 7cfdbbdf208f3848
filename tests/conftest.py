"""Shared fixtures: one real Redis server per test session (the embedded one, or ``REDIS_URL``), flushed per test.

Every test that uses Redis starts with ``FLUSHDB``. The embedded server is the suite's own; a ``REDIS_URL``
database that already holds keys is refused (the session stops with exit code 4 before anything is flushed)
unless ``MONITOR_TEST_REDIS_FLUSH=1`` says its data may be deleted (``tests.support.redis_guard``).

The suite runs under pytest-socket's ``--allow-hosts`` (see pyproject.toml): any connection to an address other
than loopback fails the test instead of leaving the machine.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
import redis.asyncio as aioredis
import structlog

from monitor.config import RedisConfig
from monitor.storage.connection import EmbeddedRedis, connect
from tests.support.redis_guard import refusal

SHARED = Path(__file__).resolve().parents[2] / "shared"
CORPUS = SHARED / "corpus"


@pytest.fixture(scope="session", autouse=True)
def _rule_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Offline commands run by tests keep compiled rule packs in the session's temporary folder, not the user's."""
    previous = os.environ.get("MONITOR_CACHE_DIR")
    os.environ["MONITOR_CACHE_DIR"] = str(tmp_path_factory.mktemp("rule-cache"))
    yield
    if previous is None:
        os.environ.pop("MONITOR_CACHE_DIR", None)
    else:
        os.environ["MONITOR_CACHE_DIR"] = previous


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    external = os.environ.get("REDIS_URL")
    if external:
        refused = refusal(external, os.environ)
        if refused:
            pytest.exit(refused, returncode=pytest.ExitCode.USAGE_ERROR)
        yield external
        return
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"))
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = connect(redis_url, RedisConfig())
    await client.flushdb()
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """A plain aiohttp session (no private-network guard) for tests that talk to loopback servers directly."""
    async with aiohttp.ClientSession() as client:
        yield client


@pytest.fixture
def corpus() -> Path:
    """The shared corpus; tests that need it skip cleanly in a clone without ``../shared``."""
    if not CORPUS.is_dir():
        pytest.skip("../shared/corpus is not present")
    return CORPUS


@pytest.fixture(autouse=True)
def _logging_restored() -> Iterator[None]:
    """A command run in-process (``main([...])``) configures logging for its process, on the stream pytest lends
    it for that test: put structlog and the root logger back afterwards, so later tests neither log into a closed
    stream nor lose the levels ``capture_logs`` relies on."""
    saved = structlog.get_config()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    structlog.configure(**saved)
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
async def unreachable() -> AsyncIterator[aioredis.Redis]:
    """A client of a Redis that is not there (a socket path that does not exist): every command fails fast."""
    client = connect("unix:///nonexistent/monitor-test.sock", RedisConfig(connect_timeout_s=0.5, socket_timeout_s=0.5))
    try:
        yield client
    finally:
        await client.aclose()
