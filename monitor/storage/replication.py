"""Waiting for replicas: a script whose writes must survive a failover, followed by ``WAIT`` on the same connection.

Redis replicates asynchronously: a primary that dies right after it answered may take its last writes with it, and
the replica promoted in its place never saw them. ``WAIT n timeout`` blocks until ``n`` replicas acknowledged every
write the *connection* made so far, so it has to follow the script on the connection that ran it: both go in one
pipeline (on a cluster, addressed to the node owning the monitor's slot, which sends its commands down one
connection). ``WAIT`` never fails a write that happened: when fewer replicas answered in time the alert is still in
the primary, and the caller logs it (the trade-off is in ``docs/operations.md``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import NoScriptError

from monitor.storage.batch import Arg, LuaScript, run_script

__all__ = ["Acknowledged", "ReplicaWait", "run_acknowledged"]


class ReplicaWait:
    """How many replicas must acknowledge (0: do not wait) and for how long at most.

    After a wait that came back short (no replica attached: it died, or was promoted and has none yet) the next
    ``pause_s`` of commits do not wait, so a primary left alone costs one timeout per ``pause_s``, not one per
    alert; then waiting resumes."""

    def __init__(self, replicas: int = 0, timeout_ms: int = 500, *, pause_s: float = 10.0) -> None:
        self.replicas = replicas
        self.timeout_ms = timeout_ms
        self.pause_s = pause_s
        self._paused_until = 0.0

    def wanted(self) -> int:
        """Replicas to wait for now."""
        return 0 if time.monotonic() < self._paused_until else self.replicas

    def record(self, acknowledged: int | None) -> bool:
        """Note a wait's outcome; True when it came back short (and waiting pauses)."""
        if acknowledged is None or acknowledged >= self.replicas:
            return False
        self._paused_until = time.monotonic() + self.pause_s
        return True


@dataclass(frozen=True, slots=True)
class Acknowledged:
    reply: Any
    #: Replicas that acknowledged (None when no wait was asked for).
    replicas: int | None


async def run_acknowledged(
    redis: aioredis.Redis, script: LuaScript, keys: Sequence[str], args: Sequence[Arg], replicas: int, timeout_ms: int
) -> Acknowledged:
    """``script`` on ``keys``, then ``WAIT replicas timeout_ms`` on the same connection. Raises what Redis raised
    for the script; a failed ``WAIT`` counts as no replica."""
    if replicas <= 0:
        return Acknowledged(await run_script(redis, script, keys, args), None)
    for _ in range(2):  # a second round after loading the script into a Redis that did not have it
        target: object = redis
        async with redis.pipeline(transaction=False) as pipe:
            pipe.evalsha(script.sha, len(keys), *keys, *args)
            if isinstance(target, RedisCluster):
                node = target.get_node_from_key(keys[0])
                pipe.execute_command("WAIT", replicas, timeout_ms, target_nodes=node)
            else:
                pipe.wait(replicas, timeout_ms)
            reply, acked = await pipe.execute(raise_on_error=False)
        if isinstance(reply, NoScriptError):
            await redis.script_load(script.text)
            continue
        if isinstance(reply, Exception):
            raise reply
        return Acknowledged(reply, acked if isinstance(acked, int) else 0)
    raise NoScriptError(f"script {script.sha} is not loaded after SCRIPT LOAD")
