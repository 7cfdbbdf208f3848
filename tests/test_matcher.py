"""The matcher (``monitor.detection.matcher``) on a tiny pack: evidence, proximity, sentences, filters,
ambiguous names and experimental rules."""

from __future__ import annotations

from pathlib import Path

from monitor.detection.evaluation import example_failures
from monitor.detection.matcher import Matcher
from monitor.detection.rulefile import load_rules
from monitor.detection.text import without_blog_label
from tests.support.rulepack import RULE, pack


def test_a_valid_pack_loads_and_its_examples_pass(tmp_path: Path) -> None:
    ruleset = load_rules([pack(tmp_path, RULE)])
    matcher = Matcher(ruleset)
    assert example_failures(ruleset, matcher) == []
    match = matcher.match("US airstrike hits depot in Baghdad")
    assert match.alert and match.severity == 5 and match.event_type == "us_strike_in_iraq"
    assert match.entities == ("united_states", "baghdad")
    assert {(e.selection, e.field, e.phrase) for e in match.evidence} >= {("strike", "title", "airstrike")}


def test_proximity_sentences_and_filters(tmp_path: Path) -> None:
    matcher = Matcher(load_rules([pack(tmp_path, RULE)]))
    assert not matcher.match("US officials spoke for an hour before the strike in Baghdad").alert  # too far apart
    assert not matcher.match("US strike reported", "Separately, Baghdad was calm").alert  # not one sentence
    assert matcher.match("Markets", "The US strike near Baghdad killed two.").severity == 4  # place not in title
    assert not matcher.match("US strike in Baghdad and Yemen").alert  # filtered


def test_ambiguous_names_need_context_and_overlaps_are_all_reported(tmp_path: Path) -> None:
    matcher = Matcher(load_rules([pack(tmp_path, RULE)]))
    assert "pmf" not in matcher.match("PMF programme opens applications").entities
    assert "pmf" in matcher.match("PMF fighters gathered in Baghdad").entities
    # "Donald Trump" and "Trump" are one entity; overlapping phrases are both found, not only the longest.
    assert matcher.match("Donald Trump spoke").entities == ("donald_trump",)


def test_experimental_rules_are_logged_not_alerted(tmp_path: Path) -> None:
    matcher = Matcher(load_rules([pack(tmp_path, RULE.replace("level: 4", "level: 4\nstatus: experimental"))]))
    match = matcher.match("US airstrike hits depot in Baghdad")
    assert not match.alert and match.shadow_rules == ("test-strike",)


KILLING = """\
title: Test killing rule
id: test-killing
description: Detects a killing in Baghdad, for tests.
tags: [event.high_value_target_killed]
level: 5
detection:
  killed: {keywords: [killed, kills]}
  place: {entities: [baghdad]}
  condition: killed and place
action: [killed]
supersedes: [test-strike]
falsepositives: [none]
"""
HEADLINE = "US airstrike kills commander in Baghdad"


def test_the_first_action_in_the_headline_names_the_story_unless_superseded(tmp_path: Path) -> None:
    strike_first = RULE.replace("falsepositives:", "action: [strike]\nfalsepositives:")
    not_superseding = KILLING.replace("supersedes: [test-strike]\n", "")
    matcher = Matcher(load_rules([pack(tmp_path / "a", strike_first, not_superseding)]))
    assert matcher.match(HEADLINE).event_type == "us_strike_in_iraq"  # "airstrike" comes before "kills"
    matcher = Matcher(load_rules([pack(tmp_path / "b", strike_first, KILLING)]))
    match = matcher.match(HEADLINE)
    assert match.event_type == "high_value_target_killed"  # the killing supersedes the strike that did it
    assert match.rules == ("test-strike", "test-killing")  # ranked: the strike's action comes first
    assert {e.rule for e in match.evidence} == {"test-killing"}


def test_experimental_rules_shadow_and_explain_traces_every_rule_that_fired(tmp_path: Path) -> None:
    experimental = KILLING.replace("level: 5", "level: 5\nstatus: experimental")
    matcher = Matcher(load_rules([pack(tmp_path, RULE, experimental)]))
    match = matcher.match(HEADLINE)
    assert match.alert and match.event_type == "us_strike_in_iraq"
    assert match.rules == ("test-strike",) and match.shadow_rules == ("test-killing",)
    trace = matcher.explain(HEADLINE)
    assert trace[0].startswith("test-strike: severity 5 (level 4; +1 place in the headline), fires on the headline")
    assert trace[1].startswith("test-killing: severity 5 (level 5), fires on the headline")


def test_what_a_headline_names_only_as_the_cause_of_its_news_is_not_its_focus(tmp_path: Path) -> None:
    """ "Hours after X, Y happened" is about Y: X, named in the two words after "after", is not what the report is
    about; what a market headline reports further on after "after" still is."""
    matcher = Matcher(load_rules([pack(tmp_path, RULE)]))
    caused = matcher.match("Hours after Baghdad blasts, US strike hits a depot", "", "")
    assert "baghdad" in caused.entities and "baghdad" not in caused.focus
    assert "united_states" in caused.focus
    news = matcher.match("Oil jumps after a weekend US airstrike near Baghdad", "", "")
    assert news.alert and {"united_states", "baghdad"} <= set(news.focus)
    # where the fire came from is not what it hit either
    launched = matcher.match("US strike hits a depot after rockets fired from Baghdad", "", "")
    assert "baghdad" in launched.entities and "baghdad" not in launched.focus
    # nor a place the site lies away from
    away = matcher.match("US strike hits a depot north of Baghdad", "", "")
    assert "baghdad" in away.entities and "baghdad" not in away.focus


def test_a_post_without_a_headline_is_about_its_first_sentence(tmp_path: Path) -> None:
    """A channel's post has no title or summary: what its first sentence names is what it is about, and a flash
    label before it ("BREAKING |") is not that sentence."""
    matcher = Matcher(load_rules([pack(tmp_path, RULE)]))
    for body in ("US strike hits a depot near Baghdad. More later.", "BREAKING | US strike hits a depot near Baghdad"):
        post = matcher.match("", "", body)
        assert post.alert and "baghdad" in post.focus, body
    # a headline without a summary keeps what its headline names
    assert "baghdad" not in matcher.match("US strike hits a depot", "", "It lies near Baghdad.").focus


def test_a_live_blog_label_is_not_part_of_the_story(tmp_path: Path) -> None:
    """ "Yemen war live: US strike hits a depot near Baghdad" is the strike's line in a blog named after another
    theatre: the label names neither where nor what (the rule's Yemen veto does not apply); a headline whose verb
    is "live" keeps every word."""
    matcher = Matcher(load_rules([pack(tmp_path, RULE)]))
    assert matcher.match("Yemen war live: US strike hits a depot near Baghdad", "", "").alert
    assert matcher.match_many([("Yemen war live: US strike hits a depot near Baghdad", "", "")])[0].alert
    assert not matcher.match("US strike hits a depot near Baghdad, Yemen live", "", "").alert
    assert without_blog_label("Middle East crisis - live updates: US strike hits a depot") == "US strike hits a depot"
    assert without_blog_label("Americans live in fear: rockets again") == "Americans live in fear: rockets again"
    assert without_blog_label("AS IT HAPPENED: US strike hits a depot") == "US strike hits a depot"
    assert without_blog_label("Live: ") == "Live: "


VOTE = """\
title: Test vote rule
id: test-vote
description: Detects a vote on foreign troops in Baghdad, for tests.
tags: [event.iraq_expels_or_ends_us_presence]
level: 4
detection:
  formal: {keywords: [resolution, vote]}
  on_troops: {regex: ['(?i)\\b(?:resolution|vote) on foreign troops\\b']}
  place: {entities: [baghdad]}
  condition: (formal and on_troops) or (formal and place)
falsepositives: [none]
"""


def test_a_branch_that_needs_a_regular_expression_fires_without_a_trace(tmp_path: Path) -> None:
    # No phrase announces what a regular expression finds: the pack's presence test must not rule the branch out
    # before the expression runs (it did when only the traced path reached the rule).
    matcher = Matcher(load_rules([pack(tmp_path, VOTE)]))
    headline = "Parliament passes resolution on foreign troops"
    assert matcher.explain(headline)[0].startswith("test-vote: severity 4")
    match = matcher.match(headline)
    assert match.alert and match.event_type == "iraq_expels_or_ends_us_presence"
    assert matcher.match_many([(headline, "", ""), ("Parliament passes resolution on fisheries", "", "")]) == [
        match,
        matcher.match("Parliament passes resolution on fisheries"),
    ]
    assert not matcher.match("Parliament passes resolution on fisheries").alert
