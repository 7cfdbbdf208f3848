"""What makes ``monitor scan`` fast gives what the plain way gives: texts normalised together as each alone, documents
matched in batches as one by one, a big file shared among worker processes as in one process (the same bytes, and
the same error after the same lines, also when the workers cut the file's bytes into parts), and the configuration read
from the cache as from the file."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from monitor.cli.parser import build_parser
from monitor.core.errors import ConfigError
from monitor.detection.packcache import load_pack_cached
from monitor.detection.text import normalize, normalize_fields
from monitor.parsing.clean import clean_text, html_to_text
from monitor.parsing.files import TITLE_LIMIT, _title, article_from_object, json_line_documents, read_articles
from monitor.service.offline import load_pack_for_cli
from monitor.service.scanning import PARALLEL_LINES
from tests.support.devset import labelled_files

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data"
TRICKY = [
    "",
    " ",
    "U.S. strikes back; the U.N. and the U.S.A. respond",
    "Gen. Smith met Mr. Jones at 3 p.m. Then he left! Why?",
    "Iran's proxies and Kata'ib Hezbollah's commander",
    "line one\nline two\r\nline three",
    "US-led coalition — “quoted” ‘words’",
    "Sulaymānī and café",
    "غارة أمريكية على قاعدة في العراق",
    "fields\x1fwith a separator inside",
    "a.b.c. U.S.b x.U.S. y | already | broken",
    "USA, US, us, U.S, Mr.X. vs. approx. ... ?! '",
    # every quote and dash folded, combining marks, compatibility forms, acronyms against other words
    "A\u2018b\u2019 c\u02bcd e\u02bbf \u00b4g\u2032 \u02beh\u02bf",
    "i\u2010j\u2011k\u2012l\u2013m\u2014n\u2015o\u2212p\u00a0q",
    "Cafe\u0301 \ufb01nal \u00bd \u2026 N.A.T.O.\u2019s e.g.U.S. (U.N.)-led x.y.z.\u00e9.a.b.",
]


def _documents() -> list[tuple[str, str, str]]:
    files = labelled_files()
    articles = list(read_articles([*files, DATA / "devset_holdout.jsonl"]))
    return [(a.title, a.summary, a.content) for a in articles]


def test_texts_normalised_together_are_normalised_as_each_alone() -> None:
    rnd = random.Random(19)
    alphabet = [*"aAbUSsu.!?'\"`)] \t\n|-\x1fé’—ذ3", "U.S.", "U.N.", "Mr.", "'s", "...", "USA", "Gen. "]
    fuzz = ["".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 20))) for _ in range(3000)]
    texts = TRICKY + [t for doc in _documents() for t in doc] + fuzz
    for size in (1, 3, 7, 500, len(texts)):
        for start in range(0, len(texts), size):
            chunk = texts[start : start + size]
            assert normalize_fields(*chunk) == [normalize(t) for t in chunk], chunk


def test_documents_matched_in_a_batch_are_matched_as_one_by_one(tmp_path: Path) -> None:
    matcher = load_pack_cached([ROOT / "rules"], None)
    documents = _documents() + [(t, t, "") for t in TRICKY]
    assert any(m.alert for m in matcher.match_many(documents))
    assert matcher.match_many(documents) == [matcher.match(*doc) for doc in documents]


def _big_file(path: Path, bad_line: int | None = None) -> None:
    docs = _documents()
    lines = []
    for i in range(PARALLEL_LINES + 1500):
        title, summary, content = docs[i % len(docs)]
        obj = {"title": title, "summary": summary, "content": content, "url": f"https://a.test/{i}"}
        if i % 3:
            obj["id"] = f"a{i}"  # the others get their line number as id
        lines.append(json.dumps(obj, ensure_ascii=i % 2 == 0))
    lines[100] = ""  # blank lines are skipped
    if bad_line is not None:
        lines[bad_line - 1] = '{"title": "cut'
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _scan(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "MONITOR_CACHE_DIR": str(tmp_path / "cache")}
    command = [sys.executable, "-m", "monitor", "scan", "-r", str(ROOT / "rules"), *args]
    return subprocess.run(command, capture_output=True, env=env, cwd=tmp_path, timeout=300, check=False)


@pytest.mark.parametrize("evidence", [[], ["--evidence"]])
def test_workers_write_what_one_process_writes(tmp_path: Path, evidence: list[str]) -> None:
    _big_file(tmp_path / "big.jsonl")
    one = _scan(tmp_path, "--workers", "1", *evidence, str(tmp_path / "big.jsonl"))
    many = _scan(tmp_path, "--workers", "3", *evidence, str(tmp_path / "big.jsonl"))
    assert one.returncode == many.returncode == 0, many.stderr
    assert len(one.stdout.splitlines()) == PARALLEL_LINES + 1500 - 1
    assert b'"matched": true' in one.stdout
    assert many.stdout == one.stdout


def test_a_bad_line_stops_the_workers_after_the_same_output(tmp_path: Path) -> None:
    bad = PARALLEL_LINES + 10  # in a later part than the first
    _big_file(tmp_path / "big.jsonl", bad_line=bad)
    (tmp_path / "after.txt").write_text("Never read\n")
    one = _scan(tmp_path, "--workers", "1", str(tmp_path / "big.jsonl"), str(tmp_path / "after.txt"))
    many = _scan(tmp_path, "--workers", "2", str(tmp_path / "big.jsonl"), str(tmp_path / "after.txt"))
    assert one.returncode == many.returncode == 1
    assert f"big.jsonl:{bad}: not valid JSON".encode() in many.stderr
    assert many.stderr == one.stderr and many.stdout == one.stdout
    assert len(many.stdout.splitlines()) == bad - 2  # every line before it but the blank one


def test_the_configuration_is_read_from_the_cache_until_the_file_or_environment_changes(tmp_path: Path) -> None:
    config, cache = tmp_path / "monitor.yaml", tmp_path / "cache"
    config.write_text(f"rules: [{ROOT / 'rules'}]\nalerts:\n  min_severity: ${{LEVEL}}\n")
    first = load_pack_for_cli(config, {"LEVEL": "4"}, None, cache_dir=cache)
    assert first.min_severity == 4 and len(list(cache.glob("config-*.json"))) == 1
    again = load_pack_for_cli(config, {"LEVEL": "4"}, None, cache_dir=cache)
    assert again.min_severity == 4 and len(list(cache.glob("config-*.json"))) == 1
    assert load_pack_for_cli(config, {"LEVEL": "2"}, None, cache_dir=cache).min_severity == 2
    assert len(list(cache.glob("config-*.json"))) == 2
    config.write_text(f"rules: [{ROOT / 'rules'}]\nalerts:\n  min_severity: 9\n")
    with pytest.raises(ConfigError):
        load_pack_for_cli(config, {}, None, cache_dir=cache)
    assert len(list(cache.glob("config-*.json"))) == 2  # a configuration that fails is never cached


def test_workers_read_a_byte_order_mark_a_last_line_without_a_line_feed_and_other_line_breaks(tmp_path: Path) -> None:
    _big_file(tmp_path / "big.jsonl")
    text = (tmp_path / "big.jsonl").read_text(encoding="utf-8").rstrip("\n")
    (tmp_path / "bom.jsonl").write_text("\ufeff" + text, encoding="utf-8")  # cut into parts by the workers
    lines = text.split("\n")
    lines[5000] = lines[5000][:-1] + ', "note": "a\u2028b"}'  # splitlines breaks there: read in one process
    lines[5002] = lines[5002] + "\r"
    (tmp_path / "breaks.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    lines = text.split("\n")
    lines[2600] += "\u2028"  # an empty line after it: the lines after are numbered one more than their line feeds
    (tmp_path / "shifted.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    for name in ("bom.jsonl", "breaks.jsonl", "shifted.jsonl"):
        one = _scan(tmp_path, "--workers", "1", str(tmp_path / name))
        many = _scan(tmp_path, "--workers", "2", str(tmp_path / name))
        assert (many.returncode, many.stdout, many.stderr) == (one.returncode, one.stdout, one.stderr), name
        assert one.stdout.count(b"\n") >= PARALLEL_LINES
        if name == "shifted.jsonl":
            assert one.returncode == 0 and b'"id": "shifted.jsonl:5501"' in one.stdout  # the last line, 5,500th
    assert b"breaks.jsonl:5001: not valid JSON" in _scan(tmp_path, str(tmp_path / "breaks.jsonl")).stderr


def test_workers_refuse_a_file_that_is_not_utf8_before_any_output(tmp_path: Path) -> None:
    _big_file(tmp_path / "big.jsonl")
    raw = (tmp_path / "big.jsonl").read_bytes()
    (tmp_path / "latin1.jsonl").write_bytes(raw[: len(raw) // 2] + b'{"title": "caf\xe9"}\n' + raw[len(raw) // 2 :])
    one = _scan(tmp_path, "--workers", "1", str(tmp_path / "latin1.jsonl"))
    many = _scan(tmp_path, "--workers", "2", str(tmp_path / "latin1.jsonl"))
    assert one.returncode == many.returncode == 1 and one.stdout == many.stdout == b""
    assert b"UnicodeDecodeError" in many.stderr


def test_lines_read_through_msgspec_give_what_the_standard_library_gives() -> None:
    lines = [
        '{"title": "Plain", "summary": "text", "url": " https://a.test/1 ", "id": "x1"}',
        '{"headline": "H", "short_description": "<b>bold</b> &amp; more", "link": "https://a.test/2"}',
        '{"title": "A", "title": "B", "content": "first\\nsecond"}',  # the last of a field given twice
        '{"title": 1, "title": "B"}',
        '{"title": "B", "title": 1.5}',
        '{"id": 12, "title": ["a", 1.25], "summary": {"k": null}, "text": true}',
        '{"title": null, "headline": "", "description": "d", "body": "b"}',
        '{"title": "x", "other": [1, {"a": NaN}], "url": Infinity}',
        '{"title": "lone \\ud800 surrogate"}',
        '{"ti\\u0074le": "escaped key", "id": ""}',
        '  {"title": "spaces around"}  ',
        '{"title": "caf\\u00e9 \\u201cq\\u201d", "content": "Story.\\n\\nRelated\\nOther headline"}',
    ]
    path = Path("lines.jsonl")
    got = [tuple(d) for d in json_line_documents(path, lines)]
    expected = []
    for number, line in enumerate(lines, start=1):
        a = article_from_object(json.loads(line), source="lines", fallback_id=f"lines.jsonl:{number}")
        expected.append((a.id, a.url, a.title, a.summary, a.content))
    assert got == expected


def test_titles_are_cleaned_as_the_whole_cleaning_cleans_them() -> None:
    """A title's shortcut (``files._title``) gives what ``clean_text(html_to_text(...))`` gives, outside ASCII too."""
    rnd = random.Random(5)
    alphabet = [*"aB .\t\n\r&<>;", "caf\u00e9", "e\u0301", "\u00a0", "\u2028", "\u202e", "\u200b", "\u200c", "\x85"]
    alphabet += ["\x7f", "\x1f", "\ufeff", "\ud800", "\u2019", "\ufb01", "\u0627\u0644", "&amp;", "<b>", "\u3000"]
    titles = ["".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 30))) for _ in range(20000)]
    titles += ["\u00e9" * 600, "a " * 300 + "\u00e9", "\u00e9 " * 260, *TRICKY]
    for title in titles:
        assert _title(title) == clean_text(html_to_text(title), TITLE_LIMIT), repr(title)


def test_workers_are_one_per_core_unless_told() -> None:
    parse = build_parser().parse_args
    assert parse(["scan", "--workers", "auto", "x.jsonl"]).workers == (os.cpu_count() or 1)
    assert parse(["scan", "x.jsonl"]).workers == (os.cpu_count() or 1)
    assert parse(["scan", "--workers", "1", "x.jsonl"]).workers == 1
    with pytest.raises(SystemExit):
        parse(["scan", "--workers", "many", "x.jsonl"])
