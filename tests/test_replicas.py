"""Two ``monitor run`` replicas on one Redis share the work: each feed is fetched about as often as one replica
alone fetches it (per-feed leases), every alert reaches the sink once per event id, and nothing is lost.

A single replica runs at the same time, on its own embedded Redis and its own copy of the feeds, so the two
request counts compare like with like (same feeds, same moments, same adaptive schedule).
"""

from __future__ import annotations

import asyncio
import socket
from collections import Counter
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from monitor.config import Config, with_environment
from monitor.core.errors import ConfigError
from monitor.service.root import replica_name
from monitor.storage.keys import Keys
from monitor.storage.leases import FeedLeases, lease_ttl_ms, replica_token
from tests.support.articles import ESCALATION, UNRELATED, Item, rss
from tests.support.daemons import log_events, start_daemon, stop_daemon, wait_for_log
from tests.support.feedserver import FeedServer
from tests.support.webhook_receiver import WebhookReceiver

ROOT = Path(__file__).resolve().parents[1]
SECRET = "whsec_" + "cmVwbGljYS10ZXN0LXNlY3JldC0wMTIzNDU2Nzg5"
FEEDS = 20
WINDOW_S = 6.0
#: ESCALATION[0] is syndicated: the same item (same guid and link) in three feeds, so replicas race to claim it.
SYNDICATED = (0, 7, 14)


def filler(feed: int) -> list[Item]:
    return [Item(f"f{feed}-calm-{i}", f"{u.title} ({feed}.{i})", u.description) for i, u in enumerate(UNRELATED)]


def content(feed: int, *, late: bool) -> bytes:
    items = filler(feed)
    if feed in SYNDICATED:
        items.append(ESCALATION[0])
    if feed in (3, 9):
        items.append(ESCALATION[1 if feed == 3 else 2])
    if late and feed == 11:  # published during the run
        items += [ESCALATION[3], ESCALATION[4]]
    return rss(items)


def write_config(path: Path, feeds: FeedServer, hook_url: str, redis: str | None) -> Path:
    lines = "\n".join(
        f'  - {{name: feed{i:02d}, url: "{feeds.url(f"/feed{i:02d}.xml")}", interval_s: 1}}' for i in range(FEEDS)
    )
    path.write_text(f"""\
rules: [{ROOT / "rules"}]
redis: {{url: {redis or "embedded"}, data_dir: {path.parent / "data"}}}
fetch: {{allow_private_networks: true, timeout_s: 5}}
feeds:
{lines}
alerts:
  sinks:
    - {{type: webhook, name: hook, url: "{hook_url}", secret: "{SECRET}"}}
metrics: {{port: 0}}
log: {{format: json}}
escalation: {{thresholds: [1000, 2000, 3000, 4000]}}
""")
    return path


def publish(servers: list[FeedServer], *, late: bool) -> None:
    for server in servers:
        for i in range(FEEDS):
            server.set_feed(f"/feed{i:02d}.xml", content(i, late=late))


def hits(server: FeedServer) -> Counter[str]:
    return Counter(r.path for r in server.requests if r.path.startswith("/feed"))


async def all_polled(server: FeedServer, timeout_s: float = 30) -> None:
    for _ in range(int(timeout_s / 0.05)):
        if len(hits(server)) == FEEDS:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"only {len(hits(server))} of {FEEDS} feeds were polled within {timeout_s}s")


@pytest.mark.timeout(60)
async def test_two_replicas_fetch_each_feed_about_once_per_interval_and_alert_once(
    redis: aioredis.Redis, redis_url: str, tmp_path: Path
) -> None:
    (tmp_path / "pair").mkdir()
    (tmp_path / "solo").mkdir()
    async with (
        FeedServer() as pair_feeds,
        FeedServer() as solo_feeds,
        WebhookReceiver(SECRET) as rx,
        WebhookReceiver(SECRET) as solo_rx,
    ):
        publish([pair_feeds, solo_feeds], late=False)
        pair_config = write_config(tmp_path / "pair" / "monitor.yaml", pair_feeds, rx.url, redis_url)
        solo_config = write_config(tmp_path / "solo" / "monitor.yaml", solo_feeds, solo_rx.url, None)
        logs = [tmp_path / "pair" / "r1.log", tmp_path / "pair" / "r2.log", tmp_path / "solo" / "solo.log"]
        daemons = [
            await start_daemon(pair_config, logs[0], MONITOR_REPLICA="r1"),
            await start_daemon(pair_config, logs[1], MONITOR_REPLICA="r2"),
            await start_daemon(solo_config, logs[2], drop=("REDIS_URL",), MONITOR_REPLICA="solo"),
        ]
        try:
            await asyncio.gather(*(wait_for_log(log, "monitor_started") for log in logs))
            await asyncio.gather(all_polled(pair_feeds), all_polled(solo_feeds))
            pair_before, solo_before = hits(pair_feeds), hits(solo_feeds)
            await asyncio.sleep(WINDOW_S / 2)
            publish([pair_feeds, solo_feeds], late=True)
            await asyncio.sleep(WINDOW_S / 2)
            pair_counts, solo_counts = hits(pair_feeds) - pair_before, hits(solo_feeds) - solo_before
            await rx.wait_for(5, timeout_s=10)
            await solo_rx.wait_for(5, timeout_s=10)
            await asyncio.sleep(1.5)  # room for a duplicate to show up
        finally:
            codes = [await stop_daemon(d) for d in daemons]
    assert codes == [0, 0, 0]

    pair_total, solo_total = sum(pair_counts.values()), sum(solo_counts.values())
    ratio = pair_total / solo_total
    worst = max(pair_counts[f] - solo_counts[f] for f in solo_counts)
    print(f"\nfetches in {WINDOW_S:.0f}s over {FEEDS} feeds: two replicas {pair_total}, one replica {solo_total}, ")
    print(f"ratio {ratio:.2f}; worst feed {worst:+d} against one replica")
    assert solo_total >= FEEDS * 2  # the measurement means something: every feed polled repeatedly
    assert ratio <= 1.3, (pair_counts, solo_counts)
    assert len(pair_counts) == FEEDS  # every feed kept being polled

    # Both replicas did some of the polling (leases move between them), and they skipped the rest.
    polled = {
        log.stem: sum(1 for e in log_events(log) if e.get("event") in ("feed_fetched", "feed_not_modified"))
        for log in logs[:2]
    }
    assert all(polled.values()), polled

    # Nothing lost, nothing alerted twice under two ids (the same id twice would be an at-least-once redelivery).
    ids_by_article: dict[str, set[str]] = {}
    for alert in rx.alerts:
        ids_by_article.setdefault(alert["articles"][0]["url"], set()).add(alert["id"])
    assert sorted(ids_by_article) == sorted(f"https://news.example.org/{i.guid}" for i in ESCALATION)
    assert all(len(ids) == 1 for ids in ids_by_article.values()), ids_by_article
    repeats = len(rx.alerts) - len({a["id"] for a in rx.alerts})
    print(f"alerts: {len(rx.alerts)} delivered for {len(ids_by_article)} events; same-id repeats: {repeats}")
    assert sorted(a["id"] for a in solo_rx.alerts) == sorted({a["id"] for a in rx.alerts})
    assert rx.invalid_signatures == []


async def test_a_lease_is_taken_once_renewed_by_its_holder_and_released_only_by_it(redis: aioredis.Redis) -> None:
    keys = Keys()
    one, two = FeedLeases(redis, keys, replica_token("r1")), FeedLeases(redis, keys, replica_token("r1"))
    assert one.token != two.token  # one name by mistake on two processes still gives two tokens
    assert await one.acquire("wire", 5000) is None
    assert await two.acquire("wire", 5000) == one.token  # held: skip, and who holds it
    assert await one.acquire("wire", 60_000) is None  # the holder renews it (its schedule fired early)
    assert 5000 < await redis.pttl(keys.feed_lease("wire")) <= 60_000
    assert not await two.release("wire")  # never another holder's
    assert await redis.get(keys.feed_lease("wire")) == one.token.encode()
    assert await one.release("wire")
    assert await two.acquire("wire", 5000) is None


def test_the_lease_ends_a_margin_before_the_next_poll() -> None:
    assert lease_ttl_ms(1) == 900
    assert lease_ttl_ms(300) == 270_000
    assert lease_ttl_ms(3600) == 3_570_000  # the margin is at most 30 s


def test_monitor_replica_overrides_the_configured_name() -> None:
    config = Config.model_validate({"replica_name": "desk-1"})
    assert replica_name(config) == "desk-1"
    assert with_environment(config, {"MONITOR_REPLICA": "desk-2"}).replica_name == "desk-2"
    assert replica_name(Config()) == socket.gethostname()
    with pytest.raises(ConfigError, match="MONITOR_REPLICA"):
        with_environment(config, {"MONITOR_REPLICA": "two words"})
