"""The rule format and its validation (``monitor.detection.rulefile``): every problem in every file, as path:line."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.cli import main
from monitor.core.errors import RuleError
from monitor.detection.matcher import Matcher
from monitor.detection.rulefile import load_rules
from monitor.detection.rulefile.compile import base_towns
from tests.support.rulepack import RULE, pack


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


def test_unknown_action_and_superseded_rules_are_reported(tmp_path: Path) -> None:
    doc = RULE.replace("falsepositives:", "action: [nothing]\nsupersedes: [no-such-rule]\nfalsepositives:")
    with pytest.raises(RuleError) as caught:
        load_rules([pack(tmp_path, doc)])
    text = "\n".join(str(p) for p in caught.value.problems)
    assert "action names missing selection 'nothing'" in text and "supersedes unknown rule 'no-such-rule'" in text


def test_cross_reference_problems_are_reported_for_entities_rules_and_filters(tmp_path: Path) -> None:
    entities = """\
entities:
  - {id: baghdad, type: place, names: [Baghdad City]}
  - {id: trump_too, type: person, names: [Trump, "!!"], ambiguous: [DJT]}
  - {id: hashd, type: militia, names: [Hashd al-Shaabi], context: [nobody]}
  - {id: camp_x, type: base, names: [Camp X], within: [atlantis]}
"""
    rule = """\
title: Broken references
id: test-refs
description: Detects nothing, for tests.
tags: [event.test]
level: 3
detection:
  kind: {entity_types: [robot], affiliations: [mars]}
  bad-name: {keywords: [x]}
  words: {keywords: ["!!", fine]}
  none: {keywords: [y]}
  condition: not none and kind and words
falsepositives: [none]
"""
    no_condition = RULE.replace("test-strike", "test-nocond").replace(
        "  condition: near(us, strike, 3) and sentence(strike, place) and not yemen\n", ""
    )
    schema_error = "title: x\nid: BAD ID\ndetection:\n  q: {entities: [ghost]}\n  condition: q\n"
    a_filter = 'filter:\n  rules: [test-strike, no-such-rule, "*"]\n  detection:\n    s: {keywords: [sport]}\n'
    folder = pack(tmp_path, RULE, rule, no_condition, schema_error, a_filter)
    (folder / "more_entities.yaml").write_text(entities)
    with pytest.raises(RuleError) as caught:
        load_rules([folder])
    text = "\n".join(str(p) for p in caught.value.problems)
    more, refs, nocond = folder / "more_entities.yaml", folder / "rule1.yaml", folder / "rule2.yaml"
    schema, filters = folder / "rule3.yaml", folder / "rule4.yaml"
    for expected in (
        f"{more}:2: duplicate entity id 'baghdad'",
        f"{more}:3: trump_too: name 'Trump' also names entity 'donald_trump'",
        f"{more}:3: trump_too: name '!!' has no letters",
        f"{more}:3: trump_too: 'ambiguous' names need a 'context'",
        f"{more}:4: hashd: context names unknown entity 'nobody'",
        f"{more}:5: camp_x: within names unknown entity 'atlantis'",
        f"{schema}:4: BAD ID: unknown entity 'ghost'",  # a rule failing its schema still has its detection checked
        f"{refs}:7: test-refs: no entity has type 'robot'",
        f"{refs}:7: test-refs: no entity has affiliation 'mars'",
        f"{refs}:7: test-refs: selection 'kind' is empty",
        f"{refs}:8: test-refs: selection name 'bad-name' must be an identifier",
        f"{refs}:9: test-refs: keyword '!!' has no letters or digits",
        f"{nocond}:6: test-nocond: detection has no condition",
        f"{filters}:2: filter {filters}: unknown rule 'no-such-rule'",
        f"{filters}:3: filter {filters}: detection has no condition",
    ):
        assert expected in text, f"{expected!r} not in:\n{text}"
    assert "not negated" not in text  # 'kind' and 'words' are not negated


def test_missing_paths_empty_folders_and_packs_without_rules(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(RuleError) as caught:
        load_rules([tmp_path / "empty", tmp_path / "absent"])
    assert [str(p) for p in caught.value.problems] == [
        f"{tmp_path / 'empty'}: no rule files (*.yaml) in this folder",
        f"{tmp_path / 'absent'}: rule path does not exist",
    ]
    with pytest.raises(RuleError, match="the rule pack has no rules"):
        load_rules([pack(tmp_path)])
    negated = RULE.replace("near(us, strike, 3) and sentence(strike, place) and not yemen", "not yemen")
    with pytest.raises(RuleError, match="condition needs at least one selection that is not negated"):
        load_rules([pack(tmp_path / "negated", negated.replace("severity:", "x_severity:"))])


def test_bases_are_found_under_their_other_common_forms(tmp_path: Path) -> None:
    """A base named "Balad Air Base" is also "Balad airbase" and "Balad base"; a form another entity already owns
    stays its own."""
    (tmp_path / "entities.yaml").write_text(
        "entities:\n"
        "  - id: united_states\n    type: country\n    affiliation: us\n    names: [US]\n"
        "  - id: balad_air_base\n    type: base\n    affiliation: iraq\n    names: [Balad Air Base]\n"
        "  - id: camp_taji\n    type: base\n    affiliation: iraq\n    names: [Camp Taji]\n"
        "  - id: taji_town\n    type: place\n    affiliation: iraq\n    names: [Taji base]\n",
        encoding="utf-8",
    )
    (tmp_path / "rule.yaml").write_text(RULE, encoding="utf-8")
    entities = load_rules([tmp_path]).entities
    assert {"Balad airbase", "Balad base", "Balad airfield", "Balad military base"} <= set(
        entities["balad_air_base"].names
    )
    assert "Taji air base" in entities["camp_taji"].names
    assert "Taji base" not in entities["camp_taji"].names  # the place owns it
    matcher = Matcher(load_rules([tmp_path]))
    assert "balad_air_base" in matcher.match("Rockets fall on Balad airbase", "", "").entities


def test_a_town_named_like_a_base_stands_for_it_unless_the_base_lies_in_it(tmp_path: Path) -> None:
    (tmp_path / "entities.yaml").write_text(
        "entities:\n"
        "  - id: united_states\n    type: country\n    affiliation: us\n    names: [US]\n"
        "  - id: balad_air_base\n    type: base\n    affiliation: iraq\n    names: [Balad Air Base]\n"
        "  - id: balad\n    type: place\n    affiliation: iraq\n    names: [Balad]\n"
        "  - id: erbil\n    type: place\n    affiliation: iraq\n    names: [Erbil]\n"
        "  - id: erbil_air_base\n    type: base\n    affiliation: iraq\n    within: [erbil]\n"
        "    names: [Erbil air base]\n",
        encoding="utf-8",
    )
    (tmp_path / "rule.yaml").write_text(RULE, encoding="utf-8")
    assert base_towns(load_rules([tmp_path]).entities) == {"balad": ("balad_air_base",)}
