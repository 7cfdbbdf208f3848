"""The start-up check of the Redis the daemon is given: it must never evict keys and must persist them.

A Redis that evicts (any ``maxmemory-policy`` but ``noeviction``) drops the dedup keys first, and one that
restarts empty forgets them all; either way the monitor alerts again on articles it already alerted, with no
error anywhere. So the daemon reads the policy and the persistence settings at start and warns loudly
(``redis_unsafe``), or refuses to start when ``redis.require_safe`` is set. Managed services often refuse
``CONFIG GET``: the policy is then read from ``INFO memory``, and what cannot be read is reported as unchecked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
import structlog
from redis.exceptions import RedisError

from monitor.core.errors import StartupError

__all__ = ["RedisSafety", "check_redis_safety", "inspect_redis"]

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class RedisSafety:
    """What was found. ``problems`` make it unsafe; ``unchecked`` names what could not be read, and why."""

    policy: str | None = None
    aof: bool | None = None
    save: str | None = None  # the RDB snapshot schedule ('' = none)
    problems: list[str] = field(default_factory=list)
    unchecked: list[str] = field(default_factory=list)

    @property
    def safe(self) -> bool:
        return not self.problems


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def _config_get(redis: aioredis.Redis, name: str) -> str:
    reply = await redis.config_get(name)
    values = {_text(k): _text(v) for k, v in reply.items()}
    if name not in values:  # an old or unusual server that does not know the setting
        raise RedisError(f"CONFIG GET {name} returned nothing")
    return values[name]


async def inspect_redis(redis: aioredis.Redis) -> RedisSafety:
    """Read the eviction policy and the persistence settings; never raises for a refused command."""
    unchecked: list[str] = []
    policy: str | None = None
    try:
        policy = await _config_get(redis, "maxmemory-policy")
    except RedisError as exc:
        try:  # INFO is allowed where CONFIG is not (most managed services)
            found = (await redis.info("memory")).get("maxmemory_policy")
            policy = _text(found) if found is not None else None
        except RedisError:
            pass
        if policy is None:
            unchecked.append(f"maxmemory-policy ({exc})")
    aof: bool | None = None
    try:
        aof = bool(int((await redis.info("persistence")).get("aof_enabled", 0)))
    except (RedisError, ValueError) as exc:
        unchecked.append(f"appendonly ({exc})")
    save: str | None = None
    if not aof:
        try:
            save = (await _config_get(redis, "save")).strip()
        except RedisError as exc:
            unchecked.append(f"RDB save schedule ({exc})")
    problems: list[str] = []
    if policy is not None and policy != "noeviction":
        problems.append(
            f"maxmemory-policy is {policy}: at maxmemory Redis deletes keys, first the dedup keys, and the monitor "
            "alerts again on articles it already alerted (use noeviction)"
        )
    if aof is False and save == "":
        problems.append(
            "no persistence (appendonly no, and no RDB save schedule): a Redis restart loses every dedup key and "
            "every undelivered alert (use appendonly yes)"
        )
    return RedisSafety(policy, aof, save, problems, unchecked)


async def check_redis_safety(redis: aioredis.Redis, *, require_safe: bool) -> RedisSafety:
    """Log what ``inspect_redis`` found; raise ``StartupError`` when it is unsafe and ``require_safe`` is set."""
    found = await inspect_redis(redis)
    if found.unchecked:
        log.warning("redis_unchecked", could_not_read=found.unchecked, policy=found.policy, aof=found.aof)
    if found.problems:
        if require_safe:
            log.error("redis_unsafe", problems=found.problems, require_safe=True)
            raise StartupError(
                "refusing to start: the Redis server is not safe for the monitor: "
                + "; ".join(found.problems)
                + " (or set redis.require_safe: false to start anyway)"
            )
        log.warning("redis_unsafe", problems=found.problems, require_safe=False)
    elif not found.unchecked:
        log.info("redis_checked", policy=found.policy, aof=found.aof, save=found.save)
    return found
