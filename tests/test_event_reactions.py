"""Events: reports that answer a happening join it (mourning and vows of revenge in the days after a killing, news
of the dead the morning after a lethal attack), while new happenings stay apart (real Redis)."""

from __future__ import annotations

from dataclasses import replace

import redis.asyncio as aioredis

from monitor.events.facts import reports_killing
from monitor.processing.processor import Processor
from tests.test_events import MATCHER, FakeClock, article, clock, processor

__all__ = ["clock", "processor"]  # the fixtures this module shares with test_events

THREAT = "iran_retaliation_or_threat"
ATTACK = "attack_on_us_forces_in_iraq"
KILLING = "high_value_target_killed"


async def test_mourning_and_vows_of_revenge_join_the_killing_in_its_days_of_mourning(
    redis: aioredis.Redis, processor: Processor, clock: FakeClock
) -> None:
    """A headline that reports on the killing (crowds mourn the man, revenge is vowed at his funeral) is about the
    killing for the days of mourning, and typed as it; a week and more later it is an event of its own, and so is
    a threat to US forces (no report on the killing) days later."""
    killing = article(
        "m1",
        "US strike at Baghdad airport kills Iran's Quds Force commander Qassem Soleimani",
        "The Pentagon said the president ordered the strike on his convoy as it left the airport.",
    )
    first = await processor.process([killing])
    clock.advance(days=4)
    mourning = article(
        "m2",
        "Millions mourn Soleimani in Tehran as Iran vows harsh revenge",
        "Iran's supreme leader wept over the coffin as crowds chanted against the United States.",
        feed="outlet-b",
        at=clock.now(),
    )
    assert MATCHER.match_article(mourning).event_type == KILLING  # the killing's reaction, typed as it
    days_later = await processor.process([mourning])
    assert days_later.placed[0][1] == first.placed[0][1]

    plain = replace(mourning, id="u:m3", url="https://outlet-c.example.org/m3",
                    title="Iran warns US forces of revenge for Soleimani")  # fmt: skip
    assert MATCHER.match_article(plain).event_type == THREAT
    threat = await processor.process([plain])
    assert threat.placed and threat.placed[0][1] != first.placed[0][1]

    clock.advance(days=5)
    late = replace(mourning, id="u:m4", url="https://outlet-d.example.org/m4", published=clock.now(),
                   fetched=clock.now(), title="Crowds mourn Soleimani again as Iran vows revenge")  # fmt: skip
    assert MATCHER.match_article(late).event_type == KILLING
    nine_days = await processor.process([late])
    assert nine_days.placed and nine_days.placed[0][1] != first.placed[0][1]


async def test_news_of_soldiers_killed_the_next_morning_joins_the_lethal_attack_of_the_night_before(
    redis: aioredis.Redis, processor: Processor, clock: FakeClock
) -> None:
    """US and coalition troops are rarely killed in Iraq: a report of a soldier killed by rockets fourteen hours
    after a lethal rocket attack is that attack, though it names nothing the first report named. A report of
    rockets that killed nobody, at the same distance, is another attack."""
    lethal = article(
        "t1",
        "Rockets hit Iraqi base hosting US-led troops, killing three",
        "More than a dozen rockets struck the base north of Baghdad in the evening, the coalition said.",
    )
    first = await processor.process([lethal])
    clock.advance(hours=14)
    harmless = article(
        "t2",
        "Two rockets fall inside Balad air base, no casualties",
        "The Iraqi base north of Baghdad hosts US contractors, security sources said.",
        feed="outlet-b",
        at=clock.now(),
    )
    killed = article(
        "t3",
        "British soldier killed in rocket strike in Iraq",
        "The defence ministry said one of its service personnel died after an attack on a coalition base.",
        feed="outlet-c",
        at=clock.now(),
    )
    assert {MATCHER.match_article(a).event_type for a in (harmless, killed)} == {ATTACK}
    later = await processor.process([harmless, killed])
    placed = dict(first.placed + later.placed)
    assert placed["u:t3"] == placed["u:t1"] != placed["u:t2"]


def test_a_headline_reports_a_killing_unless_it_says_nobody_died() -> None:
    assert reports_killing("British soldier killed in rocket strike in Iraq")
    assert reports_killing("Rockets hit base, killing three")
    for title in (
        "Rockets hit base, no casualties reported",
        "Rocket attack on Balad causes no deaths",
        "Drone strikes Erbil airport without killing anyone",
        "Rockets hit base hosting US troops, nobody killed",
        "Drone shot down over Erbil airport",
    ):
        assert not reports_killing(title), title


def test_a_headline_whose_rule_needs_its_cause_words_reports_the_aftermath() -> None:
    """ "Launcher found ... after rocket on Victory base" is an attack report only by what it names as the cause:
    it reports what followed that attack, and the weapon it names is that attack's. "Rockets hit Victory base after
    US strike" reports an attack of its own."""
    after = MATCHER.match(
        "Launcher found in western Baghdad after rocket on Victory base",
        "Security forces found the launcher used in the attack on the base at the airport, police said.",
        "",
    )
    assert after.event_type == ATTACK and after.aftermath and after.weapons == ("projectile",)
    news = MATCHER.match("Rockets hit Victory base after US strike on militia", "", "")
    assert news.event_type == ATTACK and not news.aftermath


async def test_the_aftermath_of_an_attack_joins_it_days_later_and_by_its_weapon(
    redis: aioredis.Redis, processor: Processor, clock: FakeClock
) -> None:
    """Drones on Baghdad airport one day, a rocket on the base there two days later; the next morning a launcher is
    found "after rocket on Victory base": the rocket attack's aftermath, not the drones'. And security tightened at
    a headquarters two days after a rocket hit it is that attack's aftermath, past the attack's window."""
    drones = article(
        "v1",
        "Two armed drones shot down near Baghdad airport",
        "The drones were downed by the base's defences near the Diplomatic Support Center.",
    )
    first = await processor.process([drones])
    clock.advance(days=2)
    rocket = article(
        "v2",
        "Rocket hits Iraqi base at Baghdad airport housing U.S. forces",
        "One rocket landed inside Victory base, the coalition said.",
        feed="outlet-b",
        at=clock.now(),
    )
    nineveh = article(
        "n1",
        "Katyusha strike on Nineveh Operations Command in Mosul causes no casualties",
        "A rocket landed inside the headquarters in Mosul that hosts American advisers.",
        feed="outlet-d",
        at=clock.now(),
    )
    second = await processor.process([rocket, nineveh])
    clock.advance(hours=20)
    launcher = article(
        "v3",
        "Launcher found in western Baghdad after rocket on Victory base",
        "Security forces found the launcher used in the attack on the base at the airport, police said.",
        feed="outlet-c",
        at=clock.now(),
    )
    clock.advance(days=1)
    tightened = article(
        "n2",
        "Security tightened at Nineveh headquarters after rocket attack",
        "Checkpoints were added around the command in Mosul that hosts American advisers.",
        feed="outlet-c",
        at=clock.now(),
    )
    last = await processor.process([launcher, tightened])
    placed = dict(first.placed + second.placed + last.placed)
    assert placed["u:v3"] == placed["u:v2"] != placed["u:v1"]
    assert placed["u:n2"] == placed["u:n1"]


def test_reports_that_name_balad_by_its_f16s_name_the_base() -> None:
    """Iraq's F-16s fly from Balad alone: "F-16 base in Salahaddin" is Balad air base, so the next morning's report
    of the rockets shares the base with the first reports (and a different base would tell it apart)."""
    for title in ("Katyushas hit F-16 base in Salahaddin, security sources say", "Rockets hit Iraq's F-16 hub"):
        assert "balad_air_base" in MATCHER.match(title, "", "").entities, title


async def test_a_place_the_lead_names_only_as_what_came_before_does_not_join_two_attacks(
    redis: aioredis.Redis, processor: Processor, clock: FakeClock
) -> None:
    """A rocket on an oil compound in Basra in the morning, one on a base in Mosul in the evening whose lead says it
    "came hours after a rocket hit an oil compound in Basra": the whole clause after "after" names what came before,
    so the Mosul report is about Mosul only, and the two attacks stay apart."""
    basra = article(
        "b1",
        "Rocket strikes oil companies' headquarters near Basra",
        "A rocket landed at a compound housing foreign oil firms, including a US major, police said.",
    )
    first = await processor.process([basra])
    clock.advance(hours=10)
    mosul = article(
        "b2",
        "Rocket strikes Iraqi base in Mosul housing U.S. military advisers",
        "The attack came hours after a rocket hit an oil compound in Basra.",
        feed="outlet-b",
        at=clock.now(),
    )
    match = MATCHER.match_article(mosul)
    assert match.event_type == ATTACK and "basra" in match.entities and "basra" not in match.focus
    second = await processor.process([mosul])
    assert second.placed and second.placed[0][1] != first.placed[0][1]


async def test_a_report_joins_an_event_of_its_own_family_before_one_of_a_related_family(
    redis: aioredis.Redis, processor: Processor, clock: FakeClock
) -> None:
    """Rockets on the Green Zone, then within the hour the troop cut in Iraq. A later report of the cut whose body
    also tells of the rockets fires the embassy rule too, and may join an embassy event; but an event of its own
    family (the cut) is there to join, and it goes there however much it shares with the rockets' event."""
    rockets = article(
        "g1",
        "Rockets fired at Baghdad's Green Zone, home to US embassy",
        "Several rockets targeted the fortified zone housing the US embassy late on Tuesday, Iraqi officials said.",
    )
    first = await processor.process([rockets])
    clock.advance(minutes=45)
    cut = article(
        "g2",
        "Pentagon to cut troops in Iraq to 2,500 by mid-January",
        "The acting defense secretary said US force levels in Iraq would be reduced by January 15.",
        feed="outlet-b",
        at=clock.now(),
    )
    second = await processor.process([cut])
    clock.advance(minutes=15)
    later = replace(
        article(
            "g3",
            "Acting defense secretary: troops in Iraq to fall to 2,500 by Jan. 15",
            "The announcement came as rockets were fired at Baghdad's Green Zone, home to the US embassy.",
            feed="outlet-c",
            at=clock.now(),
        ),
        content="Rockets were fired at the Green Zone housing the US embassy in Baghdad on Tuesday night.",
    )
    match = MATCHER.match_article(later)
    assert match.event_type == "iraq_expels_or_ends_us_presence"
    assert "us-embassy-or-diplomatic-incident" in match.rules
    third = await processor.process([later])
    placed = dict(first.placed + second.placed + third.placed)
    assert placed["u:g3"] == placed["u:g2"] != placed["u:g1"]


def test_a_tally_of_attacks_counts_and_names_no_new_one() -> None:
    from monitor.events.facts import is_tally

    assert is_tally("Pentagon: 27 attacks on US forces since Oct. 17, latest at Al Asad")
    assert is_tally("US troops in Iraq and Syria targeted more than 50 times in four weeks")
    assert is_tally("Embassy rocket attack is the 20th on American sites since October")
    assert is_tally("Rockets near the airport the latest in a string of attacks on the US presence")
    assert is_tally("Nine attacks in a week: a rocket in the Green Zone caps a run")
    assert not is_tally("Rockets hit Ain al-Asad air base for the second time in two days")
    assert not is_tally("Nation marks 25 years since the embassy bombings")


async def test_a_tally_of_attacks_joins_the_latest_it_counts(
    redis: aioredis.Redis, processor: Processor, clock: FakeClock
) -> None:
    """Rockets on a base one morning and drones on it the next: two attacks. The Pentagon's count published that
    evening ("latest at Al Asad") reports the latest of them, and a count naming no base, hours after an attack on
    another base, reports that one: neither opens an event of its own."""
    rockets = article("y1", "Rockets fired at Ain al-Asad air base hosting US troops", "No injuries were reported.")
    first = await processor.process([rockets])
    clock.advance(hours=20)
    drones = article(
        "y2", "Two drones target Ain al-Asad air base", "Both were shot down, a US official said.",
        feed="outlet-b", at=clock.now(),
    )  # fmt: skip
    second = await processor.process([drones])
    assert second.placed[0][1] != first.placed[0][1]
    clock.advance(hours=9)
    count = article(
        "y3", "Pentagon: 27 attacks on US forces since Oct. 17, latest at Al Asad",
        "A spokesperson said the attacks had caused minor injuries.", feed="outlet-c", at=clock.now(),
    )  # fmt: skip
    assert MATCHER.match_article(count).event_type == ATTACK
    tallied = await processor.process([count])
    assert tallied.placed[0][1] == second.placed[0][1]
    clock.advance(days=3)
    harir = article("y4", "Drones target Harir air base hosting US troops in Erbil", "There were no casualties.",
                    feed="outlet-a", at=clock.now())  # fmt: skip
    third = await processor.process([harir])
    clock.advance(hours=8)
    weeks = article(
        "y5", "US forces in Iraq and Syria attacked more than 40 times in three weeks",
        "Officials said most of the drones and rockets had been intercepted.", feed="outlet-d", at=clock.now(),
    )  # fmt: skip
    counted = await processor.process([weeks])
    assert counted.placed and counted.placed[0][1] == third.placed[0][1]


def test_a_lead_naming_its_happening_by_an_earlier_day_looks_back() -> None:
    from datetime import UTC, datetime

    from monitor.events.facts import leads_back

    monday = datetime(2020, 3, 16, 9, tzinfo=UTC)
    thursday = datetime(2024, 2, 8, 1, tzinfo=UTC)
    assert leads_back("Three service members were hurt in Saturday's rocket attack on the base. Two died.", monday)
    assert leads_back("The minister condemned this week's rocket fire near the airport.")
    assert not leads_back("Rockets hit the base on Saturday evening, officials said.", monday)
    assert not leads_back("Drones hit the base again after Saturday's rocket attack.", monday)  # "again": a new one
    # the day before is the night's news, not a look back; a weekday with no publication time says nothing
    assert not leads_back("The commander died in Wednesday's strike on his car, officials said.", thursday)
    assert not leads_back("Three service members were hurt in Saturday's rocket attack on the base.")


async def test_a_look_back_that_names_no_base_joins_the_days_attack(
    redis: aioredis.Redis, processor: Processor, clock: FakeClock
) -> None:
    """A barrage on Camp Taji on Wednesday evening, the coalition's account of it on Thursday; on Friday morning a
    report of the wounded names only "an Iraqi base" and "Wednesday's rocket attack": it is that attack's news,
    not a new one, though no base ties it to the attack."""
    barrage = article("z1", "Rockets hit Camp Taji again, coalition troops wounded", "Over 30 Katyushas fell.")
    first = await processor.process([barrage])
    clock.advance(hours=26)
    account = article("z0", "Coalition says Camp Taji rockets damaged hangars", "Clean-up went on at the base.",
                      feed="outlet-c", at=clock.now())  # fmt: skip
    assert (await processor.process([account])).placed[0][1] == first.placed[0][1]
    clock.advance(hours=13)
    wounded = article(
        "z2", "Coalition members wounded at Iraqi base; two seriously",
        "Three coalition service members were injured in Wednesday's rocket attack on the base north of Baghdad.",
        feed="outlet-b", at=clock.now(),
    )  # fmt: skip
    assert MATCHER.match_article(wounded).event_type == ATTACK
    joined = await processor.process([wounded])
    assert joined.placed and joined.placed[0][1] == first.placed[0][1]


async def test_headlines_leading_with_either_man_killed_at_one_base_are_one_killing(
    redis: aioredis.Redis, processor: Processor, clock: FakeClock
) -> None:
    """Headlines alone, naming neither man in a body: one leads with the general, the next with the militia chief,
    both at Baghdad airport. One strike at one site is one killing; a killing in another place stays apart."""
    general = article("w1", "US strike at Baghdad airport kills Iran's Quds Force commander Qassem Soleimani", "")
    first = await processor.process([general])
    clock.advance(hours=1)
    chief = article("w2", "Militia chief Abu Mahdi al-Muhandis among dead in US raid on Baghdad airport", "",
                    feed="outlet-b", at=clock.now())  # fmt: skip
    assert (await processor.process([chief])).placed[0][1] == first.placed[0][1]
    clock.advance(hours=2)
    elsewhere = article("w3", "US drone strike in eastern Baghdad kills Nujaba commander Abu Taqwa", "",
                        feed="outlet-c", at=clock.now())  # fmt: skip
    apart = await processor.process([elsewhere])
    assert apart.placed and apart.placed[0][1] != first.placed[0][1]


async def test_a_look_back_at_what_an_event_was_about_joins_it_days_later(
    redis: aioredis.Redis, processor: Processor, clock: FakeClock
) -> None:
    """Two weeks after the US warned it would close its Baghdad embassy, the factions' truce "after the threat to
    shut the embassy" reports on that warning (a follow-up naming what it was about), not a new incident."""
    warning = article("v1", "US warns Iraq it will close its Baghdad embassy unless militia attacks stop",
                      "The secretary of state told Iraq's president the mission would shut.")  # fmt: skip
    first = await processor.process([warning])
    clock.advance(days=12)
    truce = article("v2", "Factions announce conditional truce after US threat to shut Baghdad embassy",
                    "Armed groups said they would halt rocket attacks on US targets.", feed="outlet-b",
                    at=clock.now())  # fmt: skip
    joined = await processor.process([truce])
    assert joined.placed and joined.placed[0][1] == first.placed[0][1]


async def test_the_dead_named_after_a_second_attack_on_the_base_join_the_attack_that_killed_them(
    redis: aioredis.Redis, processor: Processor, clock: FakeClock
) -> None:
    """Rockets kill three at Camp Taji; three days later the base is hit again and troops are wounded. The name of
    a soldier killed, published hours after the second attack, belongs to the first: news of the dead goes to the
    event that killed, though the second is nearer in time."""
    deadly = article("d1", "Rocket attack on Camp Taji kills two Americans and a Briton", "Katyushas hit the base.")
    first = await processor.process([deadly])
    clock.advance(days=3)
    again = article("d2", "Rockets hit Camp Taji again, coalition troops wounded", "More than 30 rockets fell.",
                    feed="outlet-b", at=clock.now())  # fmt: skip
    second = await processor.process([again])
    assert second.placed[0][1] != first.placed[0][1]
    clock.advance(hours=5)
    named = article("d3", "Soldier killed at Camp Taji named as a reservist medic",
                    "Coalition troops were wounded when more than 30 rockets hit Camp Taji again on Saturday.",
                    feed="outlet-c", at=clock.now())  # fmt: skip
    placed = await processor.process([named])
    assert placed.placed and placed.placed[0][1] == first.placed[0][1]
