"""Events in Redis: candidate lookup (near-duplicate band keys, salient entities, exact fingerprints), the atomic
commit of an article into an event with its alert, the escalation level, and listings for operators.

Concurrency: deciding which event an article joins and committing it happen under a short per-family lock, so two
replicas never open two events for one story; the commit itself is one Lua script (the article's claim, the
event, its indexes and the alert in the outbox and the alert log), so a crash leaves all or nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import weakref
from collections.abc import AsyncIterator, Sequence
from datetime import datetime, timedelta
from typing import Any, cast

import redis.asyncio as aioredis
import structlog
from redis.exceptions import RedisError

from monitor.core.errors import StoreError
from monitor.events.cluster import EventState
from monitor.events.escalation import EventPoint
from monitor.storage.batch import Arg, LuaScript
from monitor.storage.keys import (
    ALERT_LOG_RETENTION_S,
    CLUSTER_LOCK_TTL_MS,
    EVENT_TTL_S,
    FAMILY_INDEX_SIZE,
    FINGERPRINT_TTL_S,
    SEEN_TTL_S,
    Keys,
)
from monitor.storage.replication import ReplicaWait, run_acknowledged

__all__ = ["EventStore", "GenerationChangedError"]


class GenerationChangedError(StoreError):
    """A commit found Redis' generation marker changed (see ``monitor.storage.generation``)."""


log = structlog.get_logger(__name__)

# KEYS: outbox, alert log, article claim, fingerprint, event, events index, family index, then ARGV[9] band keys
# and ARGV[10] entity index keys, and last the generation marker. Returns 0 when the article was claimed before
# (nothing written), -1 when the marker does not hold the generation ARGV[14] (Redis lost its state since the
# caller looked; nothing written), 1 otherwise.
_COMMIT = """
if ARGV[14] ~= '' then
  local marker = redis.call('GET', KEYS[#KEYS])
  if not marker or not string.find(marker, ARGV[14], 1, true) then return -1 end
end
if redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
redis.call('SET', KEYS[3], ARGV[5], 'EX', ARGV[1])
redis.call('SET', KEYS[4], ARGV[5], 'EX', ARGV[2])
redis.call('SET', KEYS[5], ARGV[6], 'EX', ARGV[7])
redis.call('ZADD', KEYS[6], ARGV[8], ARGV[5])
redis.call('ZADD', KEYS[7], ARGV[12], ARGV[5])
redis.call('ZREMRANGEBYRANK', KEYS[7], 0, -1 - FAMILY_INDEX_SIZE)
local bands = tonumber(ARGV[9])
local entities = tonumber(ARGV[10])
for i = 8, 7 + bands do
  redis.call('SADD', KEYS[i], ARGV[5])
  redis.call('EXPIRE', KEYS[i], ARGV[7])
end
for i = 8 + bands, 7 + bands + entities do
  redis.call('ZADD', KEYS[i], ARGV[13], ARGV[5])
  redis.call('EXPIRE', KEYS[i], ARGV[7])
end
if ARGV[3] ~= '' then
  redis.call('XADD', KEYS[1], '*', 'id', ARGV[3], 'alert', ARGV[4])
  redis.call('XADD', KEYS[2], 'MINID', '~', ARGV[11], '*', 'id', ARGV[3], 'alert', ARGV[4])
end
return 1
""".replace("FAMILY_INDEX_SIZE", str(FAMILY_INDEX_SIZE))

# KEYS: escalation hash, outbox, alert log. Sets the level only if it is still the one the caller read; without an
# alert id (a silent re-read after Redis lost its state) nothing is enqueued.
_LEVEL_CHANGE = """
local current = redis.call('HGET', KEYS[1], 'level') or '1'
if current ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'level', ARGV[2], 'score', ARGV[3], 'updated', ARGV[4])
if ARGV[5] == '' then return 1 end
redis.call('XADD', KEYS[2], '*', 'id', ARGV[5], 'alert', ARGV[6])
redis.call('XADD', KEYS[3], 'MINID', '~', ARGV[7], '*', 'id', ARGV[5], 'alert', ARGV[6])
return 1
"""

_UNLOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def _retention_floor(now: datetime) -> str:
    return f"{int((now.timestamp() - ALERT_LOG_RETENTION_S) * 1000)}-0"


class EventStore:
    def __init__(self, redis: aioredis.Redis, keys: Keys, *, replicas: int = 0, wait_timeout_ms: int = 500) -> None:
        self.redis = redis
        self.keys = keys
        #: Replicas that must acknowledge a commit that enqueued an alert (``redis.wait_replicas``, see
        #: ``monitor.storage.replication``), and how long each wait may take at most.
        self.wait = ReplicaWait(replicas, wait_timeout_ms)
        self._commit = LuaScript(_COMMIT)
        self._level = LuaScript(_LEVEL_CHANGE)
        self._unlock = redis.register_script(_UNLOCK)
        # Per event loop: an asyncio.Lock belongs to the loop it was first used in (tests run several loops).
        self._local_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Lock]] = (
            weakref.WeakKeyDictionary()
        )

    @contextlib.asynccontextmanager
    async def lock(self, family: str, *, wait_s: float = 15.0) -> AsyncIterator[None]:
        """A short lock per event family, released only by its holder; expires if the holder dies.

        Polls of this process queue for the family on a local lock first, so only one of them at a time competes
        for the Redis lock (with other replicas) and the next one starts the moment the last one is done, instead
        of each retrying the Redis lock every 20 ms."""
        loop = asyncio.get_running_loop()
        local = self._local_locks.setdefault(loop, {}).setdefault(family, asyncio.Lock())
        deadline = loop.time() + wait_s
        try:
            await asyncio.wait_for(local.acquire(), wait_s)
        except TimeoutError as exc:
            raise StoreError(f"could not take the clustering lock for {family}") from exc
        try:
            async with self._redis_lock(family, deadline):
                yield
        finally:
            local.release()

    @contextlib.asynccontextmanager
    async def _redis_lock(self, family: str, deadline: float) -> AsyncIterator[None]:
        key, token = self.keys.cluster_lock(family), secrets.token_hex(8)
        try:
            while not await self.redis.set(key, token, nx=True, px=CLUSTER_LOCK_TTL_MS):
                if asyncio.get_running_loop().time() > deadline:
                    raise StoreError(f"could not take the clustering lock for {family}")
                await asyncio.sleep(0.02)
            yield
        except RedisError as exc:
            raise StoreError(f"Redis failed while clustering: {exc}") from exc
        finally:
            with contextlib.suppress(RedisError):
                await self._unlock(keys=[key], args=[token])

    async def claimed(self, article_id: str) -> bool:
        try:
            return bool(await self.redis.exists(self.keys.seen(article_id)))
        except RedisError as exc:
            raise StoreError(f"Redis failed: {exc}") from exc

    async def candidates(
        self,
        *,
        fingerprint: str | None,
        bands: Sequence[str],
        salient: Sequence[str],
        around: datetime,
        reach: timedelta,
        families: Sequence[str],
        close: timedelta,
    ) -> tuple[str | None, list[EventState]]:
        """(the event an exact copy belongs to, if any; events sharing a band key, events naming a salient entity
        that began within ``reach`` of the event time ``around``, and the families' events with a report within
        ``close`` of it). Times are event times (see ``monitor.events.joining.event_time``), not reading times."""
        low, high = (around - reach).timestamp(), (around + reach).timestamp()
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.get(self.keys.fingerprint_lookup(fingerprint))
                for band in bands:
                    pipe.smembers(self.keys.band(band))
                for entity in salient:
                    pipe.zrangebyscore(self.keys.entity_events(entity), low, high)
                for family in families:
                    pipe.zrangebyscore(
                        self.keys.family_events(family), (around - close).timestamp(), (around + close).timestamp()
                    )
                results = await pipe.execute()
            copy_of = results[0].decode() if results[0] else None
            ids = {v.decode() for r in results[1:] for v in r}
            if copy_of:
                ids.add(copy_of)
            events = await self.load(sorted(ids))
        except RedisError as exc:
            raise StoreError(f"Redis failed looking up events: {exc}") from exc
        return copy_of, events

    async def load(self, event_ids: Sequence[str]) -> list[EventState]:
        if not event_ids:
            return []
        raw = await self.redis.mget([self.keys.event(e) for e in event_ids])
        return [EventState.from_json(r) for r in raw if r]

    async def commit(
        self,
        *,
        article_id: str,
        fingerprint: str | None,
        event: EventState,
        bands: Sequence[str],
        salient: Sequence[str],
        alert: dict[str, Any] | None,
        now: datetime,
        generation: str | None = None,
    ) -> bool:
        """Write the article's claim, the event and (if any) its alert in one step; False if already claimed.
        With ``generation``, only while Redis' generation marker holds it (else ``GenerationChangedError``): a
        Redis emptied in the middle of a batch takes none of the batch's old articles for new."""
        keys = [
            self.keys.outbox,
            self.keys.alert_log,
            self.keys.seen(article_id),
            self.keys.article_fingerprint(fingerprint, article_id),
            self.keys.event(event.id),
            self.keys.events,
            self.keys.family_events(event.family),
            *(self.keys.band(b) for b in bands),
            *(self.keys.entity_events(e) for e in salient),
            self.keys.generation,
        ]
        args = [
            SEEN_TTL_S,
            FINGERPRINT_TTL_S,
            alert["id"] if alert else "",
            json.dumps(alert, ensure_ascii=False, separators=(",", ":")) if alert else "",
            event.id,
            event.to_json(),
            EVENT_TTL_S,
            datetime.fromisoformat(event.first_seen).timestamp(),
            len(bands),
            len(salient),
            _retention_floor(now),
            event.span[1].timestamp(),
            event.span[0].timestamp(),
            generation or "",
        ]
        try:
            done = await self._enqueue(self._commit, keys, args, alert is not None)
        except RedisError as exc:
            raise StoreError(f"Redis failed committing an event: {exc}") from exc
        if done == -1:
            raise GenerationChangedError("Redis lost its state during this poll; the feed is read again")
        return bool(done)

    async def _enqueue(self, script: LuaScript, keys: list[str], args: list[Arg], alerts: bool) -> Any:
        """Run a script that enqueues an alert (when ``alerts``), then wait for the replicas ``self.wait`` asks for
        (``monitor.storage.replication``); its reply."""
        replicas = self.wait.wanted() if alerts else 0
        done = await run_acknowledged(self.redis, script, keys, args, replicas, self.wait.timeout_ms)
        if self.wait.record(done.replicas):
            # The alert is in the primary and goes out; only a failover before a replica copies it could lose it.
            log.warning("redis_wait_short", acknowledged=done.replicas, wanted=replicas, pause_s=self.wait.pause_s)
        return done.reply

    async def recent(self, since: datetime, limit: int = 500) -> list[EventState]:
        """Events first seen since ``since``, newest first."""
        try:
            # The client does not decode responses: members come back as bytes (the stubs allow str too).
            ids = cast(
                list[bytes],
                await self.redis.zrevrangebyscore(self.keys.events, "+inf", since.timestamp(), start=0, num=limit),
            )
            return await self.load([i.decode() for i in ids])
        except RedisError as exc:
            raise StoreError(f"Redis failed listing events: {exc}") from exc

    async def points(self, since: datetime) -> list[EventPoint]:
        return [
            EventPoint(e.event_type, e.severity, datetime.fromisoformat(e.first_seen), e.id)
            for e in await self.recent(since, limit=10_000)
        ]

    async def level(self) -> int:
        try:
            raw = await self.redis.hget(self.keys.escalation, "level")
        except RedisError as exc:
            raise StoreError(f"Redis failed: {exc}") from exc
        return int(raw) if raw else 1

    async def change_level(
        self, *, previous: int, level: int, score: float, alert: dict[str, Any] | None, now: datetime
    ) -> bool:
        """Move the level from ``previous`` to ``level`` and enqueue its alert (None: silently), unless another
        replica moved it."""
        body = json.dumps(alert, ensure_ascii=False, separators=(",", ":")) if alert else ""
        args: list[Arg] = [
            str(previous),
            str(level),
            f"{score:.3f}",
            now.isoformat(),
            alert["id"] if alert else "",
            body,
        ]
        try:
            return bool(
                await self._enqueue(
                    self._level,
                    [self.keys.escalation, self.keys.outbox, self.keys.alert_log],
                    [*args, _retention_floor(now)],
                    alert is not None,
                )
            )
        except RedisError as exc:
            raise StoreError(f"Redis failed changing the escalation level: {exc}") from exc

    async def prune(self, now: datetime, keep: timedelta) -> None:
        """Drop index entries of events older than ``keep`` (the events themselves expire on their own)."""
        with contextlib.suppress(RedisError):
            await self.redis.zremrangebyscore(self.keys.events, "-inf", (now - keep).timestamp())
