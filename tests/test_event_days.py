"""Events: what a report tells of an earlier happening. The day it names its happening by (``days.told_day``) ties
it to that day's event and keeps a look-back naming another day out of an earlier event of the same base; the dead
an earlier attack killed, told as its background, do not make a new attack a deadly one (real Redis)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

import redis.asyncio as aioredis

from monitor.events.days import told_day
from monitor.events.facts import is_follow_up, reports_dead, tells_of_deadly_attack
from monitor.processing.processor import Processor
from tests.test_events import FakeClock, article, clock, iran_missiles, processor

__all__ = ["clock", "processor"]  # the fixtures this module shares with test_events


def test_the_headline_names_the_day_before_the_lead_does() -> None:
    """ "... after Jan. 8 attack on Al Asad" over a lead that says when the command spoke."""
    friday = datetime(2020, 1, 17, 1, 0, tzinfo=UTC)
    lead = "Eleven troops were flown out for concussion screening, the command said on Thursday."
    assert told_day("Concussion checks after Jan. 8 attack on Al Asad", lead, friday) == date(2020, 1, 8)


def test_the_day_a_statement_was_made_is_not_the_day_of_its_happening() -> None:
    tuesday = datetime(2020, 2, 11, 0, 30, tzinfo=UTC)
    assert told_day("Brain injuries now total 109", "The Pentagon said Monday that 109 troops ...", tuesday) is None
    assert told_day("Analysis", "Officials said Monday's rockets were the fifth.", tuesday) == date(2020, 2, 10)
    lead = "The premier asked Pompeo in a call late on Thursday to send a team, his office said on Friday."
    assert told_day("Baghdad asks for exit plan", lead, datetime(2020, 1, 10, 8, 40, tzinfo=UTC)) == date(2020, 1, 9)


def test_the_day_a_run_of_attacks_began_is_not_the_day_of_the_latest() -> None:
    """ "the second such attack since July 16" names when the run began; the report is of the latest."""
    friday = datetime(2024, 7, 26, 7, 30, tzinfo=UTC)
    lead = "Rockets struck the air base overnight, the second such attack since July 16, security sources said."
    assert told_day("Anbar base hit again", lead, friday) is None
    assert told_day("Anbar base hit again", "It was the first attack since Tuesday.", friday) is None
    assert told_day("Anbar base hit again", "The rockets that hit it on July 16 were the first.", friday) == date(
        2024, 7, 16
    )


async def test_a_toll_naming_its_attack_by_date_skips_an_earlier_attack_on_the_same_base(
    redis: aioredis.Redis, processor: Processor, clock: FakeClock
) -> None:
    """Rockets on Ain al-Asad one month, Iran's missiles on it the next, then "troops checked for concussion after
    the Jan. 8 attack on Al Asad": the injuries belong to the missiles of 8 January, not to the rockets before."""
    clock.moment = datetime(2019, 12, 3, 13, 0, tzinfo=UTC)
    rockets = article("r1", "Rockets hit Ain al-Asad air base hosting US troops", "Five rockets fell on the base.",
                      at=clock.now())  # fmt: skip
    earlier = await processor.process([rockets])
    clock.moment = datetime(2020, 1, 7, 23, 30, tzinfo=UTC)
    missiles = await processor.process([replace(iran_missiles("r2"), published=clock.now(), fetched=clock.now())])
    assert missiles.placed[0][1] != earlier.placed[0][1]
    clock.moment = datetime(2020, 1, 17, 1, 0, tzinfo=UTC)
    toll = article(
        "r3",
        "Service members checked for concussion after Jan. 8 attack on Al Asad",
        "No troops died in the attack on the base, but several were treated for concussion, the command said on "
        "Thursday.",
        feed="outlet-b",
        at=clock.now(),
    )
    later = await processor.process([toll])
    assert later.placed and later.placed[0][1] == missiles.placed[0][1]


async def test_the_dead_named_go_to_the_attack_that_killed_them_not_to_one_recalling_it(
    redis: aioredis.Redis, processor: Processor, clock: FakeClock
) -> None:
    """Rockets fall on Camp Taji and a later report of that attack tells of the dead; three days later Taji is hit
    again and the first report recalls the deadly attack ("three days after an attack there killed two Americans").
    The names of the dead, read a moment later, belong to the earlier attack."""
    salvo = article("k0", "Salvo of rockets reported at Camp Taji north of Baghdad", "Sirens sounded on the base.")
    first = await processor.process([salvo])
    clock.advance(hours=4)
    deadly = article("k1", "Rockets kill two Americans and a Briton at Camp Taji", "Katyushas hit the base.",
                     feed="outlet-d", at=clock.now())  # fmt: skip
    joined = await processor.process([deadly])
    assert joined.placed[0][1] == first.placed[0][1]
    clock.advance(days=3)
    again = article(
        "k2",
        "Camp Taji under rocket fire again",
        "Rockets fell on Camp Taji this morning, three days after an attack there killed two Americans and a "
        "British soldier.",
        feed="outlet-b",
        at=clock.now(),
    )
    second = await processor.process([again])
    assert second.placed[0][1] != first.placed[0][1]
    clock.advance(minutes=30)
    named = article("k3", "Taji attack: the three coalition soldiers who died", "The Pentagon named the dead.",
                    feed="outlet-c", at=clock.now())  # fmt: skip
    placed = await processor.process([named])
    assert placed.placed and placed.placed[0][1] == first.placed[0][1]


def test_the_dead_of_an_earlier_attack_told_as_background_are_not_news() -> None:
    recalled = "Camp Taji under fire again\nRockets fell this morning, three days after an attack there killed two."
    assert reports_dead(recalled) and not reports_dead(recalled, news_only=True)
    assert reports_dead("Rockets kill two at Taji after a week of calm", news_only=True)
    assert is_follow_up("Taji attack: the three coalition soldiers who died")


def test_which_reports_make_an_event_the_deadly_one() -> None:
    assert tells_of_deadly_attack("Rockets kill two U.S. troops and a British soldier at Iraqi base")
    assert not tells_of_deadly_attack("Pentagon names the two Americans killed at Camp Taji")
    assert not tells_of_deadly_attack("Glasgow reservist killed at Taji served with the Yeomanry")
    assert not tells_of_deadly_attack("Taji hit again, three days after rockets killed two Americans")


def test_a_span_looked_back_names_the_day_it_reaches() -> None:
    """ "Two weeks after the missile strike, ..." on 28 March looks back to 14 March; a span under a week (a new
    attack recalling the last), two spans, more than two months, or a span in the lead name no day."""
    monday = datetime(2022, 3, 28, 9, 0, tzinfo=UTC)
    assert told_day("Two weeks after the missile strike, Erbil counts the cost", "", monday) == date(2022, 3, 14)
    assert told_day("Balad, ten days on: the airlift", "", monday) == date(2022, 3, 18)
    assert told_day("Rockets hit Balad three days after the Taji attack", "", monday) is None
    assert told_day("Erbil counts the cost", "Two weeks after the missile strike, homes are rebuilt.", monday) is None
    assert told_day("A week after the vote and two weeks after the strike", "", monday) is None
    assert told_day("Three months after the strike", "", monday) is None


async def test_a_look_back_weeks_later_joins_the_event_it_names_by_its_span(
    redis: aioredis.Redis, processor: Processor, clock: FakeClock
) -> None:
    """Missiles strike near the US consulate in Erbil; two weeks later, past the event's window, a report "two weeks
    after the missile strike" on the consulate goes to that event, not to a new one."""
    clock.moment = datetime(2022, 3, 13, 1, 30, tzinfo=UTC)
    strike = article("e1", "Missiles strike near US consulate in Erbil", "A dozen missiles fell near the compound.",
                     at=clock.now())  # fmt: skip
    first = await processor.process([strike])
    clock.moment = datetime(2022, 3, 28, 9, 0, tzinfo=UTC)
    back = article(
        "e2",
        "Two weeks after missiles struck near the US consulate in Erbil, residents count the cost",
        "Homes near the consulate compound are still being repaired.",
        feed="outlet-b",
        at=clock.now(),
    )
    later = await processor.process([back])
    assert later.placed and later.placed[0][1] == first.placed[0][1]
