"""Every entity has an English display label (``label:``, or a first name in Latin letters), and event payloads
carry the labels of their entities in ``entity_labels``: what lets an Arabic, Persian or Sorani alert name its actors
and places in English."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.config.yamlsrc import load_yaml_documents
from monitor.core.errors import RuleError
from monitor.detection.rulefile import load_rules
from monitor.detection.rulefile.compile import display_label, is_latin, unlabelled_entities
from monitor.detection.rulefile.load import rule_files
from monitor.detection.rulefile.schema import Documents, EntitySpec
from monitor.events.alerts import entity_labels
from tests.support.rulepack import RULE

ROOT = Path(__file__).resolve().parent.parent


def documents(*paths: Path) -> Documents:
    files, problems = rule_files(paths)
    docs = Documents(problems)
    for path in files:
        for doc in load_yaml_documents(path):
            docs.add(doc)
    return docs


def test_every_shipped_entity_has_a_latin_display_label() -> None:
    docs = documents(ROOT / "rules")
    assert not docs.problems
    missing = unlabelled_entities(docs)
    assert not missing, "entities without an English label:\n" + "\n".join(str(p) for p in missing)
    ruleset = load_rules([ROOT / "rules"])
    assert all(e.label and is_latin(e.label) for e in ruleset.entities.values())


def test_explicit_labels_and_the_first_name_default() -> None:
    entities = load_rules([ROOT / "rules"]).entities
    assert {k: entities[k].label for k in ("ain_al_asad", "us_embassy_iraq", "irgc", "kataib_hezbollah")} == {
        "ain_al_asad": "Ain al-Asad air base",
        "us_embassy_iraq": "US embassy in Baghdad",
        "irgc": "Islamic Revolutionary Guard Corps",
        "kataib_hezbollah": "Kataib Hezbollah",
    }
    assert entities["islamic_resistance_in_iraq"].label == "Islamic Resistance in Iraq"
    assert entities["baghdad"].label == "Baghdad"  # no label: its first name
    assert entities["turkey"].label == "Turkey"  # named only in Arabic script, labelled in rules/arabic_script


def test_the_default_needs_latin_letters() -> None:
    assert display_label(EntitySpec(id="a", type="place", names=["Ramadi", "الرمادي"])) == "Ramadi"
    assert display_label(EntitySpec(id="a", type="place", names=["الرمادي", "Ramadi"])) is None
    assert display_label(EntitySpec(id="a", type="place", names=["الرمادي"], label="Ramadi")) == "Ramadi"
    assert display_label(EntitySpec(id="a", type="place", names=["x"], label="الرمادي")) is None
    assert display_label(EntitySpec(id="a", type="place", names=["Ḥarīr"])) == "Ḥarīr"  # accents are Latin
    assert not is_latin("123") and is_latin("K-1 air base")


def test_an_entity_without_a_label_is_reported_at_its_line(tmp_path: Path) -> None:
    (tmp_path / "rule.yaml").write_text(RULE)
    (tmp_path / "entities.yaml").write_text(
        "entities:\n"
        "  - id: united_states\n    type: country\n    names: [US, United States, American]\n"
        "  - id: baghdad\n    type: place\n    affiliation: iraq\n    names: [Baghdad]\n"
        "  - id: tarmiyah\n    type: place\n    names: [الطارمية]\n"
    )
    [problem] = unlabelled_entities(documents(tmp_path))
    assert (Path(problem.path).name, problem.line) == ("entities.yaml", 9)
    assert "tarmiyah" in problem.message
    load_rules([tmp_path])  # a pack of one's own may do without labels: the shipped pack is the one tested


@pytest.mark.parametrize("label", ["", "   "])
def test_an_empty_label_is_a_schema_problem(tmp_path: Path, label: str) -> None:
    (tmp_path / "rule.yaml").write_text(RULE)
    (tmp_path / "entities.yaml").write_text(
        "entities:\n  - id: united_states\n    type: country\n    names: [US]\n"
        f"  - id: baghdad\n    type: place\n    affiliation: iraq\n    names: [Baghdad]\n    label: '{label}'\n"
    )
    with pytest.raises(RuleError) as caught:
        load_rules([tmp_path])
    problem = caught.value.problems[0]  # the file fails its schema, so the rule's entities are unknown too
    assert (Path(problem.path).name, problem.line) == ("entities.yaml", 9)
    assert problem.message == "entities.1.label: a label must not be empty"


def test_payload_labels_follow_the_event_entities() -> None:
    entities = load_rules([ROOT / "rules"]).entities
    labels = entity_labels(["islamic_resistance_in_iraq", "no_such_entity", "harir_base"], entities)
    assert labels == [
        {"id": "islamic_resistance_in_iraq", "label": "Islamic Resistance in Iraq", "type": "militia"},
        {"id": "harir_base", "label": "Harir air base", "type": "base"},
    ]
