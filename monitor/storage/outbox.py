"""The outbox stream in Redis: one consumer group per sink, and every command a sink's deliverer sends.

Every alert is one entry of the outbox stream, with the fields ``alert`` (the payload JSON), ``id`` (the alert id)
and optionally ``only_sink`` (a dead-letter retry meant for that sink alone, see ``monitor.storage.deadletters``).
Each sink reads the stream through its own consumer group, named after the sink; each replica is one consumer of
it. An entry stays in the group's pending list until it is settled: acknowledged after delivery, or recorded in
the dead-letter stream and acknowledged, in one transaction.

``OutboxGroup`` is one sink's group as one consumer sees it: reading its own pending entries and new ones, taking
over (XAUTOCLAIM) the idle entries of consumers that vanished, re-claiming held entries so they never look idle,
counting delivery attempts (a hash per sink, so a restart does not reset them) and settling entries.
``ensure_groups`` creates the sinks' groups (all at the stream's start after Redis lost its data, a new sink's at
its end), ``trim_delivered`` drops the entries every group is done with, and ``outbox_counts`` is what
``monitor status`` shows.

Every Redis failure is raised as ``StoreError``: ``StoreUnavailableError`` when Redis could not be reached or did
not answer in time, ``OutboxGroupMissingError`` when the stream or the group vanished (Redis lost its data, or
someone deleted it), which ``ensure`` repairs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from monitor.core.errors import StoreError
from monitor.storage.backlog import entry_ms
from monitor.storage.connection import store_error
from monitor.storage.deadletters import dead_fields
from monitor.storage.keys import DEAD_MAXLEN, Keys

__all__ = [
    "Claimed",
    "OutboxCounts",
    "OutboxEntry",
    "OutboxGroup",
    "OutboxGroupMissingError",
    "ensure_group",
    "ensure_groups",
    "outbox_counts",
    "trim_delivered",
]


class OutboxGroupMissingError(StoreError):
    """The outbox stream or the sink's consumer group does not exist (any more): create it again."""


@contextlib.contextmanager
def _translated(doing: str) -> Iterator[None]:
    try:
        yield
    except (RedisError, OSError) as exc:
        if isinstance(exc, ResponseError) and "NOGROUP" in str(exc):
            raise OutboxGroupMissingError(f"Redis failed {doing}: {exc}") from exc
        raise store_error(exc, doing) from exc


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else value


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """One entry read from the outbox. ``missing``: it was deleted from the stream while pending, so nothing but
    its id is left (only settling it remains to do)."""

    entry_id: str
    alert_id: str = "?"
    alert: bytes = b""  # the payload JSON as enqueued
    only_sink: str | None = None
    missing: bool = False

    @property
    def enqueued_s(self) -> float | None:
        """When the entry was added (Unix time): its id is Redis's clock in ms at the XADD."""
        try:
            return entry_ms(self.entry_id) / 1000
        except ValueError:
            return None


def _entry(entry_id: bytes | str, fields: dict[bytes, bytes] | None) -> OutboxEntry:
    if not fields:
        return OutboxEntry(_text(entry_id), missing=True)
    only = fields.get(b"only_sink")
    return OutboxEntry(
        _text(entry_id),
        _text(fields.get(b"id", b"?")),
        fields.get(b"alert", b""),
        None if only is None else _text(only),
    )


@dataclass(frozen=True, slots=True)
class Claimed:
    """What one XAUTOCLAIM step took over. ``cursor`` is where the next step starts (``0-0`` once the sweep went
    round). ``vanished``: some claimed entries had been deleted from the stream and were not named (Redis 6.2);
    they are in this consumer's pending list now, where re-reading it finds them (as ``missing`` entries)."""

    cursor: str
    entries: list[OutboxEntry]
    vanished: bool


class OutboxGroup:
    """The consumer group ``group`` (a sink's name) on the outbox, as the consumer ``consumer`` (a replica)."""

    def __init__(self, redis: aioredis.Redis, keys: Keys, group: str, consumer: str) -> None:
        self._redis = redis
        self._keys = keys
        self.group = group
        self.consumer = consumer

    async def ensure(self, others: Iterable[str] = ()) -> dict[str, str]:
        """Create this group and ``others`` (every other sink's) where missing, together; see ``ensure_groups``."""
        return await ensure_groups(self._redis, self._keys, [self.group, *others])

    async def read(self, after: str, count: int, block_ms: int | None = None) -> list[OutboxEntry]:
        """At most ``count`` entries of this consumer's pending list after the id ``after``; with ``after='>'``
        new entries instead, waiting up to ``block_ms`` for one (not at all when None)."""
        with _translated("reading the outbox"):
            # Typed loosely on purpose: the reply's shape depends on the client's protocol and parser settings.
            reply: Any = await self._redis.xreadgroup(
                self.group, self.consumer, {self._keys.outbox: after}, count=count, block=block_ms
            )
        if not reply:
            return []
        streams = reply.values() if isinstance(reply, dict) else (entries for _, entries in reply)
        return [_entry(entry_id, fields) for entries in streams for entry_id, fields in entries]

    async def claim_idle(self, min_idle_ms: int, cursor: str, count: int) -> Claimed:
        """Take over up to ``count`` entries other consumers have held for ``min_idle_ms``, scanning from
        ``cursor``."""
        with _translated("claiming idle outbox entries"):
            reply: Any = await self._redis.xautoclaim(
                self._keys.outbox, self.group, self.consumer, min_idle_ms, start_id=cursor, count=count
            )
        entries = [_entry(entry_id, fields) for entry_id, fields in reply[1] if entry_id is not None]
        return Claimed(_text(reply[0]), entries, vanished=len(entries) < len(reply[1]))

    async def keep(self, entry_ids: Sequence[str]) -> set[str]:
        """Re-claim ``entry_ids`` so that they never look idle to other consumers; returns those still pending
        here (another consumer may have taken or settled some meanwhile)."""
        if not entry_ids:
            return set()
        ids: list[Any] = list(entry_ids)
        with _translated("re-claiming held outbox entries"):
            kept: Any = await self._redis.xclaim(self._keys.outbox, self.group, self.consumer, 0, ids, justid=True)
        return {_text(entry_id) for entry_id in kept}

    async def count_attempt(self, entry_id: str) -> int:
        """Count one more delivery attempt of the entry to this sink; returns the attempts so far."""
        with _translated("counting a delivery attempt"):
            return int(await self._redis.hincrby(self._keys.attempts(self.group), entry_id, 1))

    async def ack(self, entry_id: str) -> None:
        """The entry is done with (delivered, or not for this sink): acknowledge it and drop its attempt count."""
        await self._settle(entry_id, None)

    async def dead_letter(self, entry: OutboxEntry, *, reason: str, attempts: int, time: str) -> None:
        """Record the entry in the dead-letter stream (``time``: when, ISO-8601 UTC) and acknowledge it, at once."""
        fields = dead_fields(
            sink=self.group,
            alert_id=entry.alert_id,
            alert=entry.alert,
            reason=reason,
            attempts=attempts,
            time=time,
            entry=entry.entry_id,
        )
        await self._settle(entry.entry_id, fields)

    async def _settle(self, entry_id: str, dead: dict[bytes, bytes | str] | None) -> None:
        """One transaction: so a dead letter is never recorded without its acknowledgement, nor the reverse."""
        with _translated("settling an outbox entry"):
            async with self._redis.pipeline(transaction=True) as pipe:
                if dead is not None:
                    pipe.xadd(self._keys.dead, dead, maxlen=DEAD_MAXLEN, approximate=True)  # type: ignore[arg-type]
                pipe.xack(self._keys.outbox, self.group, entry_id)
                pipe.hdel(self._keys.attempts(self.group), entry_id)
                await pipe.execute()


# Atomic, so no XADD can fall between the check and the creations, and the groups asked for together all start at
# one id: see ``ensure_groups``.
_ENSURE_GROUPS = """
local existing = {}
local read = false
if redis.call('EXISTS', KEYS[1]) == 1 then
  for _, group in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
    for i = 1, #group, 2 do
      if group[i] == 'name' then
        existing[group[i + 1]] = true
        read = true
      end
    end
  end
end
local start = '0'
if read then start = '$' end
local created = {}
for _, name in ipairs(ARGV) do
  if not existing[name] then
    redis.call('XGROUP', 'CREATE', KEYS[1], name, start, 'MKSTREAM')
    existing[name] = true
    created[#created + 1] = name
  end
end
return {start, created}
"""


async def ensure_groups(redis: aioredis.Redis, keys: Keys, groups: Iterable[str]) -> dict[str, str]:
    """Create those of ``groups`` that do not exist on the outbox, in one atomic step; returns each created group
    with the id it starts after (``0`` or ``$``), empty when all existed.

    Pass every sink's group, not one: the start depends on whether the stream is being read.

    * **No group reads the stream** (it does not exist, or was recreated by an ``XADD`` after Redis lost its data,
      or is a fresh install's first entries): every entry in it is undelivered, so the groups start at ``0``, all
      of them at once. Created one by one, the first would start at ``0`` and every later one at ``$``, skipping
      what was enqueued in between without a dead letter.
    * **Other groups read it**: the stream existed before these groups, which belong to sinks added to a running
      install; they start at ``$``, the current last id, so a new sink is not sent the history. ``0`` would replay
      whatever the stream still holds, which is everything since the slowest group's oldest pending entry, months
      behind if a sink is down or a removed sink's group was left. A marker of "the first entry since the wipe"
      would need state that survives the wipe, which Redis does not keep; after a wipe the stream's first entry
      *is* the first since it, and ``0`` starts there.

    Call it for every sink before anything is enqueued (the composition root does so at start-up), and again with
    every sink's group when one is found missing (``OutboxGroupMissingError``).
    """
    names = list(dict.fromkeys(groups))
    if not names:
        return {}
    with _translated("creating outbox consumer groups"):
        reply: Any = await redis.eval(_ENSURE_GROUPS, 1, keys.outbox, *names)
    start = _text(reply[0])
    return {_text(name): start for name in reply[1]}


async def ensure_group(redis: aioredis.Redis, keys: Keys, group: str) -> str | None:
    """Create ``group`` alone unless it exists (see ``ensure_groups``); returns its start id, or None."""
    return (await ensure_groups(redis, keys, [group])).get(group)


# Removes the entries every group has finished with: those older than the oldest entry any group still holds
# (pending) or has not read yet (after its last-delivered id). Atomic, so no group can move in between.
_TRIM_DELIVERED = """
local function older(a, b)
  local ams, aseq = string.match(a, '(%d+)-(%d+)')
  local bms, bseq = string.match(b, '(%d+)-(%d+)')
  ams, aseq, bms, bseq = tonumber(ams), tonumber(aseq), tonumber(bms), tonumber(bseq)
  return ams < bms or (ams == bms and aseq < bseq)
end
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local groups = redis.call('XINFO', 'GROUPS', KEYS[1])
if #groups == 0 then return 0 end
local floor = nil
for _, group in ipairs(groups) do
  local info = {}
  for i = 1, #group, 2 do info[group[i]] = group[i + 1] end
  local keep = info['last-delivered-id']
  if tonumber(info['pending']) > 0 then
    local summary = redis.call('XPENDING', KEYS[1], info['name'])
    if older(summary[2], keep) then keep = summary[2] end
  end
  if floor == nil or older(keep, floor) then floor = keep end
end
return redis.call('XTRIM', KEYS[1], 'MINID', floor)
"""


async def trim_delivered(redis: aioredis.Redis, keys: Keys) -> int:
    """Drop outbox entries that every sink's group has delivered or dead-lettered; returns how many went.

    Undelivered entries (pending, or not yet read by some group) are never trimmed.
    """
    with _translated("trimming the outbox"):
        return int(await redis.eval(_TRIM_DELIVERED, 1, keys.outbox))


@dataclass(frozen=True, slots=True)
class OutboxCounts:
    """The outbox at a glance: its entries, each group's pending entries (read, not yet settled), dead letters."""

    entries: int
    pending: list[tuple[str, int]]
    dead: int


async def outbox_counts(redis: aioredis.Redis, keys: Keys) -> OutboxCounts:
    """What ``monitor status`` shows of the outbox (groups are listed only while the stream has entries)."""
    with _translated("reading the outbox"):
        entries = await redis.xlen(keys.outbox)
        groups: list[dict[str, Any]] = await redis.xinfo_groups(keys.outbox) if entries else []
        dead = await redis.xlen(keys.dead)
    return OutboxCounts(int(entries), [(_text(g["name"]), int(g["pending"])) for g in groups], int(dead))
