"""Prometheus metrics: the ``Observer`` of ``monitor.core.observe`` backed by prometheus-client,
on a registry of its own.

Never the library's global default registry: each ``Metrics`` owns one, so tests (and two apps in one process)
never see each other's counts. The outbox backlog is not counted here but read from Redis at scrape time
(``set_backlog``, called by the health server just before it renders), so every replica reports the same
figures and a removed sink's group disappears with it.

No ``*_created`` series: prometheus-client adds one beside every counter, histogram and summary (the Unix time the
child was first used), which doubles the series count and says nothing a scrape's own timestamps do not. Its switch
(``disable_created_metrics``) is process-wide, not per registry; the monitor has no other exposition, so
``Metrics`` turns it off when it is built.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from monitor.core.observe import FetchOutcome
from monitor.storage.backlog import SinkBacklog

__all__ = ["Metrics"]

# Feeds answer in tens of milliseconds to tens of seconds (the fetch timeout is 20 s by default).
_FETCH_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0)
# From enqueueing to a sink's 2xx: sub-second when all is well, minutes to hours while a sink is retried.
_LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 4 * 3600.0)


class _BacklogCollector(Collector):
    """Yields the last backlog snapshot; no Redis access here (``collect`` is synchronous)."""

    def __init__(self) -> None:
        self.snapshot: list[SinkBacklog] = []
        self.now_ms = 0

    def collect(self) -> Iterable[Metric]:
        backlog = GaugeMetricFamily(
            "monitor_outbox_backlog",
            "Alerts a sink has not yet accepted: pending (read, unacknowledged) plus not yet read",
            labels=["sink"],
        )
        pending = GaugeMetricFamily(
            "monitor_outbox_pending", "Alerts a sink has read but not yet acknowledged", labels=["sink"]
        )
        oldest = GaugeMetricFamily(
            "monitor_outbox_oldest_age_seconds",
            "Age of the oldest alert a sink has not yet accepted (0 when none)",
            labels=["sink"],
        )
        for group in self.snapshot:
            backlog.add_metric([group.sink], group.total)
            pending.add_metric([group.sink], group.pending)
            oldest.add_metric([group.sink], group.oldest_age_s(self.now_ms))
        return [backlog, pending, oldest]


class Metrics:
    """Every metric of the daemon; pass it wherever an ``Observer`` is taken."""

    def __init__(self, *, replica: str = "") -> None:
        disable_created_metrics()  # read when the registry is collected; see the module docstring
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.fetches = Counter(
            "monitor_feed_fetches", "Feed polls by outcome (ok, not_modified, error)", ["feed", "outcome"], registry=r
        )
        self.fetch_seconds = Histogram(
            "monitor_feed_fetch_seconds",
            "Time of a feed poll: fetch, parse and process (the latency_s of feed health)",
            ["feed"],
            buckets=_FETCH_BUCKETS,
            registry=r,
        )
        self.skipped = Counter(
            "monitor_feed_polls_skipped",
            "Polls skipped because another replica held the feed's lease",
            ["feed"],
            registry=r,
        )
        self.items = Counter("monitor_items_parsed", "Articles read from fetched feed bodies", ["feed"], registry=r)
        self.matches = Counter(
            "monitor_rule_matches", "New articles matched at the alert threshold, by rule", ["rule"], registry=r
        )
        self.opened = Counter("monitor_events_opened", "Events opened (first alerts)", ["event_type"], registry=r)
        self.revised = Counter("monitor_events_revised", "Event revision alerts", ["event_type"], registry=r)
        self.delivered = Counter("monitor_alerts_delivered", "Alerts a sink accepted", ["sink"], registry=r)
        self.failed = Counter(
            "monitor_alerts_failed", "Delivery attempts that failed and were retried", ["sink"], registry=r
        )
        self.dead = Counter("monitor_alerts_dead_lettered", "Alerts dead-lettered, by sink", ["sink"], registry=r)
        self.latency = Histogram(
            "monitor_detection_latency_seconds",
            "From an article's processing (its alert enqueued) to a sink accepting the alert",
            ["sink"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.reloads = Counter(
            "monitor_config_reloads", "SIGHUP reloads by result (ok, failed)", ["result"], registry=r
        )
        self.state_lost = Counter(
            "monitor_redis_state_lost", "Times Redis was found emptied or replaced (generation marker lost)", registry=r
        )
        self.info = Gauge("monitor_replica_info", "Always 1; the replica's name as a label", ["replica"], registry=r)
        if replica:
            self.info.labels(replica).set(1)
        self.redis_primary = Gauge(
            "monitor_redis_primary",
            "1 for the Redis node (host:port) that takes this replica's writes: the primary of its slot on a cluster, "
            "the one the sentinels name, else the server it connects to",
            ["address"],
            registry=r,
        )
        self.ready = Gauge(
            "monitor_ready", "1 when /readyz last answered 200 (checked at each probe and scrape), else 0", registry=r
        )
        self._primary: str | None = None
        self._backlog = _BacklogCollector()
        r.register(self._backlog)

    # -- Observer ----------------------------------------------------------------------------------------

    def feed_polled(self, feed: str, outcome: FetchOutcome, seconds: float) -> None:
        self.fetches.labels(feed, outcome).inc()
        self.fetch_seconds.labels(feed).observe(seconds)

    def feed_skipped(self, feed: str) -> None:
        self.skipped.labels(feed).inc()

    def items_parsed(self, feed: str, count: int) -> None:
        self.items.labels(feed).inc(count)

    def rules_matched(self, rules: Sequence[str]) -> None:
        for rule in rules:
            self.matches.labels(rule).inc()

    def event_opened(self, event_type: str) -> None:
        self.opened.labels(event_type).inc()

    def event_revised(self, event_type: str) -> None:
        self.revised.labels(event_type).inc()

    def alert_delivered(self, sink: str, latency_s: float | None) -> None:
        self.delivered.labels(sink).inc()
        if latency_s is not None:
            self.latency.labels(sink).observe(latency_s)

    def alert_failed(self, sink: str) -> None:
        self.failed.labels(sink).inc()

    def alert_dead_lettered(self, sink: str) -> None:
        self.dead.labels(sink).inc()

    def config_reloaded(self, ok: bool) -> None:
        self.reloads.labels("ok" if ok else "failed").inc()

    def redis_state_lost(self) -> None:
        self.state_lost.inc()

    # -- scraping ----------------------------------------------------------------------------------------

    def set_backlog(self, snapshot: list[SinkBacklog], now_ms: int) -> None:
        """The outbox backlog to report until the next call (read by ``monitor.storage.backlog.read_backlog``)."""
        self._backlog.snapshot = list(snapshot)
        self._backlog.now_ms = now_ms

    def set_ready(self, ready: bool) -> None:
        """What the last readiness check found (``monitor.service.health`` calls it at each probe and scrape)."""
        self.ready.set(1 if ready else 0)

    def set_redis_primary(self, address: str) -> None:
        """The primary found at the last scrape; the series of one found before goes."""
        if address != self._primary:
            self.redis_primary.clear()
            self._primary = address
        self.redis_primary.labels(address).set(1)

    def render(self) -> bytes:
        """The text exposition format of everything in this registry."""
        return generate_latest(self.registry)
