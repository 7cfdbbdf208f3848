"""A group's claim alone alerts one severity step below the same report confirmed; an official confirmation
raises the event back, in a revision that says so (real Redis through the processor, and the event rules)."""

from __future__ import annotations

import json
from datetime import timedelta

import numpy as np
import pytest
import redis.asyncio as aioredis

from monitor.events.cluster import EventPolicy, EventState, add_article, claim_severity, lent_names, new_event
from monitor.processing.processor import Processor
from monitor.storage.keys import Keys
from tests.support.processing import default_processor
from tests.test_events import MATCHER, T0, FakeClock
from tests.test_multilingual_events import CLAIM, WIRE, post

DENIAL = post(
    "denial",
    "البنتاغون ينفي تعرض قاعدة حرير في أربيل لهجوم بطائرة مسيرة",
    "نفت وزارة الدفاع الأمريكية تعرض قاعدة حرير التي تضم قوات أمريكية لأي هجوم.",
    feed="arabic-outlet",
    minutes=30,
)


@pytest.fixture
def processor(redis: aioredis.Redis) -> Processor:
    return default_processor(redis, MATCHER, FakeClock(T0 + timedelta(hours=2)))


async def alerts_of(redis: aioredis.Redis) -> list[dict]:
    alerts = [json.loads(f[b"alert"]) for _, f in await redis.xrange(Keys().outbox)]
    return [a for a in alerts if a["kind"] == "event"]


async def test_a_claim_alerts_one_step_lower_until_the_wire_confirms_it(
    redis: aioredis.Redis, processor: Processor
) -> None:
    claimed, confirmed = MATCHER.match_article(CLAIM).severity, MATCHER.match_article(WIRE).severity
    assert claimed >= 2  # so that a step down shows
    await processor.process([CLAIM])
    [first] = await alerts_of(redis)
    assert (first["status"], first["severity"], first["revision"]) == ("claimed", claimed - 1, 1)
    await processor.process([WIRE])
    _, second = await alerts_of(redis)
    assert second["event_id"] == first["event_id"] and second["revision"] == 2
    assert (second["status"], second["severity"]) == ("confirmed", max(claimed, confirmed))
    assert f"severity {claimed - 1} -> {max(claimed, confirmed)}" in second["changes"]
    assert "status: claimed -> confirmed" in second["changes"]


async def test_the_same_report_confirmed_from_the_start_alerts_at_its_severity(
    redis: aioredis.Redis, processor: Processor
) -> None:
    await processor.process([WIRE])
    [only] = await alerts_of(redis)
    assert (only["status"], only["severity"]) == ("confirmed", MATCHER.match_article(WIRE).severity)


def test_claim_severity_steps_down_once_and_never_below_one() -> None:
    assert [claim_severity(n, "claimed") for n in range(1, 6)] == [1, 1, 2, 3, 4]
    assert [claim_severity(4, s) for s in ("reported", "confirmed", "denied")] == [4, 4, 4]


def opened_by_claim() -> EventState:
    match = MATCHER.match_article(CLAIM)
    signature = np.zeros(64, dtype=np.uint32)
    return new_event("ev_1", CLAIM, match, salient=frozenset(match.entities), signature=signature, now=T0)


def test_a_denial_keeps_the_step_down_and_events_stored_before_keep_their_severity() -> None:
    event = opened_by_claim()
    assert (event.status, event.report_severity, event.severity) == ("claimed", 4, 3)
    denied, reasons = add_article(
        event,
        DENIAL,
        MATCHER.match_article(CLAIM),
        salient=frozenset(),
        signature=np.zeros(64, dtype=np.uint32),
        now=T0 + timedelta(minutes=30),
        policy=EventPolicy(),
    )
    assert (denied.status, denied.severity) == ("denied", 3) and "status: claimed -> denied" in reasons
    assert not any(r.startswith("severity") for r in reasons)
    # An event stored before ``report_severity`` existed: its severity is what its reports gave.
    old = EventState.from_json(
        json.dumps({k: v for k, v in json.loads(event.to_json()).items() if k != "report_severity"})
    )
    assert old.report_severity is None
    stored_claim = json.loads(old.to_json()) | {"severity": 4}
    again, reasons = add_article(
        EventState.from_json(json.dumps(stored_claim)),
        WIRE,
        MATCHER.match_article(CLAIM),
        salient=frozenset(),
        signature=np.zeros(64, dtype=np.uint32),
        now=T0 + timedelta(minutes=90),
        policy=EventPolicy(),
    )
    assert (again.status, again.severity, again.report_severity) == ("confirmed", 4, 4)


def test_a_round_up_of_two_bases_joins_without_lending_the_event_their_names() -> None:
    """ "Iraq Week: a bomb at Mosul Dam and a drone at Ain al-Asad" joins the Ain al-Asad event without making it
    the Mosul Dam one too; one attack on two bases, told as news, names both."""
    event = opened_by_claim()  # the Harir claim: its names are Harir's
    types = {"ain_al_asad": "base", "harir_base": "base", "erbil": "place"}
    bases = frozenset({"ain_al_asad", "harir_base"})

    def joined(title: str) -> EventState:
        report = post("later", title, "", feed="newsletter", minutes=60)
        match = MATCHER.match_article(report)
        salient, focus = lent_names(report.title, bases, bases, types)
        added, _ = add_article(
            event, report, match, salient=salient, focus=focus, signature=np.zeros(64, dtype=np.uint32),
            now=T0 + timedelta(hours=1), policy=EventPolicy(),
        )  # fmt: skip
        return added

    round_up = joined("Iraq Week: drones at Harir and Ain al-Asad")
    assert set(round_up.focus) == set(event.focus) and set(round_up.salient) == set(event.salient)
    news = joined("Drones hit Harir and Ain al-Asad in one night")
    assert bases <= set(news.focus) and bases <= set(news.salient)
