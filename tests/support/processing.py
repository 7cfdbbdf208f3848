"""A processor on the suite's Redis with the default event and escalation policies, for tests that feed it
articles directly."""

from __future__ import annotations

import redis.asyncio as aioredis

from monitor.config import Config
from monitor.core.clock import Clock
from monitor.detection.matcher import Matcher
from monitor.processing.policies import policies
from monitor.processing.processor import Processor
from monitor.storage.events import EventStore
from monitor.storage.keys import Keys


def default_processor(redis: aioredis.Redis, matcher: Matcher, clock: Clock) -> Processor:
    event_policy, escalation_policy = policies(Config().events, Config().escalation)
    return Processor(
        matcher,
        EventStore(redis, Keys()),
        clock,
        max_age_hours=0,
        event_policy=event_policy,
        escalation_policy=escalation_policy,
    )
