"""Weapons: what a report says was fired, and how it tells two attacks on one base apart (real Redis)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from monitor.core.models import Article
from monitor.detection.matcher import Matcher
from monitor.detection.rulefile import load_rules
from monitor.processing.processor import Processor
from monitor.storage.keys import Keys
from tests.support.processing import default_processor
from tests.test_events import FakeClock

ROOT = Path(__file__).resolve().parents[1]
MATCHER = Matcher(load_rules([ROOT / "rules"]), min_severity=1)
T0 = datetime(2023, 10, 30, 14, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("title", "summary", "kinds"),
    [
        ("Katyushas target Asad airbase", "", ("projectile",)),
        ("Two drones target Ain al-Asad airbase, no casualties", "", ("drone",)),
        ("Drones follow rockets at Ain al-Asad", "", ("projectile", "drone")),
        ("Roadside bomb hits coalition supply convoy on Salahuddin highway", "", ("bomb",)),
        # what the headline names as the cause of its news is not what it reports
        ("Militants hit Al-Asad again, a day after rocket barrage", "", ()),
        ("Drones target Ain al-Asad a day after rocket fire", "", ("drone",)),
        # the lead counts too, the body beyond it does not
        ("Ain al-Asad attacked overnight", "Two missiles fell near the runway, the coalition said.", ("projectile",)),
        ("استهداف قاعدة عين الأسد بطائرة مسيرة", "", ("drone",)),
        ("حمله پهپادی به پایگاه عین الاسد", "", ("drone",)),
        ("قصف قاعدة حرير بصواريخ الكاتيوشا", "", ("projectile",)),
    ],
)
def test_the_weapons_a_headline_and_lead_name(title: str, summary: str, kinds: tuple[str, ...]) -> None:
    assert MATCHER.match(title, summary, "").weapons == kinds


def test_a_lead_sentence_telling_another_happening_beside_the_news_is_not_its_focus() -> None:
    """"A drone aimed at Harir was downed the same morning" under a convoy bomb's headline: neither the base nor the
    drone is what the report is about, so it does not join the drone's event."""
    title = "Coalition convoy hit by roadside bomb near Mosul Dam"
    beside = MATCHER.match(title, "A drone aimed at Harir was downed the same morning.", "")
    assert beside.event_type == "attack_on_us_forces_in_iraq"
    assert "harir_base" in beside.entities and "harir_base" not in beside.focus and beside.weapons == ("bomb",)
    own = MATCHER.match(title, "A drone aimed at Harir was downed too.", "")
    assert "harir_base" in own.focus and set(own.weapons) == {"bomb", "drone"}


def test_a_persian_word_for_inside_is_not_a_drone() -> None:
    assert MATCHER.match("حمله موشکی به درون پایگاه عین الاسد", "", "").weapons == ("projectile",)


def report(n: str, title: str, at: datetime, summary: str = "") -> Article:
    return Article(
        id=f"w:{n}", feed=f"outlet-{n}", url=f"https://outlet-{n}.example.org/{n}", guid=None, title=title,
        summary=summary, content="", published=at, fetched=at,
    )  # fmt: skip


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(moment=T0)


@pytest.fixture
def processor(redis: aioredis.Redis, clock: FakeClock) -> Processor:
    return default_processor(redis, MATCHER, clock)


async def opened(redis: aioredis.Redis) -> dict[str, str]:
    """The article that opened each event alerted, by event id."""
    alerts = [json.loads(fields[b"alert"]) for _, fields in await redis.xrange(Keys().outbox)]
    return {a["event_id"]: a["title"] for a in alerts if a["kind"] == "event" and a["revision"] == 1}


async def test_rockets_one_afternoon_and_drones_next_morning_on_one_base_are_two_attacks(
    redis: aioredis.Redis, processor: Processor, clock: FakeClock
) -> None:
    hour = timedelta(hours=1)
    rockets = report("r1", "Four rockets fired at Ain al-Asad base housing US forces", T0)
    more_rockets = report("r2", "Katyushas launched toward Ain al-Asad from desert west of Hit", T0 + hour)
    drones = report("d1", "Drones target Ain al-Asad airbase hosting US troops, no casualties", T0 + 13 * hour)
    more_drones = report("d2", "Armed drones target Ain al-Asad air base", T0 + 14 * hour)
    unnamed = report("u1", "Base hosting US troops in western Iraq attacked again", T0 + 15 * hour)
    for item in (rockets, more_rockets, drones, more_drones, unnamed):
        clock.moment = item.published or T0
        await processor.process([item])
    events = await opened(redis)
    assert sorted(events.values()) == sorted([rockets.title, drones.title])


async def test_reports_of_one_attack_naming_the_same_weapon_stay_one_event(
    redis: aioredis.Redis, processor: Processor, clock: FakeClock
) -> None:
    first = report("a1", "Drones target Ain al-Asad airbase hosting US troops", T0)
    second = report("a2", "Islamic Resistance claims drone strike on Ain al-Asad base", T0 + timedelta(hours=2))
    both = report("a3", "Drones and rockets hit Ain al-Asad base housing US forces", T0 + timedelta(hours=3))
    for item in (first, second, both):
        clock.moment = item.published or T0
        await processor.process([item])
    assert list((await opened(redis)).values()) == [first.title]
