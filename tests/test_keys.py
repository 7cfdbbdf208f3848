"""Every Redis key name, byte for byte: data written by earlier versions must still be found after any change."""

from __future__ import annotations

from monitor.storage.keys import (
    ALERT_LOG_RETENTION_S,
    CLUSTER_LOCK_TTL_MS,
    DEAD_MAXLEN,
    EVENT_TTL_S,
    FAMILY_INDEX_SIZE,
    FINGERPRINT_TTL_S,
    READY_PROBE_TTL_S,
    SEEN_TTL_S,
    VALIDATORS_TTL_S,
    Keys,
)


def test_key_names_are_stable() -> None:
    keys = Keys()
    assert {
        "seen": keys.seen("a1"),
        "fingerprint": keys.fingerprint("0f3a"),
        "fingerprint_lookup": keys.fingerprint_lookup("0f3a"),
        "fingerprint_lookup_none": keys.fingerprint_lookup(None),
        "article_fingerprint": keys.article_fingerprint("0f3a", "a1"),
        "article_fingerprint_none": keys.article_fingerprint(None, "a1"),
        "event": keys.event("e1"),
        "events": keys.events,
        "band": keys.band("3:ab"),
        "entity_events": keys.entity_events("baghdad"),
        "family_events": keys.family_events("strike"),
        "cluster_lock": keys.cluster_lock("strike"),
        "escalation": keys.escalation,
        "outbox": keys.outbox,
        "alert_log": keys.alert_log,
        "digest_sent": keys.digest_sent("daily", "2024-01-04T07:00Z"),
        "dead": keys.dead,
        "attempts": keys.attempts("hook"),
        "validators": keys.validators("wire"),
        "feed_state": keys.feed_state("wire"),
        "feed_lease": keys.feed_lease("wire"),
        "ready_probe": keys.ready_probe("r1"),
        "pattern": keys.pattern,
    } == {
        "seen": "{monitor}:seen:a1",
        "fingerprint": "{monitor}:fp:0f3a",
        "fingerprint_lookup": "{monitor}:fp:0f3a",
        "fingerprint_lookup_none": "{monitor}:fp:-",
        "article_fingerprint": "{monitor}:fp:0f3a",
        "article_fingerprint_none": "{monitor}:fp:none:a1",
        "event": "{monitor}:event:e1",
        "events": "{monitor}:events",
        "band": "{monitor}:lsh:3:ab",
        "entity_events": "{monitor}:ent:baghdad",
        "family_events": "{monitor}:family:strike",
        "cluster_lock": "{monitor}:lock:cluster:strike",
        "escalation": "{monitor}:escalation",
        "outbox": "{monitor}:outbox",
        "alert_log": "{monitor}:alerts",
        "digest_sent": "{monitor}:digest:daily:2024-01-04T07:00Z",
        "dead": "{monitor}:dead",
        "attempts": "{monitor}:attempts:hook",
        "validators": "{monitor}:http:wire",
        "feed_state": "{monitor}:feed:wire",
        "feed_lease": "{monitor}:lease:feed:wire",
        "ready_probe": "{monitor}:ready:r1",
        "pattern": "{monitor}:*",
    }


def test_every_key_carries_the_namespace_hash_tag() -> None:
    keys = Keys("replay-1a2b")
    assert keys.outbox == "{replay-1a2b}:outbox" and keys.fingerprint_lookup("") == "{replay-1a2b}:fp:-"
    assert keys.pattern == "{replay-1a2b}:*"


def test_ttls_and_caps() -> None:
    day = 24 * 3600
    found = {
        "seen": SEEN_TTL_S,
        "fingerprint": FINGERPRINT_TTL_S,
        "event": EVENT_TTL_S,
        "alert_log": ALERT_LOG_RETENTION_S,
        "validators": VALIDATORS_TTL_S,
        "cluster_lock_ms": CLUSTER_LOCK_TTL_MS,
        "dead_maxlen": DEAD_MAXLEN,
        "family_index_size": FAMILY_INDEX_SIZE,
        "ready_probe": READY_PROBE_TTL_S,
    }
    assert found == {
        "seen": 30 * day,
        "fingerprint": 72 * 3600,
        "event": 30 * day,
        "alert_log": 35 * day,
        "validators": 30 * day,
        "cluster_lock_ms": 10_000,
        "dead_maxlen": 10_000,
        "family_index_size": 2000,
        "ready_probe": 5,
    }
