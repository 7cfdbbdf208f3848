"""The rule format, its validation (every problem as path:line), the matcher, and the shipped pack."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from monitor.cli import main
from monitor.core.errors import RuleError
from monitor.detection.evaluation import example_failures, score_corpus
from monitor.detection.matcher import Matcher
from monitor.detection.rulefile import load_rules

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data"

ENTITIES = """\
entities:
  - id: united_states
    type: country
    affiliation: us
    names: [US, United States, American]
  - id: donald_trump
    type: person
    affiliation: us
    names: [Donald Trump, Trump]
  - id: baghdad
    type: place
    affiliation: iraq
    names: [Baghdad]
  - id: pmf
    type: militia
    affiliation: iraq
    names: [Popular Mobilization Forces]
    ambiguous: [PMF]
    context: [baghdad]
"""

RULE = """\
title: Test strike rule
id: test-strike
description: Detects a US strike near Baghdad, for tests.
tags: [event.us_strike_in_iraq]
level: 4
detection:
  us: {entities: [united_states]}
  strike: {keywords: [strike~, airstrike~]}
  place: {affiliations: [iraq]}
  yemen: {keywords: [Yemen]}
  condition: near(us, strike, 3) and sentence(strike, place) and not yemen
severity:
  - when: title(place)
    add: 1
    reason: place in the headline
falsepositives: [none]
examples:
  match:
    - title: US airstrike hits depot in Baghdad
  no_match:
    - title: US strikes Yemen, Baghdad reacts
"""


def pack(tmp_path: Path, *docs: str) -> Path:
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "entities.yaml").write_text(ENTITIES)
    for i, doc in enumerate(docs):
        (folder / f"rule{i}.yaml").write_text(doc)
    return folder


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


def test_every_problem_in_every_file_is_reported_with_its_line(tmp_path: Path) -> None:
    bad = """\
title: Broken
id: test-strike
description: Misses the required prefix
tags: [strike]
level: 9
colour: red
detection:
  a: {keywords: [x], bogus: 1}
  b: {entities: [nobody], regex: ['(']}
  c: {keywords: [y]}
  c: {keywords: [z]}
  condition: a and missing
falsepositives: [none]
"""
    folder = pack(tmp_path, RULE, bad)
    with pytest.raises(RuleError) as caught:
        load_rules([folder])
    text = "\n".join(str(p) for p in caught.value.problems)
    path = folder / "rule1.yaml"
    for expected in (
        f"{path}:3: description",
        f"{path}:5: level",
        f"{path}:6: colour: unknown field",
        f"{path}:8: detection.a.bogus: unknown field",
        f"{path}:9: test-strike: unknown entity 'nobody'",
        f"{path}:9: test-strike: bad regex",
        f"{path}:11: duplicate key 'c'",
        f"{path}:12: test-strike: condition names missing selection 'missing'",
        f"{path}:9: test-strike: selection 'b' is not used by the condition",
    ):
        assert expected in text, f"{expected!r} not in:\n{text}"


def test_duplicate_rule_ids_are_refused(tmp_path: Path) -> None:
    with pytest.raises(RuleError, match="duplicate rule id 'test-strike'"):
        load_rules([pack(tmp_path, RULE, RULE)])


def test_check_exits_2_on_bad_rules(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = pack(tmp_path, RULE.replace("near(us, strike, 3)", "near(us, strike, 3) and nowhere"))
    config = tmp_path / "monitor.yaml"
    config.write_text(f"rules: [{folder}]\n")
    assert main(["check", "-c", str(config)]) == 2
    assert "condition names missing selection 'nowhere'" in capsys.readouterr().err


def test_experimental_rules_are_logged_not_alerted(tmp_path: Path) -> None:
    matcher = Matcher(load_rules([pack(tmp_path, RULE.replace("level: 4", "level: 4\nstatus: experimental"))]))
    match = matcher.match("US airstrike hits depot in Baghdad")
    assert not match.alert and match.shadow_rules == ("test-strike",)


# --- the shipped pack -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shipped() -> Matcher:
    return Matcher(load_rules([ROOT / "rules"]))


def test_shipped_examples_pass(shipped: Matcher) -> None:
    assert example_failures(shipped.ruleset, shipped) == []


@pytest.mark.parametrize("name", ["devset_tune.jsonl", "devset_tune_syria.jsonl", "devset_probes.jsonl"])
def test_shipped_pack_on_the_tuning_sets(shipped: Matcher, name: str) -> None:
    scores = score_corpus(DATA / name, shipped)
    precision, recall, _ = scores.overall
    assert precision >= 0.95 and recall >= 0.95, scores.errors
    assert scores.type_accuracy >= 0.9, scores.errors


def test_shipped_pack_on_the_holdout_set(shipped: Matcher) -> None:
    """A regression floor on articles the rules were not tuned on (the figures reported come from here)."""
    scores = score_corpus(DATA / "devset_holdout.jsonl", shipped)
    precision, recall, _ = scores.overall
    assert precision >= 0.9 and recall >= 0.9, scores.errors
    assert scores.type_accuracy >= 0.8, scores.errors


def test_headline_plus_one_sentence_is_enough(shipped: Matcher) -> None:
    short = [json.loads(line) for line in (DATA / "devset_tune.jsonl").read_text().splitlines()]
    short = [a for a in short if a["label"] and not a["content"]]
    assert len(short) >= 5
    for article in short:
        assert shipped.match(article["title"], article["summary"]).alert, article["title"]


def test_real_headline_corpus_false_alarms(shipped: Matcher, corpus: Path) -> None:
    import gzip

    labels = {json.loads(line)["link"] for line in (DATA / "headlines_labels.jsonl").read_text().splitlines()}
    caught = false_alarms = 0
    with gzip.open(corpus / "news" / "news_category_dataset.jsonl.gz", "rt") as rows:
        for line in rows:
            row = json.loads(line)
            alert = shipped.match(row["headline"], row["short_description"]).alert
            if row["link"] in labels:
                caught += alert
            else:
                false_alarms += alert
    assert caught >= 0.8 * len(labels)
    assert false_alarms <= 3


def test_the_headline_action_that_comes_first_names_the_story(shipped: Matcher) -> None:
    strike_first = shipped.match("US strikes Kataib Hezbollah after drone attack on US base in Iraq")
    attack_first = shipped.match("Drone attack on US base in Iraq follows US strikes on Kataib Hezbollah")
    assert strike_first.event_type == "us_strike_in_iraq"
    assert attack_first.event_type == "attack_on_us_forces_in_iraq"
    # The killing supersedes the strike that did it, whatever the word order.
    assert shipped.match("US conducts strike in Baghdad killing Kataib Hezbollah commander").event_type == (
        "high_value_target_killed"
    )


def test_unknown_action_and_superseded_rules_are_reported(tmp_path: Path) -> None:
    doc = RULE.replace("falsepositives:", "action: [nothing]\nsupersedes: [no-such-rule]\nfalsepositives:")
    with pytest.raises(RuleError) as caught:
        load_rules([pack(tmp_path, doc)])
    text = "\n".join(str(p) for p in caught.value.problems)
    assert "action names missing selection 'nothing'" in text and "supersedes unknown rule 'no-such-rule'" in text
