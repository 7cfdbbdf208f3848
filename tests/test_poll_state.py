"""The two scripts of a poll (``PollState.begin_poll`` / ``PollState.finish_poll``) against a real Redis, each test with
and without the batcher; and what a poll costs Redis through the app."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from monitor.config import Config, RedisConfig
from monitor.core.clock import SystemClock
from monitor.core.errors import StoreError
from monitor.core.models import PollResult, Validators
from monitor.detection.rulefile import load_rules
from monitor.service.root import App, build_app
from monitor.storage.batch import ScriptBatch
from monitor.storage.connection import connect
from monitor.storage.keys import VALIDATORS_TTL_S, Keys
from monitor.storage.pollstate import PollState
from tests.support.articles import ESCALATION, UNRELATED, rss
from tests.support.feedserver import FeedServer

ROOT = Path(__file__).resolve().parents[1]
AT = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
KEYS = Keys()


@pytest.fixture(params=["batched", "direct"])
def store(request: pytest.FixtureRequest, redis: aioredis.Redis) -> PollState:
    return PollState(redis, KEYS, batch=ScriptBatch(redis) if request.param == "batched" else None)


async def test_begin_takes_the_lease_and_reads_nothing_on_a_new_feed(store: PollState, redis: aioredis.Redis) -> None:
    start = await store.begin_poll("wire", lease_token="r1/1/aa", lease_ttl_ms=5000)
    assert start.holder is None and start.validators is None
    assert (start.interval_s, start.body_digest, start.consecutive_errors) == (None, None, 0)
    assert await redis.get(KEYS.feed_lease("wire")) == b"r1/1/aa"
    assert 4000 < await redis.pttl(KEYS.feed_lease("wire")) <= 5000


async def test_a_lease_held_elsewhere_names_its_holder_until_it_expires(
    store: PollState, redis: aioredis.Redis
) -> None:
    await store.finish_poll(
        "wire", PollResult(at=AT, ok=True, status=200, items=1, latency_s=0.1, validators=Validators("e1"))
    )
    assert (await store.begin_poll("wire", lease_token="r1", lease_ttl_ms=200)).holder is None
    held = await store.begin_poll("wire", lease_token="r2", lease_ttl_ms=5000)
    assert held.holder == "r1" and held.validators is None  # skip: nothing else read
    assert (await store.begin_poll("wire", lease_token="r1", lease_ttl_ms=60_000)).holder is None  # renewed
    assert 5000 < await redis.pttl(KEYS.feed_lease("wire")) <= 60_000
    await redis.pexpire(KEYS.feed_lease("wire"), 50)
    await asyncio.sleep(0.1)
    taken = await store.begin_poll("wire", lease_token="r2", lease_ttl_ms=5000)  # expired: r2 takes the feed over
    assert taken.holder is None and taken.validators == Validators("e1")
    assert await redis.get(KEYS.feed_lease("wire")) == b"r2"
    # Without a token (``monitor once``) a poll neither looks at the lease nor touches it.
    assert (await store.begin_poll("wire")).holder is None
    assert await redis.get(KEYS.feed_lease("wire")) == b"r2"


async def test_validators_are_saved_only_by_finish_and_kept_by_a_304(store: PollState, redis: aioredis.Redis) -> None:
    assert (await store.begin_poll("wire")).validators is None
    await store.finish_poll(
        "wire",
        PollResult(
            at=AT,
            ok=True,
            status=200,
            items=3,
            latency_s=0.2,
            validators=Validators(etag='"v1"', last_modified="Sat, 21 Nov 2026 09:00:00 GMT"),
        ),
    )
    assert (await store.begin_poll("wire")).validators == Validators('"v1"', "Sat, 21 Nov 2026 09:00:00 GMT")
    assert VALIDATORS_TTL_S - 10 < await redis.ttl(KEYS.validators("wire")) <= VALIDATORS_TTL_S
    await store.finish_poll(
        "wire", PollResult(at=AT, ok=True, status=304, items=0, latency_s=0.1)
    )  # no validators given
    assert (await store.begin_poll("wire")).validators == Validators('"v1"', "Sat, 21 Nov 2026 09:00:00 GMT")
    await store.finish_poll(
        "wire", PollResult(at=AT, ok=True, status=200, items=1, latency_s=0.1, validators=Validators())
    )
    assert (await store.begin_poll("wire")).validators == Validators(None, None)  # a server that sends none


async def test_a_validator_that_is_not_text_is_not_saved_and_harms_no_other_feed(store: PollState) -> None:
    """aiohttp keeps header bytes that are not UTF-8 as surrogate escapes, which Redis cannot be sent: such a
    validator is dropped (the feed is fetched in full next time), and the polls recorded beside it are unaffected."""
    odd = PollResult(at=AT, ok=True, status=200, items=1, latency_s=0.1, validators=Validators('"a\udcff"', "x\udc80"))
    fine = PollResult(at=AT, ok=True, status=200, items=1, latency_s=0.1, validators=Validators('"v1"'))
    await asyncio.gather(store.finish_poll("odd", odd), *(store.finish_poll(f"fine{i}", fine) for i in range(3)))
    assert (await store.begin_poll("odd")).validators == Validators(None, None)
    assert [(await store.begin_poll(f"fine{i}")).validators for i in range(3)] == [Validators('"v1"')] * 3
    assert (await store.feed_health("odd"))["last_status"] == "200"


async def test_health_counts_consecutive_errors_and_resets_on_success(store: PollState) -> None:
    counts = []
    for _ in range(3):
        record = await store.finish_poll(
            "wire", PollResult(at=AT, ok=False, status=503, items=0, latency_s=1.5, error="HTTP 503")
        )
        counts.append((record.errors_before, record.errors_after))
    assert counts == [(0, 1), (1, 2), (2, 3)]
    assert (await store.begin_poll("wire")).consecutive_errors == 3
    health = await store.feed_health("wire")
    assert health == {
        "last_attempt": AT.isoformat(),
        "last_status": "503",
        "last_latency_s": "1.500",
        "last_error": "HTTP 503",
        "consecutive_errors": "3",
    }
    later = AT.replace(hour=11)
    record = await store.finish_poll(
        "wire",
        PollResult(at=later, ok=True, status=200, items=20, latency_s=0.25, interval_s=450.0, body_digest="abc123"),
    )
    assert (record.errors_before, record.errors_after) == (3, 0)
    await store.finish_poll(
        "wire", PollResult(at=later, ok=True, status=304, items=0, latency_s=0.05, interval_s=562.5)
    )
    health = await store.feed_health("wire")
    assert health == {
        "last_attempt": later.isoformat(),
        "last_status": "304",
        "last_latency_s": "0.050",
        "last_error": "",
        "consecutive_errors": "0",
        "last_success": later.isoformat(),
        "items_seen": "20",
        "interval_s": "562.5",
        "body_digest": "abc123",
    }
    start = await store.begin_poll("wire")
    assert (start.interval_s, start.body_digest, start.consecutive_errors) == (562.5, "abc123", 0)


async def test_finish_stretches_the_lease_only_while_this_replica_holds_it(
    store: PollState, redis: aioredis.Redis
) -> None:
    lease = KEYS.feed_lease("wire")
    await store.begin_poll("wire", lease_token="r1", lease_ttl_ms=5000)
    done = PollResult(at=AT, ok=True, status=304, items=0, latency_s=0.1)
    record = await store.finish_poll("wire", done, lease_token="r1", lease_ttl_ms=60_000)
    assert record.lease_left_s == 60.0 and 59_000 < await redis.pttl(lease) <= 60_000
    record = await store.finish_poll("wire", done, lease_token="r1", lease_ttl_ms=1000)
    assert record.lease_left_s is not None and 59 < record.lease_left_s <= 60  # never shortened
    assert (await store.finish_poll("wire", done)).lease_left_s is None
    await redis.set(lease, "r2", px=5000)  # r1's lease ran out during the poll and r2 took the feed
    record = await store.finish_poll("wire", done, lease_token="r1", lease_ttl_ms=60_000)
    assert record.lease_left_s is None
    assert await redis.get(lease) == b"r2" and await redis.pttl(lease) <= 5000
    await redis.delete(lease)  # gone: not taken again by a finish
    record = await store.finish_poll("wire", done, lease_token="r1", lease_ttl_ms=60_000)
    assert record.lease_left_s is None and not await redis.exists(lease)


@pytest.mark.parametrize("batched", [True, False])
async def test_redis_failures_surface_as_store_errors(tmp_path: Path, batched: bool) -> None:
    client = connect(f"unix://{tmp_path / 'nothing.sock'}", RedisConfig(socket_timeout_s=1, connect_timeout_s=1))
    store = PollState(client, KEYS, batch=ScriptBatch(client) if batched else None)
    try:
        with pytest.raises(StoreError, match="reading feed state"):
            await store.begin_poll("wire", lease_token="r1", lease_ttl_ms=1000)
        with pytest.raises(StoreError, match="recording feed health"):
            await store.finish_poll("wire", PollResult(at=AT, ok=True, status=304, items=0, latency_s=0.1))
    finally:
        await client.aclose()


# -- through the app -----------------------------------------------------------------------------------------------


@pytest.fixture
async def feeds() -> AsyncIterator[FeedServer]:
    async with FeedServer() as server:
        server.set_feed("/wire.xml", rss([*ESCALATION[:1], *UNRELATED]))
        yield server


async def make_app(redis: aioredis.Redis, feeds: FeedServer, *, leases: bool = True) -> App:
    config = Config.model_validate(
        {
            "fetch": {"allow_private_networks": True, "timeout_s": 5},
            "feeds": [{"name": "wire", "url": feeds.url("/wire.xml"), "interval_s": 60}],
            "alerts": {"sinks": [{"type": "console"}]},
            "escalation": {"thresholds": [1000, 2000, 3000, 4000]},
        }
    )
    app = await build_app(
        config,
        load_rules([ROOT / "rules"]),
        clock=SystemClock(),
        redis=redis,
        stdout=io.StringIO(),
        consumer="t",
        parse_in_workers=False,
        fetch_leases=leases,
    )
    await app.start()
    return app


#: What the two scripts call inside Redis (COMMANDSTATS counts those too).
IN_SCRIPTS = {"get", "set", "hmget", "hget", "hset", "hincrby", "expire", "pttl", "pexpire"}


async def commands_sent(redis: aioredis.Redis) -> int:
    """EVALSHAs clients sent since the last CONFIG RESETSTAT; fails on any other command than those and the ones
    the poll scripts run inside Redis."""
    stats = await redis.info("commandstats")
    calls = {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}
    others = set(calls) - IN_SCRIPTS - {"evalsha", "info", "config", "config|resetstat"}
    assert not others, calls
    return calls.get("evalsha", 0)


@pytest.mark.parametrize("leases", [True, False])
async def test_a_poll_costs_two_script_calls_and_the_lease_needs_no_more(
    redis: aioredis.Redis, feeds: FeedServer, monkeypatch: pytest.MonkeyPatch, leases: bool
) -> None:
    feeds.set_feed("/wire.xml", rss([]))  # no items: the pipeline after the parser sends nothing to Redis
    app = await make_app(redis, feeds, leases=leases)
    extended: list[str] = []

    async def acquire(feed: str, ttl_ms: int) -> None:
        extended.append(feed)

    if app.leases is not None:
        monkeypatch.setattr(app.leases, "acquire", acquire)
    try:
        await app.store.begin_poll("other")  # Redis knows both scripts from here on
        await app.store.finish_poll("other", PollResult(at=AT, ok=True, status=304, items=0, latency_s=0.0))
        for status in (200, 304):
            await redis.config_resetstat()
            assert await app.poll_feed(app.config.feeds[0]) is not None
            assert feeds.requests[-1].path == "/wire.xml"
            assert await commands_sent(redis) == 2, status
            # The lease already lasts until the next poll: extending it (as the daemon does after each poll) is free.
            await app.extend_lease(app.config.feeds[0])
            assert extended == []
        assert feeds.hits("/wire.xml") == 2
        lease = await redis.pttl(app.store.keys.feed_lease("wire"))
        if leases:
            wanted = app.next_delays["wire"] * 0.9 * 1000
            assert wanted - 1000 < lease <= wanted + 1
        else:
            assert lease == -2
    finally:
        await app.close()


async def test_a_feed_leased_elsewhere_is_skipped_without_a_fetch(redis: aioredis.Redis, feeds: FeedServer) -> None:
    app = await make_app(redis, feeds)
    try:
        await redis.set(app.store.keys.feed_lease("wire"), "other/1/ff", px=30_000)
        result = await app.poll_feed(app.config.feeds[0])
        assert result is not None and result.articles == 0
        assert feeds.hits("/wire.xml") == 0 and app.next_delays["wire"] == 60.0
        await app.extend_lease(app.config.feeds[0])
        assert await redis.get(app.store.keys.feed_lease("wire")) == b"other/1/ff"
    finally:
        await app.close()


async def test_a_failures_backoff_is_set_on_the_lease_in_the_same_step(
    redis: aioredis.Redis, feeds: FeedServer
) -> None:
    app = await make_app(redis, feeds)
    feed = app.config.feeds[0].model_copy(update={"url": feeds.url("/missing.xml")})
    try:
        for errors in (1, 2, 3):
            assert await app.poll_feed(feed) is None
            backoff = 60 * 2 ** (errors - 1)
            assert backoff * 0.9 <= app.next_delays["wire"] <= backoff * 1.1
            lease = await redis.pttl(app.store.keys.feed_lease("wire"))
            wanted = app.next_delays["wire"] * 900
            assert wanted - 1000 < lease  # stretched to the backoff in the same step (a lease is never shortened)
            assert errors == 1 or lease <= wanted + 1
        assert (await app.store.feed_health("wire"))["consecutive_errors"] == "3"
    finally:
        await app.close()
