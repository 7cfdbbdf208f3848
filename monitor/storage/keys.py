"""Every Redis key, TTL and stream cap the monitor uses, in one place.

All keys carry one hash tag (``{namespace}``) so that Lua scripts touching several keys stay valid on a Redis
Cluster: the monitor's keyspace is small and lives in one slot. ``replay`` uses its own namespace so a backtest
never touches live state.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ALERT_LOG_RETENTION_S",
    "CLUSTER_LOCK_TTL_MS",
    "DEAD_MAXLEN",
    "EVENT_TTL_S",
    "FAMILY_INDEX_SIZE",
    "FINGERPRINT_TTL_S",
    "READY_PROBE_TTL_S",
    "SEEN_TTL_S",
    "VALIDATORS_TTL_S",
    "Keys",
]

#: How long an article identity is remembered. Longer than any sensible ``max_age_hours``, so an article
#: old enough to have been forgotten is also too old to alert on.
SEEN_TTL_S = 30 * 24 * 3600
#: How long a content fingerprint (wire copy syndicated under other URLs) is remembered: long enough for a story
#: to make its rounds, short enough that two different events with the same stock headline weeks apart both alert.
FINGERPRINT_TTL_S = 72 * 3600
#: How long an event is kept after it was last written; later articles start a new event anyway.
EVENT_TTL_S = 30 * 24 * 3600
#: How long alerts stay in the alert log that digests read.
ALERT_LOG_RETENTION_S = 35 * 24 * 3600
#: How long HTTP validators (ETag / Last-Modified) of a feed are kept without being refreshed.
VALIDATORS_TTL_S = 30 * 24 * 3600
#: The family index keeps the events with the latest event times; scores are event times, which a backlog reads out
#: of order, so it is bounded by size rather than by a time cut-off.
FAMILY_INDEX_SIZE = 2000
#: How long a family's clustering lock lasts if its holder dies without releasing it.
CLUSTER_LOCK_TTL_MS = 10_000
#: Approximate cap on the dead-letter stream, so a sink that refuses everything for months cannot fill Redis;
#: far more than anyone reviews by hand.
DEAD_MAXLEN = 10_000
#: How long a readiness probe's key lives: a few seconds, so a probe's write never outlives the probe.
READY_PROBE_TTL_S = 5


@dataclass(frozen=True, slots=True)
class Keys:
    namespace: str = "monitor"

    @property
    def _p(self) -> str:
        return "{" + self.namespace + "}"

    @property
    def pattern(self) -> str:
        """A SCAN pattern matching every key of this namespace (``replay`` drops its namespace with it)."""
        return f"{self._p}:*"

    def seen(self, article_id: str) -> str:
        """Claimed article identities (SET NX with TTL)."""
        return f"{self._p}:seen:{article_id}"

    def fingerprint(self, digest: str) -> str:
        """Exact content fingerprint (normalised title and opening text) -> the event its article joined."""
        return f"{self._p}:fp:{digest}"

    def fingerprint_lookup(self, digest: str | None) -> str:
        """The fingerprint key to look ``digest`` up under; without a digest one that is never written (``-`` is
        no digest), so the lookup finds nothing."""
        return self.fingerprint(digest or "-")

    def article_fingerprint(self, digest: str | None, article_id: str) -> str:
        """The fingerprint key an article's commit writes: its digest's, or when it has none one of its own
        (``none:<article id>``) that no other article can share."""
        return self.fingerprint(digest or f"none:{article_id}")

    def event(self, event_id: str) -> str:
        """One event's state (JSON)."""
        return f"{self._p}:event:{event_id}"

    @property
    def events(self) -> str:
        """Sorted set: event id -> first-seen time; the listing and the escalation index read it."""
        return f"{self._p}:events"

    def band(self, band: str) -> str:
        """Set of events whose articles share one MinHash band (near-duplicate lookup)."""
        return f"{self._p}:lsh:{band}"

    def entity_events(self, entity: str) -> str:
        """Sorted set of events naming a salient entity, by first-seen time."""
        return f"{self._p}:ent:{entity}"

    def family_events(self, family: str) -> str:
        """Sorted set of a family's events by the time of their latest article (recent-report lookup)."""
        return f"{self._p}:family:{family}"

    def cluster_lock(self, family: str) -> str:
        return f"{self._p}:lock:cluster:{family}"

    @property
    def escalation(self) -> str:
        """Hash with the current escalation level, its score and when it last changed."""
        return f"{self._p}:escalation"

    @property
    def outbox(self) -> str:
        """The outbox stream; one consumer group per sink reads it."""
        return f"{self._p}:outbox"

    @property
    def alert_log(self) -> str:
        """Stream of every alert sent (events, revisions, escalations), trimmed by age: what digests summarise."""
        return f"{self._p}:alerts"

    def digest_sent(self, name: str, window: str) -> str:
        """SET NX marker: digest ``name`` for the window starting ``window`` went out (once across replicas)."""
        return f"{self._p}:digest:{name}:{window}"

    def digest_since(self, name: str) -> str:
        """When digest ``name`` was first scheduled on this Redis (ISO-8601 UTC); kept without expiry, one small key
        per digest name, so that a fresh install starts with the next window (see ``monitor.digests.send``)."""
        return f"{self._p}:digest-since:{name}"

    @property
    def dead(self) -> str:
        """Dead-letter stream: alerts a sink refused for good or gave up on, with the reason."""
        return f"{self._p}:dead"

    def attempts(self, sink: str) -> str:
        """Hash: outbox entry id -> delivery attempts so far, for one sink (survives restarts)."""
        return f"{self._p}:attempts:{sink}"

    def validators(self, feed: str) -> str:
        """Hash with the feed's last ETag and Last-Modified."""
        return f"{self._p}:http:{feed}"

    def feed_state(self, feed: str) -> str:
        """Hash with the feed's health: last success, consecutive errors, last status."""
        return f"{self._p}:feed:{feed}"

    def feed_lease(self, feed: str) -> str:
        """A replica's token while it polls the feed (SET with a TTL of about one interval;
        see ``monitor.storage.leases``)."""
        return f"{self._p}:lease:feed:{feed}"

    @property
    def generation(self) -> str:
        """The generation marker (JSON, no expiry): which state this Redis holds, so that an emptied or replaced
        Redis is noticed (see ``monitor.storage.generation``)."""
        return f"{self._p}:generation"

    def ready_probe(self, replica: str) -> str:
        """What ``/readyz`` writes to prove the primary takes writes (SET with a TTL of ``READY_PROBE_TTL_S``; see
        ``monitor.storage.readiness``); one per replica."""
        return f"{self._p}:ready:{replica}"

    def chat_message(self, sink: str, event_id: str) -> str:
        """The chat message that shows an event in one sink (JSON: its id, channel and revision; TTL
        ``EVENT_TTL_S``), so revisions edit it; see ``monitor.storage.messages``."""
        return f"{self._p}:chat:{sink}:{event_id}"

    def chat_posting(self, sink: str, event_id: str) -> str:
        """SET NX marker while a replica posts an event's first chat message, so no other one posts it too."""
        return f"{self._p}:chat-posting:{sink}:{event_id}"

    @property
    def escalation_history(self) -> str:
        """Sorted set of escalation index samples by time (the dashboard's chart; see ``storage.dashboard``)."""
        return f"{self._p}:escalation:history"

    def rule_hits(self, day: str) -> str:
        """Hash: alert rule -> new articles it matched on one UTC day (``YYYY-MM-DD``)."""
        return f"{self._p}:hits:{day}"

    def shadow_rules(self, day: str) -> str:
        """Set of the shadow rules that matched on one UTC day."""
        return f"{self._p}:hits:{day}:shadow"

    def shadow_hits(self, day: str, rule: str) -> str:
        """HyperLogLog of the articles a shadow rule matched on one UTC day (each counted once)."""
        return f"{self._p}:hits:{day}:shadow:{rule}"

    def feed_leads(self, feed: str) -> str:
        """Hash: how often a feed reported an event first, and its leads over the next outlet (minutes, JSON)."""
        return f"{self._p}:leads:{feed}"

    def event_revisions(self, event_id: str) -> str:
        """List of an event's alerted revisions (JSON: revision, time, severity, changes), for its timeline."""
        return f"{self._p}:revisions:{event_id}"
