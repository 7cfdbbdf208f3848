"""``monitor rules derive``: ranking, name grouping, the YAML it writes, progress and the CLI path."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from monitor.cli import main
from monitor.core.errors import MonitorError
from monitor.detection.derive import derive, entity_key, g2
from monitor.detection.rulefile.schema import EntityFile

# Example articles written for these tests: US strikes on militias in Iraq, spelling the names several ways.
STRIKES = [
    (
        "US strike hits militia depot near Baghdad",
        "A US drone strike destroyed a militia weapons depot south of Baghdad on Tuesday. The Pentagon said the "
        "strike targeted Kataib Hezbollah, the militia it blames for rocket fire on coalition bases. Local people "
        "heard three blasts. Qassem Soleimani was not mentioned by the government.",
    ),
    (
        "Iraq condemns American air strike on militia commander",
        "Iraq's government condemned an American air strike that killed a militia commander in eastern Baghdad. "
        "Officials said Kata'ib Hizballah lost two fighters in the strike. People gathered at the site. The strike "
        "came a week after Qasem Suleimani's allies vowed revenge.",
    ),
    (
        "Militia vows revenge after second US strike in a week",
        "Kataeb Hezbollah said the US strike on its militia headquarters would not go unanswered. The militia "
        "had been blamed for a drone attack on a base in western Iraq. Qassim Sulaimani, a spokesman recalled, "
        "had built the militia network. The government asked people to stay calm.",
    ),
    (
        "Pentagon confirms strike on militia facilities",
        "The Pentagon confirmed a strike on three militia facilities used to store rockets. The militia denied "
        "losses. Kataib Hezbollah fighters cleared the rubble. Gen. Qassem Soleimani once visited the sites, "
        "locals said. The government said the people of the city deserve peace.",
    ),
]
# General news written for these tests: it shares the common words (people, government, week, city) only.
BACKGROUND = [
    ("City council approves new budget", "The government of the city approved spending on parks this week."),
    ("Rain expected across the region", "People are advised to carry umbrellas as storms move in this week."),
    ("Local bakery wins national prize", "The owners thanked the people of the town for their support."),
    ("Schools reopen after holiday", "Teachers and parents welcomed the government decision on Monday."),
    ("Stock markets rise on jobs data", "Investors cheered as the government reported more hiring last week."),
    ("Museum opens new gallery", "People queued for hours to see the paintings in the city centre."),
    ("Train delays after signal fault", "Commuters in the city faced a week of disruption, the operator said."),
    ("Football club signs young striker", "The club said the player will join the squad next week."),
]


def _jsonl(path: Path, rows: list[tuple[str, str]]) -> Path:
    path.write_text("".join(json.dumps({"title": t, "summary": s}) + "\n" for t, s in rows), encoding="utf-8")
    return path


def _load(text: str) -> Any:
    return YAML(typ="safe", pure=True).load(text)


def _run(corpus: list[Path], *, background: Path | None, top: int = 40, every: int = 5000) -> tuple[Any, str]:
    out, progress = io.StringIO(), io.StringIO()
    derive(corpus, background=background, top=top, out=out, progress=progress, progress_every=every)
    return _load(out.getvalue()), progress.getvalue()


@pytest.fixture
def examples(tmp_path: Path) -> Path:
    folder = tmp_path / "examples"
    folder.mkdir()
    for i, (title, body) in enumerate(STRIKES):
        (folder / f"{i}.txt").write_text(f"{title}\n\n{body}\n", encoding="utf-8")
    return folder


@pytest.fixture
def background(tmp_path: Path) -> Path:
    return _jsonl(tmp_path / "background.jsonl", BACKGROUND)


def _rank(keywords: list[str], word: str) -> float:
    return keywords.index(word) if word in keywords else float("inf")


def test_discriminative_terms_rank_above_common_words(examples: Path, background: Path) -> None:
    data, _ = _run([examples], background=background)
    keywords = data["keywords"]
    for term in ("strike", "militia"):
        assert term in keywords[:5]
        for common in ("people", "government", "week", "city"):
            assert _rank(keywords, term) < _rank(keywords, common)
    assert not any(k in {"the", "of", "on", "said"} for k in keywords)
    assert not any(k.split()[0] in {"the", "a", "on"} or k.split()[-1] in {"the", "on", "of"} for k in keywords)


def test_phrases_do_not_cross_sentence_breaks(tmp_path: Path, background: Path) -> None:
    rows = [("Rockets hit base", "Rockets hit the base overnight. Militia fighters fled. Rockets again. Militia.")] * 3
    data, _ = _run([_jsonl(tmp_path / "ex.jsonl", rows)], background=background)
    assert "militia" in data["keywords"] and "rockets" in data["keywords"]
    assert not any("overnight militia" in k or "again militia" in k for k in data["keywords"])


def test_spelling_variants_group_into_one_entity(examples: Path, background: Path) -> None:
    data, _ = _run([examples], background=background)
    by_names = {frozenset(e["names"]): e for e in data["entities"]}
    kataib = next(e for names, e in by_names.items() if "Kataib Hezbollah" in names)
    assert set(kataib["names"]) == {"Kataib Hezbollah", "Kataeb Hezbollah", "Kata'ib Hizballah"}
    assert kataib["id"] == "kataib_hezbollah" and kataib["type"] == "other"
    soleimani = next(e for names, e in by_names.items() if "Qassem Soleimani" in names)
    # "Gen. Qassem Soleimani" is the same name once normalised, so it is not listed twice.
    assert set(soleimani["names"]) == {"Qassem Soleimani", "Qasem Suleimani", "Qassim Sulaimani"}
    EntityFile.model_validate({"entities": data["entities"]})  # the same shape as rules/entities.yaml


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Kataib Hezbollah", "Kata'ib Hizballah"),
        ("Kataib Hezbollah", "Kataeb Hizbollah"),
        ("Qassem Soleimani", "General Qasem Suleimani"),
        ("Qassem Soleimani", "Qassim Sulaimani"),
        ("Abu Mahdi al-Muhandis", "Abu Mahdi Al Mohandes"),
        ("Ain al-Asad", "Ayn al Assad"),
        ("Mohammed Shia al-Sudani", "Muhammad Shia Al-Sudani"),
    ],
)
def test_entity_key_folds_transliteration(a: str, b: str) -> None:
    assert entity_key(a) == entity_key(b)


@pytest.mark.parametrize(("a", "b"), [("Kataib Hezbollah", "Kataib Imam Ali"), ("Abu Mahdi", "Adel Abdul Mahdi")])
def test_entity_key_keeps_different_names_apart(a: str, b: str) -> None:
    assert entity_key(a) != entity_key(b)


def test_g2_is_signed_and_zero_for_equal_rates() -> None:
    assert g2(10, 10, 1000, 1000) == pytest.approx(0.0)
    assert g2(30, 2, 1000, 1000) > 0 > g2(2, 30, 1000, 1000)
    assert g2(30, 2, 1000, 1000) == pytest.approx(-g2(2, 30, 1000, 1000))
    assert g2(30, 2, 1000, 1000) > g2(3, 0, 1000, 1000)  # more evidence beats a bigger ratio on two counts


def test_seed_articles(corpus: Path) -> None:
    seeds = corpus / "seeds"
    if not seeds.is_dir():
        pytest.skip("seed articles are not present")
    data, progress = _run([seeds], background=None, top=60)  # the shipped background
    keywords = data["keywords"]
    assert progress == ""  # five articles: quiet
    assert "strike" in keywords[:10] and "militia" in keywords[:15]
    for common in ("people", "time", "year", "government", "week"):
        assert _rank(keywords, "strike") < _rank(keywords, common)
        assert _rank(keywords, "militia") < _rank(keywords, common)
    names = {n for e in data["entities"] for n in e["names"]}
    assert {"Quds Force", "Abu Mahdi al-Muhandis"} <= names
    soleimani = next(e for e in data["entities"] if "Qassem Soleimani" in e["names"])
    assert "General Qasem Soleimani" in soleimani["names"]
    EntityFile.model_validate({"entities": data["entities"]})


def test_progress_on_large_inputs_only(examples: Path, background: Path) -> None:
    _, quiet = _run([examples], background=background)
    assert quiet == ""
    _, chatty = _run([examples], background=background, every=2)
    assert "derive: 2 example articles read" in chatty
    assert "derive: 4 background articles read" in chatty
    assert chatty.rstrip().endswith("4 example and 8 background articles")


def test_output_needs_quoting_only_where_yaml_would_misread(tmp_path: Path, background: Path) -> None:
    rows = [("Yes or null", "Null Island: off the coast. Null Island: true, no one lives there. Yes. Null. True.")] * 3
    data, _ = _run([_jsonl(tmp_path / "ex.jsonl", rows)], background=background)
    assert {"yes", "null", "true", "null island"} <= set(data["keywords"])
    assert all(isinstance(k, str) for k in data["keywords"])
    assert all(isinstance(n, str) for e in data["entities"] for n in e["names"])


def test_cli(examples: Path, background: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["rules", "derive", str(examples), "--background", str(background), "--top", "5"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert captured.err == ""
    data = _load(captured.out)
    assert len(data["keywords"]) == 5 and "strike" in data["keywords"]
    assert 1 <= len(data["entities"]) <= 5


def test_cli_default_background(examples: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "derive", str(examples / "0.txt"), str(examples / "1.txt")]) == 0
    out = capsys.readouterr().out
    assert "monitor/data/background.jsonl.gz" in out
    assert "strike" in _load(out)["keywords"]


def test_errors(tmp_path: Path, examples: Path, background: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(MonitorError, match="no articles"):
        _run([empty], background=background)
    with pytest.raises(MonitorError, match="top"):
        _run([examples], background=background, top=0)
    assert main(["rules", "derive", str(tmp_path / "missing")]) == 1
    assert "no such file" in capsys.readouterr().err
