"""The digests' Redis: reading a window of the alert log, and the claim that sends each window once.

The claim is ``Keys.digest_sent(name, window)``, taken with ``SET NX`` and a short TTL in a *sending* state, then
finished (a compare-and-set to *sent* or *failed* for longer) or released (a compare-and-delete), both only while
it is still the taker's; ``monitor.digests.send`` explains when each happens. ``scheduled_since`` keeps when each
digest was first scheduled, which tells a fresh install from one that was down. Raises ``StoreError``, never
redis' own errors.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Generic, TypeVar

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from monitor.core.errors import StoreError
from monitor.storage.keys import Keys

__all__ = ["Claim", "DigestStore", "LogSlice"]

T = TypeVar("T")
#: An alert-log entry as read (stream id, fields) to the caller's type, or None to skip it.
Parse = Callable[[bytes, dict[bytes, bytes]], T | None]
PAGE = 1000

# Finish a claim only if it is still ours, or lapsed and nobody took it since.
_FINISH = """
local current = redis.call('GET', KEYS[1])
if current == ARGV[1] or current == false then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
"""
# The time a digest was first scheduled: the stored one, else recorded now. Before this marker existed an install
# kept only claims, so one that claimed the window before the latest counts as scheduled since that window closed.
_SINCE = """
local since = redis.call('GET', KEYS[1])
if not since then
  since = ARGV[1]
  if ARGV[2] ~= '' and redis.call('EXISTS', KEYS[2]) == 1 then since = ARGV[2] end
  redis.call('SET', KEYS[1], since)
end
return since
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@dataclass(frozen=True, slots=True)
class LogSlice(Generic[T]):
    """Alert-log entries of a time range, in log order; ``before`` is the last entry before it (None if none, or
    skipped). ``truncated``: reading stopped at ``enough`` entries and the range may hold more."""

    entries: list[T]
    before: T | None
    truncated: bool


@dataclass(frozen=True, slots=True)
class Claim:
    """A claim this process took: its key and the token that proves it is still this process's."""

    key: str
    token: str


class DigestStore:
    """The digests' reads and claims on one Redis, under ``keys``."""

    def __init__(self, redis: aioredis.Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys
        self._owner = f"{socket.gethostname()}:{os.getpid()}"

    async def read_log(
        self, start_ms: int, end_ms: int, parse: Parse[T], *, enough: int, page: int = PAGE
    ) -> LogSlice[T]:
        """The alert-log entries logged from ``start_ms`` to ``end_ms`` (both included), each through ``parse``.

        Reads ``page`` entries at a time and stops after the page that brings it to ``enough`` parsed entries or
        more (``truncated``); the caller keeps as many as it wants.
        """
        entries: list[T] = []
        cursor = str(start_ms)
        try:
            while len(entries) < enough:
                # Typed loosely on purpose, as in the outbox: the reply's shape depends on the client's settings.
                batch: Any = await self._redis.xrange(self._keys.alert_log, min=cursor, max=str(end_ms), count=page)
                entries.extend(e for entry_id, fields in batch if (e := parse(entry_id, fields)) is not None)
                if len(batch) < page:
                    truncated = False
                    break
                millis, seq = batch[-1][0].decode().split("-")
                cursor = f"{millis}-{int(seq) + 1}"
            else:
                truncated = True
            before: Any = await self._redis.xrevrange(self._keys.alert_log, max=str(start_ms - 1), min="-", count=1)
        except RedisError as exc:
            raise StoreError(f"Redis failed reading the alert log: {exc}") from exc
        return LogSlice(entries, parse(*before[0]) if before else None, truncated)

    async def claim(self, name: str, window: str, ttl_s: float) -> Claim | None:
        """Claim digest ``name``'s window ``window`` (in the *sending* state, for ``ttl_s``); None when another
        sender has or had it."""
        key = self._keys.digest_sent(name, window)
        token = f"sending {self._owner} {uuid.uuid4().hex}"
        try:
            taken = await self._redis.set(key, token, nx=True, px=max(1, int(ttl_s * 1000)))
        except RedisError as exc:
            raise StoreError(f"Redis failed: {exc}") from exc
        return Claim(key, token) if taken else None

    async def finish(self, claim: Claim, state: str, keep: timedelta) -> bool:
        """Record ``state`` (*sent ...*, *failed ...*) on the claim for ``keep``, if it is still ``claim``'s or lapsed
        and nobody took it since; False when another sender took it."""
        try:
            done = await self._redis.eval(
                _FINISH, 1, claim.key, claim.token, state, str(int(keep.total_seconds() * 1000))
            )
        except RedisError as exc:
            raise StoreError(f"Redis failed: {exc}") from exc
        return bool(done)

    async def scheduled_since(self, name: str, now: str, *, earlier: tuple[str, str] | None = None) -> str:
        """When digest ``name`` was first scheduled (ISO-8601 UTC, as given), recording ``now`` on the first call.

        ``earlier`` is ``(window, end)``: a window of the digest and when it closed. If that window was claimed
        (by an install from before this record), the digest counts as scheduled since ``end`` instead of ``now``.
        """
        window, end = earlier if earlier is not None else ("", "")
        claim_key = self._keys.digest_sent(name, window) if window else self._keys.digest_since(name)
        try:
            since: Any = await self._redis.eval(_SINCE, 2, self._keys.digest_since(name), claim_key, now, end)
        except RedisError as exc:
            raise StoreError(f"Redis failed: {exc}") from exc
        return since.decode() if isinstance(since, bytes) else str(since)

    async def release(self, claim: Claim) -> None:
        """Delete the claim if it is still ``claim``'s, so that the next attempt may send."""
        try:
            await self._redis.eval(_RELEASE, 1, claim.key, claim.token)
        except RedisError as exc:
            raise StoreError(f"Redis failed: {exc}") from exc
