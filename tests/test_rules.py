"""The shipped rule pack: its examples, its scores on the labelled sets, and how it names a story."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from monitor.detection.evaluation import example_failures, score_corpus
from monitor.detection.matcher import Matcher
from monitor.detection.rulefile import load_rules
from tests.support.devset import write_fold

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data"


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


@pytest.mark.parametrize(
    ("kind", "fold", "floor"),
    [
        # The tuned fold: a regression floor close to where the pack stands.
        ("articles", "tune", (0.93, 0.9, 0.93)),
        ("headlines", "tune", (0.97, 0.88, 0.93)),
        # The held-out fold (other real events): scored, never read article by article; a floor, not a target.
        ("articles", "held", (0.95, 0.93, 0.87)),
        ("headlines", "held", (0.93, 0.78, 0.9)),
    ],
)
def test_shipped_pack_on_devset2(
    shipped: Matcher, tmp_path: Path, kind: str, fold: str, floor: tuple[float, float, float]
) -> None:
    scores = score_corpus(write_fold(kind, fold, tmp_path / f"{kind}_{fold}.jsonl"), shipped)
    precision, recall, _ = scores.overall
    figures = (precision, recall, scores.type_accuracy)
    assert all(f >= lowest for f, lowest in zip(figures, floor, strict=True)), figures


def test_shipped_pack_on_archive_style_probes(shipped: Matcher) -> None:
    """Headlines written after the tuning, in the archive's styles: victims by nationality, markets, reactions."""
    scores = score_corpus(DATA / "devset2" / "probes_headlines.jsonl", shipped)
    precision, recall, _ = scores.overall
    assert precision == 1.0 and recall >= 0.9 and scores.type_accuracy >= 0.9, scores.errors


def test_rockets_into_the_green_zone_are_aimed_at_the_embassy(shipped: Matcher) -> None:
    hit = shipped.match("Three Katyusha rockets land in Baghdad's International Zone, no losses - security source")
    assert hit.alert and hit.event_type == "us_embassy_or_diplomatic_incident"
    clashes = shipped.match(
        "Rockets fall in the Green Zone as gunmen fight security forces",
        "Sadrist fighters and government units clashed overnight after the cleric quit politics.",
    )
    assert not clashes.alert


def test_named_bases_without_the_word_us(shipped: Matcher) -> None:
    assert shipped.match("K1 military base hosting coalition forces hit by mortar round").alert
    assert shipped.match("Two rockets hit Besmaya base south of Baghdad, military says").event_type == (
        "attack_on_us_forces_in_iraq"
    )


def test_an_analysis_headline_does_not_alert_on_its_background(shipped: Matcher) -> None:
    background = (
        "Kataib Hezbollah fired rockets at Ain al-Asad air base hosting US troops in January, and US strikes on "
        "its sites in Iraq followed."
    )
    assert not shipped.match("How Iraq's armed factions built up their arsenal", background).alert
    assert shipped.match("US raids on Kataib Hezbollah test Baghdad's balancing act", background).alert


def test_who_acts_on_whom_by_aircraft_and_by_what_is_hit() -> None:
    from monitor.detection.roles import Direction, direction
    from monitor.detection.text import normalize

    assert direction(normalize("AC-130 gunship hits militia fighters after missile attack on Al Asad")) == (
        Direction.US_ACTS
    )
    assert direction(normalize("Militia drone hit U.S. barracks in Iraq but failed to explode")) == (
        Direction.US_TARGETED
    )
    assert direction(normalize("Rockets strike camp housing American trainers north of Baghdad")) == (
        Direction.US_TARGETED
    )
    # the same in Arabic, Persian and Sorani: a site named as hosting the US side is what is hit
    for hosting in (
        "معسكر يضم مدربين أمريكيين شمال بغداد هدفاً لصواريخ جديدة",
        "پادگان محل استقرار مستشاران آمریکایی هدف قرار گرفت",
        "هێرش کرایە سەر سەربازگەیەک کە ڕاهێنەرانی ئەمریکی تێدایە",
    ):
        assert direction(normalize(hosting)) == Direction.US_TARGETED, hosting
    assert direction(normalize("غارة أمريكية على معسكر يضم مقاتلين من الحشد")) == Direction.US_ACTS
    # threatened, the US side is the one acted on; a reaction naming its strike still has it acting
    assert direction(normalize("Factions threaten US raid force as Baghdad insists on consent")) == (
        Direction.US_TARGETED
    )
    assert direction(normalize("Militias say new US commandos will be 'primary target'")) == Direction.US_TARGETED
    assert direction(normalize("Hezbollah Brigades call US reinforcements a target")) == Direction.US_TARGETED
    assert direction(normalize("Faction's decision makes US forces a 'legitimate' target")) == Direction.US_TARGETED
    # harm told in the active: the side hurt is acted on, whatever the next clause says
    assert direction(normalize("Missile attack on Iraqi base wounds US troops; gunship hits launch team")) == (
        Direction.US_TARGETED
    )
    assert direction(normalize("US strike kills Iraqi soldiers near Karbala")) == Direction.US_ACTS
    assert direction(normalize("US strikes a target near Baghdad")) == Direction.US_ACTS
    assert direction(normalize("Iraq calls US strike a violation")) == Direction.US_ACTS


def test_an_answer_to_an_attack_is_the_us_side_acting_and_a_strike_on_it_is_an_attack(shipped: Matcher) -> None:
    """The US side's answer named by what it is ("retaliatory strikes", "raids answered", "gunship hits"), not by
    who made it; Iran's or the factions' answers name themselves or their target. And the factions' strikes, told
    with the US side's verb, are attacks when the US side is what is struck."""
    from monitor.detection.roles import Direction, direction
    from monitor.detection.text import normalize

    for answer in (
        "Retaliatory strikes hit five weapons depots after Taji deaths",
        "Overnight raids answered Tuesday's missile on the base",
        "Gunship hits launch vehicle after missile attack on the base",
    ):
        assert direction(normalize(answer)) == Direction.US_ACTS, answer
    assert direction(normalize("Iran's retaliatory strikes hit the base")) is None
    assert direction(normalize("Faction vows retaliatory strikes on US bases")) == Direction.US_TARGETED

    answered = shipped.match(
        "Retaliatory strikes hit five weapons storage facilities after Taji deaths",
        "The targets were in several places in Iraq, the Pentagon said.",
    )
    assert answered.event_type == "us_strike_in_iraq"
    for attack in ("Kataib Hezbollah strikes US base in Iraq", "Iran-backed militias strike US forces in Iraq again"):
        assert shipped.match(attack).event_type == "attack_on_us_forces_in_iraq", attack
    assert shipped.match("US strikes Kataib Hezbollah base in Iraq").event_type == "us_strike_in_iraq"


def test_a_threat_read_in_the_body_supersedes_the_attack_it_tells_of(shipped: Matcher) -> None:
    """The headline has the US side threatened, and the rule that reads a US strike into its "target" fires on the
    headline alone: the threat, read further down, still supersedes the attack the body also tells of."""
    match = shipped.match(
        "Hezbollah Brigades call US reinforcements a target, reject American combat troops",
        "",
        "The faction said American troops sent to the north of Iraq would be treated as occupiers and attacked. "
        "A US Marine was killed by rocket fire at a base near Makhmour on Saturday.",
    )
    assert match.event_type == "iran_retaliation_or_threat"


@pytest.mark.parametrize(
    ("kind", "floor"),
    [("articles", (0.94, 0.96, 0.94)), ("headlines", (0.96, 0.84, 0.91))],
)
def test_shipped_pack_on_slice_i(shipped: Matcher, tmp_path: Path, kind: str, floor: tuple[float, ...]) -> None:
    """Slice i was labelled before the pack ever read it (0.94/0.92/0.94 articles, 0.98/0.73/0.91 headlines then)
    and tuned on afterwards: a regression floor."""
    scores = score_corpus(write_fold(kind, "tune", tmp_path / f"{kind}_i.jsonl", slices="i"), shipped)
    precision, recall, _ = scores.overall
    figures = (precision, recall, scores.type_accuracy)
    assert all(f >= lowest for f, lowest in zip(figures, floor, strict=True)), figures


def test_a_proxy_named_by_its_backer_is_not_iran_acting(shipped: Matcher) -> None:
    proxy = shipped.match(
        "Iran-backed militia drone hits US base hosting American troops in Iraq",
        "The Islamic Resistance in Iraq claimed the attack on Ain al-Asad.",
    )
    assert proxy.event_type == "attack_on_us_forces_in_iraq"
    assert shipped.match("Iran fires missiles at US base hosting American troops in Iraq").event_type == (
        "iran_retaliation_or_threat"
    )
    assert not shipped.match("Iran-aligned factions in Iraq offer truce on US targets if a timetable is set").alert


def test_an_inquiry_into_civilian_deaths_in_the_war_on_the_islamic_state_is_no_alert(shipped: Matcher) -> None:
    assert not shipped.match(
        "Coalition admits it struck area of Mosul where scores of civilians died",
        "An investigation found the US strike on Islamic State snipers set off explosives stored in the building.",
    ).alert
    assert shipped.match(
        "US strikes Kataib Hezbollah sites in Iraq; Pentagon says no civilians were hurt",
        "The strikes hit weapons depots used by the Iran-backed militia near al-Qaim, the Pentagon said.",
    ).alert
