"""``monitor scan``: the contract's output, every input format, and its exit codes."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from monitor.cli import main

ROOT = Path(__file__).resolve().parents[1]
KEYS = {"id", "url", "title", "matched", "event_type", "severity", "score", "rules", "entities"}
STRIKE = (
    "US drone strike kills Kataib Hezbollah commander in Baghdad",
    "The Pentagon said the strike on a car in eastern Baghdad killed a senior militia leader.",
)
QUIET = ("Bakery wins regional bread prize", "Judges praised the sourdough.")


def scan(capsys: pytest.CaptureFixture[str], *args: str) -> list[dict]:
    assert main(["scan", "-r", str(ROOT / "rules"), *args]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_contract_fields_for_a_match_and_a_miss(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a.jsonl").write_text(
        json.dumps({"id": "s1", "title": STRIKE[0], "summary": STRIKE[1], "url": "https://x.org/1"})
        + "\n"
        + json.dumps({"id": "q1", "title": QUIET[0], "summary": QUIET[1]})
        + "\n"
    )
    hit, miss = scan(capsys, str(tmp_path / "a.jsonl"))
    assert set(hit) == KEYS and set(miss) == KEYS
    assert hit["id"] == "s1" and hit["url"] == "https://x.org/1" and hit["title"] == STRIKE[0]
    assert hit["matched"] is True and hit["severity"] >= 3 and isinstance(hit["score"], float)
    assert hit["event_type"] in {"us_strike_in_iraq", "high_value_target_killed"}
    assert "kataib_hezbollah" in hit["entities"] and "baghdad" in hit["entities"]
    assert hit["rules"]
    assert miss["matched"] is False and miss["event_type"] is None


def test_every_input_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    (folder / "one.txt").write_text(f"{STRIKE[0]}\n\n{STRIKE[1]}\n")
    (folder / "two.html").write_text(
        f"<html><head><title>{STRIKE[0]}</title></head><body><p>{STRIKE[1]}</p>"
        "<script>var x = 1;</script></body></html>"
    )
    (folder / "sub" / "three.json").write_text(json.dumps([{"title": QUIET[0]}, {"title": STRIKE[0]}]))
    (folder / "four.jsonl.gz").write_bytes(
        gzip.compress(
            json.dumps({"headline": STRIKE[0], "short_description": STRIKE[1], "link": "https://x.org/4"}).encode()
        )
    )
    (folder / "five.xml").write_text(
        "<?xml version='1.0'?><rss version='2.0'><channel><title>t</title>"
        f"<item><title>{STRIKE[0]}</title><link>https://x.org/5</link><description>{STRIKE[1]}</description></item>"
        "</channel></rss>"
    )
    (folder / "ignored.csv").write_text("a,b\n")
    records = scan(capsys, str(folder))
    assert len(records) == 6
    assert [r["matched"] for r in records] == [True, True, True, False, True, True]
    assert {r["id"] for r in records} >= {"one", "two"}


def test_evidence_flag_adds_phrases_with_offsets(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a.txt").write_text(f"{STRIKE[0]}\n{STRIKE[1]}")
    (record,) = scan(capsys, "--evidence", str(tmp_path / "a.txt"))
    assert record["evidence"] and {"rule", "selection", "field", "phrase", "start", "end"} <= set(record["evidence"][0])


def test_missing_path_and_bad_json_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scan", "-r", str(ROOT / "rules"), str(tmp_path / "nope.txt")]) == 1
    (tmp_path / "bad.jsonl").write_text('{"title": "ok"}\n{not json\n')
    assert main(["scan", "-r", str(ROOT / "rules"), str(tmp_path / "bad.jsonl")]) == 1
    assert "bad.jsonl:2: not valid JSON" in capsys.readouterr().err


def test_bad_rules_exit_2_with_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "r.yaml").write_text("entities:\n  - id: x\n    type: nonsense\n    names: [X]\n")
    (tmp_path / "a.txt").write_text("t\n")
    assert main(["scan", "-r", str(tmp_path / "r.yaml"), str(tmp_path / "a.txt")]) == 2
    assert f"{tmp_path / 'r.yaml'}:3:" in capsys.readouterr().err


def test_rules_test_command_reports_scores(capsys: pytest.CaptureFixture[str]) -> None:
    corpus = Path(__file__).parent / "data" / "devset_holdout.jsonl"
    assert main(["rules", "test", "-r", str(ROOT / "rules"), "--corpus", str(corpus)]) == 0
    out = capsys.readouterr().out
    assert "examples:" in out and "0 failed" in out
    assert "precision" in out and "us_strike_in_iraq" in out and "confusion" in out


YEMEN_PAGE_BODY = (
    "American and British jets struck more than a dozen Houthi sites in Yemen overnight, the Pentagon said, in "
    "response to attacks on shipping in the Red Sea."
)
RELATED = ["US drone strike kills militia commander in Baghdad", "Iran vows revenge after Soleimani killing"]


def test_other_stories_listed_under_a_saved_page_do_not_make_it_an_alert(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "yemen.txt").write_text(
        "US and UK strike Houthi targets across Yemen\n\n"
        + YEMEN_PAGE_BODY
        + "\n\nRelated\n"
        + "\n".join(RELATED)
        + "\n\nSubscribe to our newsletter\n"
    )
    links = "".join(f"<li><a href='/x'>{t}</a></li>" for t in RELATED)
    (tmp_path / "yemen.html").write_text(
        f"<html><head><title>US and UK strike Houthi targets across Yemen</title></head><body><nav>Iraq Syria</nav>"
        f"<article><p>{YEMEN_PAGE_BODY}</p></article><aside class='related-stories'><ul>{links}</ul></aside>"
        "<footer>Share this</footer></body></html>"
    )
    assert [r["matched"] for r in scan(capsys, str(tmp_path))] == [False, False]


def test_page_furniture_is_only_trimmed_at_the_end() -> None:
    from monitor.parsing.files import strip_page_furniture

    text = "Headline-like opening line\nA sentence of prose follows here.\nRelated\nAnother story\nShare"
    assert strip_page_furniture(text) == "Headline-like opening line\nA sentence of prose follows here."
    assert strip_page_furniture("Only a short line") == "Only a short line"
