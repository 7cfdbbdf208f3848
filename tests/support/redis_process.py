"""A throwaway ``redis-server`` a test owns: on a Unix socket in a folder of its own, without persistence unless
asked, that the test can restart (coming back empty), pause, or squeeze (``maxmemory``).

    server = RedisProcess(tmp_path / "r")
    url = server.start()
    server.restart()          # SIGKILL and start again: without persistence it comes back empty
    server.stop()
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import redis

from monitor.storage.connection import embedded_server_binary

__all__ = ["RedisProcess"]

NO_PERSISTENCE = ("--save", "", "--appendonly", "no")


class RedisProcess:
    def __init__(self, folder: Path, *settings: str) -> None:
        self.folder = folder
        self.socket = folder / "redis.sock"
        self.settings = settings or NO_PERSISTENCE
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def client(self) -> redis.Redis:
        return redis.Redis(unix_socket_path=str(self.socket), socket_timeout=5)

    def start(self) -> str:
        self.folder.mkdir(parents=True, exist_ok=True)
        args = [
            embedded_server_binary(), "--port", "0", "--unixsocket", str(self.socket), "--dir", str(self.folder),
            "--logfile", str(self.folder / "redis.log"), *self.settings,
        ]  # fmt: skip
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while True:
            try:
                if self.client().ping():
                    return self.url
            except (redis.RedisError, OSError):
                pass
            assert self.proc.poll() is None, "throwaway redis-server exited at start"
            assert time.monotonic() < deadline, "throwaway redis-server did not start"
            time.sleep(0.02)

    def stop(self, *, kill: bool = False) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        if kill:
            proc.kill()
        else:
            proc.terminate()
        proc.wait(10)

    def restart(self) -> str:
        """SIGKILL, then start again on the same socket (without persistence: empty)."""
        self.stop(kill=True)
        self.socket.unlink(missing_ok=True)
        return self.start()
