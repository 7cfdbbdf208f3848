"""Redis state of the fetchers: HTTP validators, feed health and the poll's lease (events live in ``eventstore``).

A poll costs two script calls, each one atomic step: ``begin_poll`` (take the lease, read what the fetch needs)
and ``finish_poll`` (save the validators, record health, stretch the lease to the next poll). With a
``ScriptBatch`` the calls of concurrent polls to each script are joined in one call of one round trip (both scripts
are ``BatchedScript``; see ``monitor.storage.batch``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from monitor.core.errors import StoreError
from monitor.core.models import PollResult, Validators
from monitor.storage.batch import Arg, BatchedScript, ScriptBatch, run_script
from monitor.storage.keys import VALIDATORS_TTL_S, Keys
from monitor.storage.leases import STRETCH_LEASE_LUA, TAKE_LEASE_LUA

__all__ = ["FetchRecord", "PollStart", "PollState"]

# KEYS: lease, validators, feed state. ARGV: lease token ('' = no lease), lease TTL in ms.
# {holder} when another replica holds the lease; else {false, etag, last_modified, interval_s, body_digest,
# consecutive_errors, cursor} (false where missing).
_BEGIN = BatchedScript(
    TAKE_LEASE_LUA,
    """
if ARGV[1] ~= '' then
  local holder = take_lease(KEYS[1], ARGV[1], ARGV[2])
  if holder then return {holder} end
end
local v = redis.call('HMGET', KEYS[2], 'etag', 'last_modified')
local s = redis.call('HMGET', KEYS[3], 'interval_s', 'body_digest', 'consecutive_errors', 'cursor')
return {false, v[1], v[2], s[1], s[2], s[3], s[4]}
""",
    width=3,
)

# KEYS: lease, validators, feed state. ARGV: lease token ('' = none), lease TTL in ms, ok ('1'/'0'), items, the
# time of the attempt, validators TTL ('' = do not save), etag, last_modified, then field/value pairs for the
# health hash. {consecutive errors before (false if none), after, the lease's ms left (-1: not ours)}.
_FINISH = BatchedScript(
    STRETCH_LEASE_LUA,
    """
if ARGV[6] ~= '' then
  redis.call('HSET', KEYS[2], 'etag', ARGV[7], 'last_modified', ARGV[8])
  redis.call('EXPIRE', KEYS[2], ARGV[6])
end
local before = redis.call('HGET', KEYS[3], 'consecutive_errors')
redis.call('HSET', KEYS[3], unpack(ARGV, 9))
local after = 0
if ARGV[3] == '1' then
  redis.call('HSET', KEYS[3], 'last_success', ARGV[5], 'consecutive_errors', '0')
  redis.call('HINCRBY', KEYS[3], 'items_seen', ARGV[4])
else
  after = redis.call('HINCRBY', KEYS[3], 'consecutive_errors', 1)
end
local lease = -1
if ARGV[1] ~= '' then lease = stretch_lease(KEYS[1], ARGV[1], ARGV[2]) end
return {before, after, lease}
""",
    width=3,
)


@dataclass(frozen=True, slots=True)
class PollStart:
    """What a poll starts from. ``holder`` is the token of another replica holding the feed's lease (skip the
    poll; nothing else is read then); otherwise the lease, if asked for, is this replica's now."""

    holder: str | None = None
    validators: Validators | None = None
    interval_s: float | None = None
    body_digest: str | None = None
    consecutive_errors: int = 0
    #: Where an incremental source (a Telegram channel) goes on from; saved by ``finish_poll`` with the validators.
    cursor: str | None = None


@dataclass(frozen=True, slots=True)
class FetchRecord:
    """What recording a fetch found: consecutive errors before and after it, and how long the lease this replica
    holds on the feed still lasts (None when it holds none: no lease asked for, expired or taken over)."""

    errors_before: int
    errors_after: int
    lease_left_s: float | None


class PollState:
    """Typed access to the monitor's Redis keys. Redis failures surface as ``StoreError``.

    ``batch`` sends the per-poll scripts of concurrent polls together; without it each is a round trip of its own.
    """

    def __init__(self, redis: aioredis.Redis, keys: Keys, *, batch: ScriptBatch | None = None) -> None:
        self.redis = redis
        self.keys = keys
        self.batch = batch

    async def _run(self, script: BatchedScript, keys: Sequence[str], args: Sequence[Arg]) -> Any:
        if self.batch is not None:
            return await self.batch.run(script, keys, args)
        return await run_script(self.redis, script.one, keys, args)

    async def begin_poll(self, feed: str, *, lease_token: str | None = None, lease_ttl_ms: int = 0) -> PollStart:
        """Take (or renew) the feed's lease for ``lease_token`` when given, and read the HTTP validators, the
        adaptive interval, the digest of the last body and the consecutive errors, in one atomic step."""
        keys = (self.keys.feed_lease(feed), self.keys.validators(feed), self.keys.feed_state(feed))
        try:
            reply = await self._run(_BEGIN, keys, (lease_token or "", str(lease_ttl_ms)))
        except RedisError as exc:
            raise StoreError(f"Redis failed reading feed state: {exc}") from exc
        if reply[0]:
            return PollStart(holder=_text(reply[0]))
        _, etag, modified, interval, digest, errors, cursor = reply
        validators = None
        if etag is not None or modified is not None:  # the hash exists (both fields are always written)
            validators = Validators(etag=_text(etag) or None, last_modified=_text(modified) or None)
        return PollStart(
            validators=validators,
            interval_s=float(interval) if interval else None,
            body_digest=_text(digest) or None,
            consecutive_errors=_count(errors),
            cursor=_text(cursor) or None,
        )

    async def finish_poll(
        self, feed: str, result: PollResult, *, lease_token: str | None = None, lease_ttl_ms: int = 0
    ) -> FetchRecord:
        """Record a poll in one atomic step: save its validators when given (call only once the articles are
        processed: a crash before re-fetches the feed), update the health hash (``monitor status`` reads it), and,
        while ``lease_token`` still holds the feed's lease, make it last at least ``lease_ttl_ms``."""
        at, ok, status, latency_s, error = result.at, result.ok, result.status, result.latency_s, result.error
        interval_s, body_digest, validators, items = (
            result.interval_s,
            result.body_digest,
            result.validators,
            result.items,
        )
        stamp = at.isoformat()
        fields: list[Arg] = [
            "last_attempt",
            stamp,
            "last_status",
            str(status or ""),
            "last_latency_s",
            f"{latency_s:.3f}",
            "last_error",
            error or "",
        ]
        if interval_s is not None:
            fields += ["interval_s", f"{interval_s:.1f}"]
        if body_digest is not None:
            fields += ["body_digest", body_digest]
        if result.cursor is not None:
            fields += ["cursor", result.cursor]
        saved: list[Arg] = ["", "", ""]
        if validators is not None:
            saved = [str(VALIDATORS_TTL_S), _header_text(validators.etag), _header_text(validators.last_modified)]
        args: list[Arg] = [lease_token or "", str(lease_ttl_ms), "1" if ok else "0", str(items), stamp, *saved, *fields]
        keys = (self.keys.feed_lease(feed), self.keys.validators(feed), self.keys.feed_state(feed))
        try:
            before, after, lease_ms = await self._run(_FINISH, keys, args)
        except RedisError as exc:
            raise StoreError(f"Redis failed recording feed health: {exc}") from exc
        return FetchRecord(_count(before), int(after), lease_ms / 1000 if lease_ms >= 0 else None)

    async def enqueue_notice(self, alert: dict[str, Any]) -> None:
        """Put an operator notice (feed down / recovered) in the outbox and the alert log."""
        body = json.dumps(alert, ensure_ascii=False, separators=(",", ":"))
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.xadd(self.keys.outbox, {"id": alert["id"], "alert": body})
                pipe.xadd(self.keys.alert_log, {"id": alert["id"], "alert": body})
                await pipe.execute()
        except RedisError as exc:
            raise StoreError(f"Redis failed enqueueing a notice: {exc}") from exc

    async def feed_health(self, feed: str) -> dict[str, str]:
        try:
            raw = await self.redis.hgetall(self.keys.feed_state(feed))
        except RedisError as exc:
            raise StoreError(f"Redis failed: {exc}") from exc
        return {_text(k): _text(v) for k, v in raw.items()}


def _header_text(value: str | None) -> str:
    """A validator as it can be saved: one holding bytes that are not UTF-8 (aiohttp keeps them as surrogate
    escapes) is not saved, and the feed is fetched in full next time, as if its server had sent none."""
    if not value:
        return ""
    try:
        value.encode()
    except UnicodeEncodeError:
        return ""
    return value


def _count(value: bytes | None) -> int:
    """A counter of the health hash; one that is not a number (edited by hand) counts as none."""
    try:
        return int(value or 0)
    except ValueError:
        return 0


def _text(value: bytes | str | None) -> str:
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else value
