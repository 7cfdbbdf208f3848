"""Adaptive polling: faster when a feed changes, slower when it does not, polite to servers, patient on failure."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

from monitor.fetching.schedule import MAX_BACKOFF_S, Cadence, next_delay, server_hint

CADENCE = Cadence(base_s=300, min_s=60, max_s=1200)
NOW = datetime(2024, 1, 4, 12, 0, tzinfo=UTC)


def delay(**kwargs: object) -> tuple[float, float]:
    defaults: dict[str, object] = {"previous_s": 300.0, "changed": False, "failed": False, "consecutive_errors": 0}
    return next_delay(CADENCE, rng=random.Random(1), **{**defaults, **kwargs})  # type: ignore[arg-type]


def test_changes_speed_up_and_quiet_slows_down_within_bounds() -> None:
    interval = 300.0
    for _ in range(10):
        _, interval = delay(previous_s=interval, changed=True)
    assert interval == 60
    for _ in range(30):
        _, interval = delay(previous_s=interval)
    assert interval == 1200


def test_jitter_stays_within_ten_percent() -> None:
    delays = [
        next_delay(CADENCE, previous_s=300, changed=False, failed=False, consecutive_errors=0, rng=random.Random(seed))[
            0
        ]
        for seed in range(200)
    ]
    assert min(delays) >= 375 * 0.9 and max(delays) <= 375 * 1.1 and len(set(delays)) > 100


def test_failures_back_off_exponentially_and_honour_retry_after() -> None:
    steps = [delay(failed=True, consecutive_errors=n)[0] for n in (1, 2, 3, 10)]
    assert 270 <= steps[0] <= 330 and 540 <= steps[1] <= 660 and 1080 <= steps[2] <= 1320
    assert steps[3] <= MAX_BACKOFF_S * 1.1
    assert delay(failed=True, consecutive_errors=1, retry_after_s=3000)[0] >= 2700
    assert delay(failed=True, consecutive_errors=5)[1] == 300  # a failure does not change the learnt interval


def test_server_hints_are_a_floor_up_to_the_maximum() -> None:
    assert server_hint({"cache-control": "public, max-age=600"}, None, NOW) == 600
    assert server_hint({"cache-control": "no-cache, max-age=600"}, None, NOW) is None
    expires = format_datetime(NOW + timedelta(minutes=20))
    assert 1190 <= (server_hint({"expires": expires}, None, NOW) or 0) <= 1200
    assert server_hint({}, b"<rss><channel><ttl>15</ttl>", NOW) == 900
    assert 810 <= delay(hint_s=900)[0] <= 990
    assert delay(hint_s=86400)[0] <= 1200 * 1.1  # the user's maximum staleness wins over caching advice


def test_fixed_interval_when_not_adaptive() -> None:
    fixed = Cadence(base_s=30, min_s=10, max_s=100, adaptive=False)
    assert (
        next_delay(fixed, previous_s=30, changed=True, failed=False, consecutive_errors=0, rng=random.Random(1))[1]
        == 30
    )
    hinted = next_delay(
        fixed, previous_s=30, changed=False, failed=False, consecutive_errors=0, hint_s=900, rng=random.Random(1)
    )[0]
    assert 27 <= hinted <= 33  # an RSS ttl does not stretch a fixed interval
