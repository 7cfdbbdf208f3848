"""What an article's body tells as the background of its news ("... came two days after Soleimani was killed in a
US strike") does not make it an escalation report; the body's first sentence, and the headline and lead, still do."""

from __future__ import annotations

from pathlib import Path

from monitor.detection.matcher import Matcher
from monitor.detection.rulefile import load_rules

MATCHER = Matcher(load_rules([Path(__file__).resolve().parents[1] / "rules"]), min_severity=1)

KILLING = "after Qassem Soleimani was killed in a US drone strike at Baghdad airport"


def test_a_killing_told_as_background_further_down_does_not_alert() -> None:
    match = MATCHER.match(
        "NATO to expand training mission in Iraq",
        "Some coalition trainers could move under the alliance.",
        "NATO defence ministers agreed to take over some of the training of Iraqi forces.\n"
        f"The mission was paused in January {KILLING}.",
    )
    assert not match.alert


def test_what_the_body_says_someone_vowed_to_respond_to_is_background() -> None:
    """Blasts at faction sites, "Washington had vowed to respond to Wednesday's attack on Camp Taji": the attack
    is what the news answers, not a new one (typed as one, the report fused the attack and the US strike)."""
    match = MATCHER.match(
        "Explosions heard at armed group sites south of Baghdad",
        "",
        "Loud blasts were heard near sites used by armed factions south of Baghdad after midnight, residents said.\n"
        "Their cause was not clear. Washington had vowed to respond to Wednesday's rocket attack on Camp Taji, "
        "which killed two Americans.",
    )
    assert match.event_type != "attack_on_us_forces_in_iraq"


def test_what_happened_hours_earlier_is_background() -> None:
    """Rockets near the embassy, then "Hours earlier parliament voted to ask the government to end the presence of
    foreign troops": the vote is what came before the news, not the news (typed by it, the report was an
    expulsion)."""
    match = MATCHER.match(
        "Another night of rockets: some come down near the American embassy",
        "",
        "BAGHDAD - A number of rockets landed in the Green Zone close to the US embassy on Sunday evening, security "
        "sources said, as sirens went off inside the compound.\n"
        "There was no word yet on casualties. Hours earlier parliament voted to ask the government to end the "
        "presence of foreign troops in Iraq.",
    )
    assert match.alert and match.event_type == "us_embassy_or_diplomatic_incident"


def test_the_same_words_as_the_news_of_the_body_first_sentence_alert() -> None:
    match = MATCHER.match(
        "Crude up 4%, havens bid as Middle East risk returns",
        "",
        f"Brent crude rose about 4% on Friday {KILLING}.\nGold climbed to its highest in six years.",
    )
    assert match.alert and match.event_type == "high_value_target_killed"


def test_the_news_itself_further_down_still_counts() -> None:
    """Only what follows "after" is background: the attack told in the third sentence is news."""
    match = MATCHER.match(
        "Pentagon statement",
        "",
        "The Department of Defense issued the following statement on Tuesday.\n"
        "It concerns the security of US personnel in the region.\n"
        "Rockets struck Ain al-Asad air base hosting US troops in Iraq, wounding two service members.",
    )
    assert match.alert and match.event_type == "attack_on_us_forces_in_iraq"


def test_a_statement_introduced_as_following_is_news() -> None:
    """In the body "the following statement" opens the news, it does not name what the news came after."""
    match = MATCHER.match(
        "Statement by the Department of Defense",
        "",
        "The Department of Defense released a statement on Thursday night.\n"
        "The Pentagon issued the following statement: at the direction of the President, the US military took "
        "decisive defensive action by killing Qassem Soleimani, the head of the Quds Force, in a strike at Baghdad "
        "airport.",
    )
    assert match.alert and match.event_type == "high_value_target_killed"


def test_a_story_whose_headline_fires_no_rule_takes_who_acts_on_whom_from_its_lead() -> None:
    """ "Iran vows revenge" fires nothing in its headline; the body names a drone at Baghdad airport and someone
    killed, which the attack rule reads as an attack on the US side there. The lead says the US side acted
    ("killed by an American drone"): the story is the killing the strike was."""
    match = MATCHER.match(
        "Iran vows 'harsh revenge' for killing of its top general",
        "Supreme leader declares three days of mourning.",
        "Iran's supreme leader said severe revenge awaited those responsible for the death of Qassem Soleimani, "
        "killed by an American drone at Baghdad's airport.\n"
        "Iraq's caretaker prime minister called the strike a violation of the terms under which US forces are "
        "in the country.",
    )
    assert "attack-on-us-forces-in-iraq" in match.rules
    assert match.event_type == "high_value_target_killed"


def test_a_headline_that_says_who_acts_is_not_overruled_by_its_lead() -> None:
    """The lead is read only when the headline fires no rule: a headline of rockets on a base stays an attack
    whatever the lead's first cue."""
    match = MATCHER.match(
        "Rockets hit Ain al-Asad air base hosting US troops",
        "The attack came after a US drone strike killed a Kataib Hezbollah commander in Baghdad.",
        "Three rockets landed inside the base, the coalition said.",
    )
    assert match.event_type == "attack_on_us_forces_in_iraq"
