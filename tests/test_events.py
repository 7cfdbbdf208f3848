"""Events: layered dedup, clustering across outlets and days, revisions, and the escalation index (real Redis)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from monitor.core.models import Article
from monitor.detection.matcher import Matcher
from monitor.detection.rulefile import load_rules
from monitor.processing.processor import Processor
from monitor.storage.events import EventStore
from monitor.storage.keys import Keys
from tests.support.processing import default_processor

ROOT = Path(__file__).resolve().parents[1]
MATCHER = Matcher(load_rules([ROOT / "rules"]))
T0 = datetime(2024, 2, 7, 18, 0, tzinfo=UTC)


@dataclass
class FakeClock:
    moment: datetime = T0
    ticks: float = field(default=0.0)

    def now(self) -> datetime:
        return self.moment

    def monotonic(self) -> float:
        return self.ticks

    def advance(self, **delta: float) -> None:
        self.moment += timedelta(**delta)


def article(n: str, title: str, summary: str, *, feed: str = "wire", at: datetime | None = None) -> Article:
    return Article(
        id=f"u:{n}",
        feed=feed,
        url=f"https://{feed}.example.org/{n}",
        guid=None,
        title=title,
        summary=summary,
        content="",
        published=at or T0,
        fetched=at or T0,
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def processor(redis: aioredis.Redis, clock: FakeClock) -> Processor:
    return default_processor(redis, MATCHER, clock)


async def outbox(redis: aioredis.Redis) -> list[dict]:
    return [json.loads(fields[b"alert"]) for _, fields in await redis.xrange(Keys().outbox)]


async def events_of(redis: aioredis.Redis) -> list[dict]:
    return [a for a in await outbox(redis) if a["kind"] == "event"]


STRIKE = [
    article(
        "a1",
        "US drone strike in Baghdad kills Kataib Hezbollah commander",
        "A US strike on a car in the Mashtal district of Baghdad killed a senior Kataib Hezbollah leader.",
        feed="wire-a",
    ),
    article(
        "a2",
        "Kataib Hezbollah leader among three dead in American drone attack on Baghdad car",
        "Iraqi officials said three people, including a senior Kataib Hezbollah commander, died in Mashtal.",
        feed="regional-b",
    ),
    article(
        "a3",
        "Iraq condemns US strike that killed Kataib Hezbollah figure in Baghdad",
        "The Pentagon confirmed the strike in Baghdad; the Iraqi government called it a violation of sovereignty.",
        feed="outlet-c",
    ),
]


async def test_one_event_across_outlets_and_days_with_revisions(
    redis: aioredis.Redis, processor: Processor, clock: FakeClock
) -> None:
    await processor.process(STRIKE[:1])
    clock.advance(hours=20)
    await processor.process(STRIKE[1:2])  # another outlet, other words, the next day: joins; casualties reported
    clock.advance(hours=30)
    await processor.process(STRIKE[2:])  # confirmation and a third independent outlet
    alerts = await events_of(redis)
    assert {a["event_id"] for a in alerts} == {alerts[0]["event_id"]}
    assert [a["revision"] for a in alerts] == [1, 2, 3]
    assert alerts[0]["event_type"] == "high_value_target_killed"
    assert any("casualties" in c for c in alerts[1]["changes"])
    assert "officially confirmed" in alerts[2]["changes"] and any(
        "3 independent outlets" in c for c in alerts[2]["changes"]
    )
    assert len(alerts[2]["articles"]) == 3 and alerts[2]["articles"][0]["source"] == "outlet-c"


async def test_wire_copies_and_repolls_do_not_alert(redis: aioredis.Redis, processor: Processor) -> None:
    first = STRIKE[0]
    copy = article("copy", first.title, first.summary, feed="syndicator")  # same text, another URL
    result = await processor.process([first, first, copy])
    assert (result.alerted, result.duplicates, result.joined) == (1, 1, 1)
    again = await processor.process([first, copy])
    assert again.duplicates == 2
    assert len(await events_of(redis)) == 1


async def test_same_actors_weeks_apart_are_two_events(
    redis: aioredis.Redis, processor: Processor, clock: FakeClock
) -> None:
    await processor.process(STRIKE[:1])
    clock.advance(days=21)
    later = article(
        "b1",
        "US drone strike in Baghdad kills another Kataib Hezbollah commander",
        "A US strike hit a vehicle in eastern Baghdad, killing a Kataib Hezbollah leader.",
        at=clock.now(),
    )
    await processor.process([later])
    assert len({a["event_id"] for a in await events_of(redis)}) == 2


async def test_different_events_in_one_day_stay_apart(redis: aioredis.Redis, processor: Processor) -> None:
    attack = article(
        "c1",
        "Rockets hit Ain al-Asad air base hosting US troops",
        "Several rockets struck the base in Anbar; the coalition said there were no injuries.",
    )
    embassy = article(
        "c2",
        "Drones target US embassy in Baghdad's Green Zone",
        "Air defences at the US embassy in Baghdad shot down two drones overnight.",
    )
    await processor.process([STRIKE[0], attack, embassy])
    alerts = await events_of(redis)
    assert len({a["event_id"] for a in alerts}) == 3
    assert {a["event_type"] for a in alerts} == {
        "high_value_target_killed",
        "attack_on_us_forces_in_iraq",
        "us_embassy_or_diplomatic_incident",
    }


async def test_attacks_in_two_cities_the_same_day_are_two_events_and_the_province_joins_its_own(
    redis: aioredis.Redis, processor: Processor, clock: FakeClock
) -> None:
    """Rockets on a base in Basra at dawn and on one in Mosul that evening name no base the gazetteer knows, and
    the wire tells both in the same words: the cities tell them apart. A later report naming only the province of
    one of them joins that one."""
    basra = article(
        "p1",
        "Katyusha rocket strikes base in Basra where US contractors work, no casualties",
        "A Katyusha rocket struck a base in Basra used by US contractors and coalition advisers on Wednesday, "
        "security sources said, adding that there were no casualties and that an investigation had begun.",
        at=clock.now(),
    )
    first = await processor.process([basra])
    clock.advance(hours=10)
    mosul = article(
        "p2",
        "Katyusha rocket strikes base in Mosul where US advisers work, no casualties",
        "A Katyusha rocket struck a base in Mosul used by US contractors and coalition advisers on Wednesday, "
        "security sources said, adding that there were no casualties and that an investigation had begun.",
        feed="outlet-b",
        at=clock.now(),
    )
    clock.advance(hours=1)
    nineveh = article(
        "p3",
        "Rocket hits army command in Nineveh hosting coalition advisers, no casualties",
        "",
        feed="outlet-c",
        at=clock.now(),
    )
    assert {MATCHER.match_article(a).event_type for a in (basra, mosul, nineveh)} == {"attack_on_us_forces_in_iraq"}
    later = await processor.process([mosul, nineveh])
    placed = dict(first.placed + later.placed)
    assert placed["u:p2"] != placed["u:p1"]
    assert placed["u:p3"] == placed["u:p2"]


async def test_staff_pulled_out_after_a_rocket_join_the_attack_and_an_embassy_drawdown_does_not(
    redis: aioredis.Redis, processor: Processor, clock: FakeClock
) -> None:
    """A firm evacuating its people because a rocket hit their compound reports that attack as well (its rules
    fire for both): it joins the attack, which keeps its type. An embassy drawdown the same day, which reports no
    attack, is an event of its own."""
    rocket = article(
        "e1",
        "Rocket hits Basra compound housing US oil firm staff, three wounded",
        "A Katyusha struck the Burjesia site near Basra used by ExxonMobil and other foreign companies.",
        at=clock.now(),
    )
    first = await processor.process([rocket])
    clock.advance(hours=6)
    pulled = article(
        "e2",
        "Exxon pulls foreign staff after rocket lands at Basra compound",
        "The US company began evacuating its workers from the Burjesia site near Basra after the rocket.",
        feed="outlet-b",
        at=clock.now(),
    )
    drawdown = article(
        "e3",
        "US embassy orders non-emergency staff to leave Baghdad",
        "The State Department ordered the departure of non-emergency staff from the embassy in Baghdad.",
        feed="outlet-c",
        at=clock.now(),
    )
    assert MATCHER.match_article(pulled).event_type == "us_personnel_evacuation_or_advisory"
    later = await processor.process([pulled, drawdown])
    placed = dict(first.placed + later.placed)
    assert placed["u:e2"] == placed["u:e1"] != placed["u:e3"]
    alerts = await events_of(redis)
    assert {a["event_id"]: a["event_type"] for a in alerts}[placed["u:e1"]] == "attack_on_us_forces_in_iraq"


async def test_escalation_level_changes_are_alerted_once(
    redis: aioredis.Redis, processor: Processor, clock: FakeClock
) -> None:
    await processor.process(STRIKE[:1])  # a killing: level rises at once
    first = [a for a in await outbox(redis) if a["kind"] == "escalation"]
    assert len(first) == 1 and first[0]["previous_level"] == 1 and first[0]["escalation_level"] >= 3
    await processor.process(STRIKE[1:2])  # same event, no new level
    assert len([a for a in await outbox(redis) if a["kind"] == "escalation"]) == 1
    clock.advance(days=40)
    quiet = article(
        "d1",
        "Iraq condemns American strike on militia depot near Al-Qaim",
        "The US strike hit a weapons depot used by Kataib Hezbollah, Iraqi officials said.",
        at=clock.now(),
    )
    await processor.process([quiet])
    levels = [a for a in await outbox(redis) if a["kind"] == "escalation"]
    assert levels[-1]["escalation_level"] < first[0]["escalation_level"]  # decayed, then re-read on the next event


async def test_attacks_on_two_bases_the_same_night_are_two_events(
    redis: aioredis.Redis, processor: Processor, clock: FakeClock
) -> None:
    first = article(
        "e1",
        "Rockets hit Ain al-Asad air base hosting US troops",
        "Several rockets struck the base in Anbar overnight, the coalition said.",
    )
    clock.advance(hours=2)
    second = article(
        "e2",
        "Drone attack targets US forces at Harir air base",
        "A one-way drone struck near a hangar at Harir in the Kurdistan region.",
        at=clock.now(),
    )
    third = article(
        "e3",
        "Base hosting US troops in western Iraq comes under rocket fire",
        "Officials said rockets landed inside the perimeter; damage was being assessed.",
        at=clock.now(),
    )
    await processor.process([first])
    await processor.process([second, third])
    alerts = await events_of(redis)
    assert len({a["event_id"] for a in alerts if a["revision"] == 1}) == 2  # the unnamed report joins, Harir does not


async def test_a_report_naming_the_province_joins_the_attack_on_the_base_that_lies_in_it(
    redis: aioredis.Redis, processor: Processor, clock: FakeClock
) -> None:
    """The gazetteer's ``within``: Ain al-Asad lies in Anbar, so a later report that names only the province shares
    a place with the event; a base elsewhere the same night does not."""
    first = article(
        "p1",
        "Ballistic missile hits Ain al-Asad air base, US personnel hurt",
        "A close-range ballistic missile struck the base; several US service members had minor injuries.",
    )
    clock.advance(hours=9)
    later = article(
        "p2",
        "Base hosting coalition advisers in Anbar hit by missile, injuries reported",
        "Officials said the missile landed inside the perimeter of the air base.",
        at=clock.now(),
    )
    elsewhere = article(
        "p3",
        "Drone attack targets US forces at Harir air base",
        "A one-way drone struck near a hangar at Harir in the Kurdistan region.",
        at=clock.now(),
    )
    placed = dict((await processor.process([first])).placed)
    placed.update((await processor.process([later, elsewhere])).placed)
    assert placed["u:p2"] == placed["u:p1"] != placed["u:p3"]


async def test_expired_events_leave_the_index(redis: aioredis.Redis, processor: Processor, clock: FakeClock) -> None:
    from monitor.storage.keys import EVENT_TTL_S

    await processor.process(STRIKE[:1])
    assert await redis.zcard(Keys().events) == 1
    await processor.events.prune(clock.now(), timedelta(seconds=EVENT_TTL_S))
    assert await redis.zcard(Keys().events) == 1  # still young
    clock.advance(seconds=EVENT_TTL_S + 60)
    await processor.events.prune(clock.now(), timedelta(seconds=EVENT_TTL_S))
    assert await redis.zcard(Keys().events) == 0


async def test_clustering_lock_queues_this_process_and_still_excludes_other_replicas(redis: aioredis.Redis) -> None:
    """Polls of one process take the family lock in turn without polling Redis for it; a second EventStore (another
    replica) still waits until the Redis lock is free."""
    store, other = EventStore(redis, Keys()), EventStore(redis, Keys())
    inside: list[str] = []
    overlaps = 0

    async def hold(which: EventStore, name: str) -> None:
        nonlocal overlaps
        async with which.lock("kinetic", wait_s=10):
            overlaps += bool(inside)
            inside.append(name)
            await asyncio.sleep(0.005)
            inside.remove(name)

    async def lock_attempts() -> int:
        stats = await redis.info("commandstats")
        return int(stats.get("cmdstat_set", {}).get("calls", 0))

    before = await lock_attempts()
    await asyncio.gather(*(hold(store, f"local-{i}") for i in range(40)))
    # One SET NX per holder: each waited on the local lock, none retried the Redis one.
    assert await lock_attempts() - before == 40
    await asyncio.gather(*(hold(store if i % 2 else other, f"mixed-{i}") for i in range(10)))
    assert overlaps == 0


def iran_missiles(n: str) -> Article:
    """The first report of Iran's missiles on Ain al-Asad."""
    return article(
        n,
        "Iran fires ballistic missiles at Ain al-Asad air base hosting US troops",
        "The Revolutionary Guards said the strike on the base in Anbar was revenge for the killing of their commander.",
    )


async def test_report_typed_another_way_joins_the_event_of_its_base(
    redis: aioredis.Redis, processor: Processor, clock: FakeClock
) -> None:
    """Missiles on a base are Iran's retaliation in one headline and a plain attack in the next: the event owns
    the type, so the second report joins it when it is about the same base and comes within hours; a report about
    another base the same night is its own event."""
    first = await processor.process([iran_missiles("i1")])
    clock.advance(hours=2)
    attack = article(
        "i2",
        "Missiles slam into Ain al-Asad base in western Iraq where US forces are stationed",
        "Sirens sounded at the base in Anbar province and troops took to bunkers, a coalition official said.",
        feed="outlet-b",
        at=clock.now(),
    )
    elsewhere = article(
        "i3",
        "Rockets hit Harir base hosting US troops north of Erbil",
        "Two rockets landed inside the base used by US forces, Kurdish security officials said.",
        feed="outlet-c",
        at=clock.now(),
    )
    assert MATCHER.match_article(attack).event_type == "attack_on_us_forces_in_iraq"
    later = await processor.process([attack, elsewhere])
    placed = dict(first.placed + later.placed)
    assert placed["u:i2"] == placed["u:i1"]
    assert placed["u:i3"] != placed["u:i1"]
    alerts = await events_of(redis)
    assert {a["event_id"]: a["event_type"] for a in alerts}[placed["u:i1"]] == "iran_retaliation_or_threat"


async def test_injuries_diagnosed_weeks_later_join_the_attack_on_their_base(
    redis: aioredis.Redis, processor: Processor, clock: FakeClock
) -> None:
    """Brain injuries are counted for weeks after a missile attack: a report naming the base five weeks later is
    a follow-up of that attack, even when its headline reads as a plain attack and the event is Iran's; a new
    rocket attack on the same base that week is an event of its own."""
    first = await processor.process([iran_missiles("t1")])
    clock.advance(days=35)
    toll = article(
        "t2",
        "Ain al-Asad attack: brain injury diagnoses rise to 109",
        "The Pentagon said more troops had been diagnosed with traumatic brain injuries after the January attack "
        "on the base in Anbar.",
        feed="outlet-b",
        at=clock.now(),
    )
    fresh = article(
        "t3",
        "Rockets hit Ain al-Asad air base hosting US troops",
        "Three rockets landed inside the base in Anbar province, a coalition spokesman said.",
        feed="outlet-c",
        at=clock.now(),
    )
    assert MATCHER.match_article(toll).event_type == "attack_on_us_forces_in_iraq"
    later = await processor.process([toll, fresh])
    placed = dict(first.placed + later.placed)
    assert placed["u:t2"] == placed["u:t1"]
    assert placed["u:t3"] != placed["u:t1"]


async def test_a_late_toll_naming_no_base_joins_the_strike_weeks_before(
    redis: aioredis.Redis, processor: Processor, clock: FakeClock
) -> None:
    """A toll counted weeks later often names no base, only "this month's missile attack": it is looked up among
    its family's strikes of the last weeks, and joins the one struck by a weapon (not a threat with none), while a
    toll past the late-toll reach starts an event of its own."""
    first = await processor.process([iran_missiles("w1")])
    clock.advance(days=5)
    threat = article(
        "w0", "Iran's Guards warn of a crushing response to any US counter-attack in Iraq", "", at=clock.now()
    )
    clock.advance(days=16)
    toll = article(
        "w2",
        "Pentagon: 50 service members diagnosed with brain injuries",
        "The number of US troops found to have brain injuries from this month's Iranian missile attack on a base "
        "in Iraq has risen to 50, the Pentagon said.",
        feed="outlet-b",
        at=clock.now(),
    )
    later = await processor.process([threat, toll])
    clock.advance(days=70)
    stale = article(
        "w3",
        "Number of American troops hurt in Iranian missile barrage passes 110",
        "The Pentagon said more service members had been diagnosed after the attack on the base in Iraq.",
        feed="outlet-c",
        at=clock.now(),
    )
    last = await processor.process([stale])
    placed = dict(first.placed + later.placed + last.placed)
    assert placed["u:w2"] == placed["u:w1"] != placed["u:w0"]
    assert placed["u:w3"] != placed["u:w1"]


async def test_the_dead_named_days_later_join_the_attack_that_killed_them(
    redis: aioredis.Redis, processor: Processor, clock: FakeClock
) -> None:
    """Two rocket attacks on one base three days apart, the first lethal: the soldiers it killed, named on the
    day of the second, belong to the first, whether the report names the base or nothing specific at all."""
    lethal = article(
        "d1",
        "Rockets hit Camp Taji base hosting US-led troops, killing two Americans and a Briton",
        "More than a dozen rockets struck the base north of Baghdad, the coalition said.",
        at=clock.now(),
    )
    first = await processor.process([lethal])
    clock.advance(days=3)
    again = article(
        "d2",
        "Camp Taji hit by a fresh rocket barrage, coalition troops wounded",
        "Rockets struck the base north of Baghdad again, wounding several coalition and Iraqi troops.",
        feed="outlet-b",
        at=clock.now(),
    )
    second = await processor.process([again])
    clock.advance(hours=4)
    named = article(
        "d3",
        "Soldier killed at Camp Taji named as a reservist medic",
        "The defence ministry named the British soldier who died in this week's rocket attack on the base.",
        feed="outlet-c",
        at=clock.now(),
    )
    identified = article(
        "d4",
        "Pentagon identifies soldier and airman killed in Iraq",
        "The two Americans died of wounds sustained in an indirect fire attack, the department said.",
        feed="outlet-d",
        at=clock.now(),
    )
    assert {MATCHER.match_article(a).event_type for a in (named, identified)} == {"attack_on_us_forces_in_iraq"}
    last = await processor.process([named, identified])
    placed = dict(first.placed + second.placed + last.placed)
    assert placed["u:d2"] != placed["u:d1"]
    assert placed["u:d3"] == placed["u:d4"] == placed["u:d1"]


async def test_a_report_naming_only_where_the_rockets_came_from_joins_the_attack(
    redis: aioredis.Redis, processor: Processor, clock: FakeClock
) -> None:
    """ "Fired from Abu Ghraib" says where the rockets were launched, not what they hit: a report whose headline
    and lead name nothing else specific, within the hour, is the same attack, not a new one."""
    first = await processor.process(
        [article("o1", "Three rockets hit Baghdad airport, damaging cars", "Rockets struck the airport complex that "
                 "houses US troops, the coalition said.")]
    )  # fmt: skip
    clock.advance(minutes=40)
    launched = article(
        "o2",
        "Katyushas fired from Abu Ghraib slam into airport car park",
        "Several vehicles were wrecked; the complex hosts coalition forces.",
        feed="outlet-b",
        at=clock.now(),
    )
    assert "abu_ghraib" not in MATCHER.match_article(launched).focus
    later = await processor.process([launched])
    assert dict(later.placed)["u:o2"] == dict(first.placed)["u:o1"]


async def test_a_report_naming_only_the_region_joins_the_attack_on_a_base_in_it(
    redis: aioredis.Redis, processor: Processor, clock: FakeClock
) -> None:
    """Harir lies in Erbil province, in the Kurdistan Region: "US troops in Kurdistan targeted" hours later is
    that attack, while an attack on another base there stays its own event."""
    first = await processor.process(
        [article("r1", "Drones target Harir base hosting coalition forces in Erbil province", "Two drones were shot "
                 "down near the base, Kurdish counter-terrorism officials said.")]
    )  # fmt: skip
    clock.advance(hours=3)
    region = article(
        "r2", "US troops in Kurdistan targeted by drones", "No injuries were reported.", feed="outlet-b", at=clock.now()
    )
    other = article(
        "r3", "Drone downed over Erbil airport base hosting US-led forces", "Counter-terrorism officials said no one "
        "was hurt.", feed="outlet-c", at=clock.now(),
    )  # fmt: skip
    later = await processor.process([region, other])
    placed = dict(first.placed + later.placed)
    assert placed["u:r2"] == placed["u:r1"]
    assert placed["u:r3"] != placed["u:r1"]


async def test_a_report_naming_the_base_joins_a_first_report_that_named_none(
    redis: aioredis.Redis, processor: Processor, clock: FakeClock
) -> None:
    """The first report of rockets on "an Iraqi camp where American trainers are based" names no base; the report
    half an hour later naming Camp Taji is the same attack (and from then on the event is Taji's)."""
    first = await processor.process(
        [article("n1", "Rockets land in Iraqi military camp where American trainers are based", "Security sources "
                 "said three rockets fell inside the camp; there were no casualties.")]
    )  # fmt: skip
    clock.advance(minutes=30)
    named = article(
        "n2", "Katyusha rockets hit Camp Taji housing US-led coalition troops", "Three rockets fell on the base north "
        "of Baghdad, the Security Media Cell said.", feed="outlet-b", at=clock.now(),
    )  # fmt: skip
    later = await processor.process([named])
    assert dict(later.placed)["u:n2"] == dict(first.placed)["u:n1"]


def test_what_the_headline_names_as_its_cause_does_not_say_who_acts() -> None:
    """ "After US strikes in Syria, a drone ...": the drone is the news, and it flies at the US side."""
    match = MATCHER.match("Drone shot down near Al-Asad after U.S. strikes in Syria", "", "")
    assert match.event_type == "attack_on_us_forces_in_iraq"


def test_the_side_acting_in_the_headline_and_the_rule_superseding_decide_the_type() -> None:
    """The Guards hitting a US base, in an operation named after the man killed: Iran's attack (which supersedes
    a plain attack), not the killing (the US is acted on, not acting)."""
    match = MATCHER.match("IRGC hits US base of Ain al-Assad in 'Operation Martyr Soleimani'", "", "")
    assert match.event_type == "iran_retaliation_or_threat"


def test_toll_updates_are_follow_ups_and_new_attacks_are_not() -> None:
    from monitor.events.facts import is_follow_up, is_late_toll

    assert is_follow_up("Brain injury count from the missile strike on the base climbs to 109")
    assert is_follow_up("Pentagon now says 11 troops were hurt, contrary to earlier accounts")
    assert is_follow_up("Troops diagnosed with concussions weeks after the barrage")
    assert is_follow_up("Number of American troops hurt in the barrage passes 100")
    assert is_late_toll("Number of American troops hurt in the barrage passes 100")
    assert not is_late_toll("Death toll from the rocket attack rises to 3")
    assert is_follow_up("Armed factions announce a conditional halt to attacks after the embassy warning")
    assert not is_follow_up("Rockets hit the base again, toll rises to three")  # "again": a new occurrence
    assert not is_follow_up("Rockets hit Ain al-Asad air base hosting US troops")
    # accounts of the night, and injuries made known days later
    assert is_follow_up("Inside the bunkers at the air base: troops recall the night the missiles fell")
    assert is_late_toll("Eleven troops were hurt in the missile attack after all, the military says")
    # the same, with the attack named by its author: a follow-up, so it reaches back to the attack weeks before
    assert is_follow_up("Nine US soldiers were injured in Tehran's missile strike, Pentagon says")
    assert not is_follow_up("Three US soldiers wounded in rocket attack on Taji")
    assert is_late_toll("President dismisses troops' injuries from the missiles as headaches")
    # a happening named by its day is an earlier one
    assert is_follow_up("A missile at the air base: why this week's attack crosses a threshold")
    assert is_follow_up("Can Baghdad really send the troops home? Sunday’s vote, explained")


async def test_two_men_killed_in_one_strike_are_one_event(
    redis: aioredis.Redis, processor: Processor, clock: FakeClock
) -> None:
    """Reports of one strike lead with either of the men it killed; each names the other further down. A strike
    that killed someone else, named nowhere in the event, stays apart."""
    lead = article(
        "m1",
        "US strike at Baghdad airport kills Iran's Quds Force commander Qassem Soleimani",
        "The Pentagon said the president ordered the strike on his convoy as it left the airport.",
    )
    lead = replace(lead, content="Iraqi officials said Abu Mahdi al-Muhandis was in the second car and died too.")
    first = await processor.process([lead])
    clock.advance(hours=1)
    other_lead = article(
        "m2",
        "PMF deputy chief Abu Mahdi al-Muhandis among dead in US strike in Baghdad",
        "The Popular Mobilization Forces said their deputy commander died when the convoy was hit.",
        feed="outlet-b",
        at=clock.now(),
    )
    other_lead = replace(other_lead, content="The Quds Force commander Qassem Soleimani was killed in the same strike.")
    later = await processor.process([other_lead])
    assert later.placed[0][1] == first.placed[0][1]
    clock.advance(hours=2)
    unrelated = article(
        "m3",
        "US drone strike in Baghdad kills Nujaba commander Abu Taqwa",
        "The strike hit a car near a militia headquarters in eastern Baghdad, Iraqi security officials said.",
        feed="outlet-c",
        at=clock.now(),
    )
    apart = await processor.process([unrelated])
    assert apart.placed and apart.placed[0][1] != first.placed[0][1]


async def test_a_vow_of_revenge_on_the_day_of_a_killing_joins_it(
    redis: aioredis.Redis, processor: Processor, clock: FakeClock
) -> None:
    """Iran's vow of revenge for the killing, naming no US target, is the killing's reaction: typed as the killing,
    it joins it. Days later, a threat to US forces naming him is Iran's, an event of its own."""
    killing = article(
        "k1",
        "US strike at Baghdad airport kills Iran's Quds Force commander Qassem Soleimani",
        "The Pentagon said the president ordered the strike on his convoy as it left the airport.",
    )
    first = await processor.process([killing])
    clock.advance(hours=5)
    vow = article(
        "k2",
        "Khamenei warns of harsh revenge for the killing of Soleimani as Iran mourns",
        "Iran's supreme leader said the United States would face severe retaliation over the death of its general.",
        feed="outlet-b",
        at=clock.now(),
    )
    assert MATCHER.match_article(vow).event_type == "high_value_target_killed"
    same_day = await processor.process([vow])
    assert same_day.placed[0][1] == first.placed[0][1]
    clock.advance(days=4)
    later_threat = replace(vow, id="u:k3", url="https://outlet-c.example.org/k3", published=clock.now(),
                           fetched=clock.now(), title="Iran warns US forces of revenge for Soleimani")  # fmt: skip
    assert MATCHER.match_article(later_threat).event_type == "iran_retaliation_or_threat"
    days_later = await processor.process([later_threat])
    assert days_later.placed and days_later.placed[0][1] != first.placed[0][1]


def test_of_two_equally_good_events_the_one_nearest_in_event_time_wins_whenever_they_were_read() -> None:
    """A report that names nothing specific, equally close to two attacks of the same evening: it goes with the
    one whose reports came nearest its own time, not with whichever the monitor happened to read last (in a
    backlog every event is read at the same moment)."""
    import numpy as np

    from monitor.events.cluster import EventPolicy, EventState, new_event
    from monitor.events.joining import best_event

    read = T0 + timedelta(days=3)  # a backlog: both events read at once
    empty = np.zeros(128, dtype=np.uint32)

    def opened(n: str, title: str, at: datetime) -> EventState:
        report = article(n, title, "", at=at)
        return new_event(f"ev_{n}", report, MATCHER.match_article(report), salient=frozenset(), signature=empty,
                         now=read, at=at)  # fmt: skip

    earlier = opened("e1", "Rockets hit Ain al-Asad air base hosting US troops", T0)
    later = opened("e2", "Drone targets Harir air base hosting US troops", T0 + timedelta(hours=6))
    for events in ([earlier, later], [later, earlier]):
        chosen = best_event(
            events, copy_of=None, families=("attack_on_us_forces_in_iraq",), named=(frozenset(), frozenset()),
            signature=np.ones(128, dtype=np.uint32), at=T0 + timedelta(hours=5), types={}, policy=EventPolicy(),
        )  # fmt: skip
        assert chosen is later


async def test_a_threat_answering_a_vote_to_expel_the_forces_joins_the_vote(
    redis: aioredis.Redis, processor: Processor, clock: FakeClock
) -> None:
    """Iran's warning that answers parliament's vote is typed a threat, but it also reports the vote: it joins the
    vote's event, which keeps its type."""
    vote = article(
        "x1",
        "Iraqi parliament votes to expel US troops after Soleimani killing",
        "Lawmakers passed a resolution calling on the government to end the presence of foreign forces.",
        at=clock.now(),
    )
    first = await processor.process([vote])
    clock.advance(hours=3)
    warning = article(
        "x2",
        "Iran warns US forces after Iraq's parliament votes to expel them",
        "Tehran said American troops in Iraq would be targets if they stayed.",
        feed="outlet-b",
        at=clock.now(),
    )
    assert MATCHER.match_article(warning).event_type == "iran_retaliation_or_threat"
    joined = await processor.process([warning])
    placed = dict(first.placed + joined.placed)
    assert placed["u:x2"] == placed["u:x1"]
    alerts = await events_of(redis)
    assert {a["event_id"]: a["event_type"] for a in alerts}[placed["u:x1"]] == "iraq_expels_or_ends_us_presence"


async def test_an_attack_that_later_reports_attribute_to_iran_becomes_irans_strike(
    redis: aioredis.Redis, processor: Processor, clock: FakeClock
) -> None:
    """The first report has rockets on a base; the next says Iran's Guards fired ballistic missiles at it. The event
    takes Iran's type with a revision saying so, and Iran's later reports join it rather than open a second event."""
    rockets = article(
        "s1",
        "Rockets fired at Ain al-Asad air base housing US troops, state TV says",
        "Sirens sounded at the base in Anbar province; the coalition said damage was being assessed.",
        at=clock.now(),
    )
    first = await processor.process([rockets])
    clock.advance(minutes=25)
    later = await processor.process([iran_missiles("s2")])
    clock.advance(minutes=30)
    claim = article(
        "s3",
        "Revolutionary Guards say their missiles hit US base in Iraq",
        "Iranian state television said the strike avenged the killing of the Quds Force commander.",
        feed="outlet-b",
        at=clock.now(),
    )
    last = await processor.process([claim])
    placed = dict(first.placed + later.placed + last.placed)
    assert placed["u:s1"] == placed["u:s2"] == placed["u:s3"]
    alerts = [a for a in await events_of(redis) if a["event_id"] == placed["u:s1"]]
    assert alerts[0]["event_type"] == "attack_on_us_forces_in_iraq"
    assert alerts[-1]["event_type"] == "iran_retaliation_or_threat"
    assert any(
        "type: attack_on_us_forces_in_iraq -> iran_retaliation_or_threat" in a.get("changes", ()) for a in alerts
    )


async def test_a_report_naming_iran_a_day_later_does_not_retype_the_attack(
    redis: aioredis.Redis, processor: Processor, clock: FakeClock
) -> None:
    """Who fired is told within hours: a report the next day that names Iran's missiles only as background ("after
    Iran's missiles, factions turn rockets on Taji") joins the attack on Taji and leaves it an attack."""
    rockets = article(
        "t1",
        "Katyusha rockets target Taji training camp north of Baghdad",
        "Rockets landed inside the camp where coalition trainers are based; there were no casualties.",
        at=clock.now(),
    )
    first = await processor.process([rockets])
    clock.advance(hours=16)
    later = article(
        "t2",
        "After Iran's missiles, Iraqi factions turn rockets on Taji",
        "Two rockets hit Camp Taji north of Baghdad on Tuesday night, the coalition said.",
        feed="outlet-b",
        at=clock.now(),
    )
    assert MATCHER.match_article(later).event_type == "iran_retaliation_or_threat"
    joined = await processor.process([later])
    placed = dict(first.placed + joined.placed)
    assert placed["u:t2"] == placed["u:t1"]
    alerts = [a for a in await events_of(redis) if a["event_id"] == placed["u:t1"]]
    assert {a["event_type"] for a in alerts} == {"attack_on_us_forces_in_iraq"}


async def placed_days_apart(
    processor: Processor, clock: FakeClock, first: tuple[str, str, str], later: tuple[str, str, str], days: int
) -> tuple[str, str]:
    """The events two reports were placed in, the second read ``days`` after the first (T0 is a Wednesday)."""
    opened = await processor.process([article(*first)])
    clock.advance(days=days)
    then = await processor.process([article(*later, at=clock.now())])
    return opened.placed[0][1], then.placed[0][1]


async def test_a_report_naming_the_event_by_its_weekday_days_later_joins_it(
    redis: aioredis.Redis, processor: Processor, clock: FakeClock
) -> None:
    """A look back published four days later (a Sunday) that names its happening only by the day ("after
    Wednesday's request") joins the event of that day, though it is further from it than the family's closeness."""
    ask = (
        "w1",
        "Iraq's prime minister asks Washington to send a team to plan the US troop withdrawal",
        "The request to the US secretary of state came days after parliament voted to expel foreign forces.",
    )
    later = (
        "w2",
        "After Wednesday's request, is there any road to a US troop withdrawal from Iraq?",
        "Baghdad still wants the foreign forces out; Washington says it will not negotiate their withdrawal.",
    )
    first_event, later_event = await placed_days_apart(processor, clock, ask, later, days=4)
    assert later_event == first_event


async def test_a_look_back_typed_in_a_related_family_joins_the_event_of_the_day_it_names(
    redis: aioredis.Redis, processor: Processor, clock: FakeClock
) -> None:
    """A troop cut read two days later (a Friday) as "fewer Americans in Iraq" is typed as staff moved out, not as
    the cut; by the day it names it still joins the cut, and the event keeps its type."""
    cut = (
        "d1",
        "Iraqi government says US forces have begun reducing their numbers in Iraq",
        "The spokesman said the reduction follows the end of major combat against Islamic State.",
    )
    later = (
        "d2",
        "Wednesday's drawdown: fewer Americans in Iraq, though the mission goes on",
        "Dozens of American soldiers were flown out of Iraq this week as the war on Islamic State wound down.",
    )
    assert MATCHER.match_article(article(*later)).event_type != MATCHER.match_article(article(*cut)).event_type
    first_event, later_event = await placed_days_apart(processor, clock, cut, later, days=2)
    assert later_event == first_event
    alerts = [a for a in await events_of(redis) if a["event_id"] == first_event]
    assert {a["event_type"] for a in alerts} == {"iraq_expels_or_ends_us_presence"}


def test_the_weekday_a_report_names_is_a_date_before_it() -> None:
    from monitor.events.days import told_day

    sunday = datetime(2024, 2, 11, 8, 0, tzinfo=UTC)
    assert told_day("After Wednesday's request, what next?", "", sunday) == date(2024, 2, 7)
    lead = "The rockets that hit the airport on Friday were the third."
    assert told_day("Analysis", lead, sunday) == date(2024, 2, 9)
    assert told_day("Harir Friday, Al-Asad Saturday", "", sunday) is None  # a roundup of two days
    assert told_day("Talks resume next Tuesday", "", sunday) is None  # a day to come
    assert told_day("Sunday's rockets", "", sunday) is None  # today
    # Iraq's day: 22:30 UTC on Saturday is already Sunday there
    assert told_day("Saturday's rockets", "", datetime(2024, 2, 10, 22, 30, tzinfo=UTC)) == date(2024, 2, 10)


def test_the_weekday_is_read_in_arabic_persian_and_sorani_too() -> None:
    from monitor.events.days import told_day

    sunday = datetime(2021, 5, 9, 7, 45, tzinfo=UTC)
    saturday = date(2021, 5, 8)
    assert told_day("مسيّرة فجر السبت.. الفصائل تنقل المواجهة إلى السماء", "", sunday) == saturday
    assert told_day("پهپاد بامداد شنبه به پایگاه رسید", "", sunday) == saturday
    assert told_day("درۆنەکەی بەیانی شەممەی ڕابردوو", "", sunday) == saturday
    assert told_day("حمله روز سه‌شنبه", "", sunday) == date(2021, 5, 4)  # not Saturday inside "three-Saturday"
    assert told_day("بۆردومانی چوارشەممە", "", sunday) == date(2021, 5, 5)
    assert told_day("الجلسة السبت المقبل", "", sunday) is None  # a day to come
    assert told_day("شنبه‌ها بازار شلوغ است", "", sunday) is None  # "Saturdays", no day
    assert told_day("هجوم الجمعة وهجوم الخميس", "", sunday) is None  # a roundup of two days


def test_the_date_a_report_names_is_its_day_up_to_two_months_back() -> None:
    from monitor.events.days import told_day

    new_year_eve = datetime(2020, 12, 30, 19, 0, tzinfo=UTC)
    assert told_day("Convoy blasts, 29 Dec: two provinces hit", "", new_year_eve) == date(2020, 12, 29)
    assert told_day("Analysis", "The bombs of December 20 were the first.", new_year_eve) == date(2020, 12, 20)
    assert told_day("Troops to fall to 2,500 by Jan. 15", "", new_year_eve) is None  # a deadline to come
    assert told_day("Remembering the 24 July attack", "", new_year_eve) is None  # further back than a toll reaches
    assert told_day("Marine 3 hurt", "", new_year_eve) is None  # not a month
    # across the year's end: "Jan. 8" in late January, and "Dec. 29" in early January
    assert told_day("Injuries from the Jan. 8 attack", "", datetime(2020, 1, 24, tzinfo=UTC)) == date(2020, 1, 8)
    assert told_day("The Dec. 29 strikes", "", datetime(2020, 1, 3, tzinfo=UTC)) == date(2019, 12, 29)
    assert told_day("Rockets on 12 May and 14 May", "", datetime(2021, 5, 20, tzinfo=UTC)) is None  # two dates


def test_when_the_headline_says_nothing_the_more_precise_rule_names_the_story() -> None:
    """A quote headline satisfies no rule and says nobody acts; the lead reports Iran's missiles on a base hosting US
    troops, which both the attack rule and Iran's (which supersedes it) read: Iran's names it."""
    match = MATCHER.match(
        "'All is well!': the president's tweet after the barrage",
        "Iran fired missiles at Ain al-Asad and Erbil overnight; the president said casualties and damage were being "
        "assessed.",
    )
    assert match.event_type == "iran_retaliation_or_threat"
