"""``redis-server`` processes the suite starts itself on loopback ports: the binary the embedded extra ships (or the
system's), each server in a directory of its own, stopped at the end.

server = start_server(tmp / "a", "--cluster-enabled", "yes")   # a ServerProcess; server.port, server.client()
stop_all(servers)
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

from monitor.storage.connection import embedded_server_binary

__all__ = ["ServerProcess", "free_port", "start_server", "stop_all", "wait_until"]


def free_port(*, bus: bool = False) -> int:
    """A loopback port nobody listens on (and, with ``bus``, whose cluster bus port, 10000 higher, is free too)."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if not bus:
            return port
        if port + 10000 > 65535:
            continue
        with socket.socket() as s, contextlib.suppress(OSError):
            s.bind(("127.0.0.1", port + 10000))
            return port
    raise RuntimeError("no free loopback port pair")


def wait_until(check: object, timeout_s: float, what: str) -> None:
    """Poll ``check()`` (a callable) until it is truthy; its exceptions count as not yet."""
    assert callable(check)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(redis.RedisError, OSError):
            if check():
                return
        time.sleep(0.05)
    raise AssertionError(f"{what} did not happen within {timeout_s:g}s")


@dataclass
class ServerProcess:
    port: int
    directory: Path
    process: subprocess.Popen[bytes]
    clients: list[redis.Redis] = field(default_factory=list)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def client(self) -> redis.Redis:
        """A synchronous client of this one server (closed by ``stop``)."""
        c = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5, socket_connect_timeout=2)
        self.clients.append(c)
        return c

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: the server dies without a word to anyone."""
        if self.alive():
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        for c in self.clients:
            with contextlib.suppress(Exception):
                c.close()
        if self.alive():
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


def start_server(directory: Path, *args: str, port: int | None = None, config: str | None = None) -> ServerProcess:
    """A ``redis-server`` on 127.0.0.1 in ``directory`` (its log there too), answering PING before this returns;
    ``config`` is written to a file and given first (a sentinel needs its configuration in a file)."""
    directory.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    head = []
    if config is not None:
        (directory / "server.conf").write_text(config)
        head = [str(directory / "server.conf")]
    argv = [
        embedded_server_binary(),
        *head,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(directory),
        "--logfile",
        str(directory / "redis.log"),
        "--save",
        "",
        *args,
    ]
    process = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    server = ServerProcess(port, directory, process)
    probe = server.client()
    try:
        wait_until(lambda: process.poll() is not None or probe.ping(), 15, f"redis-server on port {port} to start")
    except AssertionError:
        server.stop()
        raise
    if process.poll() is not None:
        raise AssertionError(f"redis-server on port {port} exited: see {directory / 'redis.log'}")
    return server


def stop_all(servers: list[ServerProcess]) -> None:
    for server in servers:
        server.stop()
