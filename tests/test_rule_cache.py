"""The compiled rule pack kept between runs of the offline commands: a hit behaves exactly like a fresh load, any
change to a rule file is a miss, a bad pack is never cached and a broken cache file is ignored."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from monitor.cli import main
from monitor.core.errors import RuleError
from monitor.detection.matcher import Matcher
from monitor.detection.packcache import load_pack_cached, load_rules_cached
from monitor.detection.patterns import CompiledPattern
from monitor.detection.rulefile import load_rules

RULES = Path(__file__).resolve().parents[1] / "rules"
HEADLINES = [
    ("US drone strike in Baghdad kills Kataib Hezbollah commander", "high_value_target_killed"),
    ("Rockets hit Ain al-Asad air base hosting US troops", "attack_on_us_forces_in_iraq"),
    ("Dockworkers strike over pay in Basra", None),
]


@pytest.fixture
def pack(tmp_path: Path) -> Path:
    return Path(shutil.copytree(RULES, tmp_path / "rules"))


def _types(ruleset: object) -> list[str | None]:
    matcher = Matcher(ruleset, min_severity=3)  # type: ignore[arg-type]
    return [matcher.match(title, "", "").event_type for title, _ in HEADLINES]


def test_a_cached_pack_matches_like_a_fresh_one(pack: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = load_rules_cached([pack], cache)
    assert len(list(cache.glob("rules-*.pickle"))) == 1
    second = load_rules_cached([pack], cache)
    assert second is not first  # read back from the file
    assert _types(second) == _types(load_rules([pack])) == [expected for _, expected in HEADLINES]
    assert [r.id for r in second.rules] == [r.id for r in first.rules]


def test_editing_a_rule_file_is_a_miss(pack: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    load_rules_cached([pack], cache)
    filters = pack / "filters.yaml"
    filters.write_text(filters.read_text(encoding="utf-8") + "\n# a comment changes the bytes\n", encoding="utf-8")
    load_rules_cached([pack], cache)
    assert len(list(cache.glob("rules-*.pickle"))) == 2


def test_a_bad_pack_is_reported_with_its_line_and_never_cached(pack: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    (pack / "broken.yaml").write_text("title: x\nid: broken\ndetection: [\n", encoding="utf-8")
    for _ in range(2):
        with pytest.raises(RuleError) as caught:
            load_rules_cached([pack], cache)
        assert "broken.yaml:" in str(caught.value)
    assert not list(cache.glob("rules-*.pickle"))


def test_a_corrupt_or_foreign_cache_file_is_rebuilt(pack: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    load_rules_cached([pack], cache)
    (target,) = cache.glob("rules-*.pickle")
    target.write_bytes(b"not a pickle")
    assert _types(load_rules_cached([pack], cache)) == [expected for _, expected in HEADLINES]
    assert target.read_bytes() != b"not a pickle"  # rewritten by the real loader


def test_an_unwritable_cache_folder_is_not_an_error(pack: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file-not-folder"
    blocker.write_text("", encoding="utf-8")
    assert _types(load_rules_cached([pack], blocker / "cache")) == [expected for _, expected in HEADLINES]


def test_scan_uses_the_cache_folder_and_can_turn_it_off(
    pack: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    article = tmp_path / "one.jsonl"
    article.write_text('{"title": "Rockets hit Ain al-Asad air base hosting US troops", "url": "https://a.test/1"}\n')
    cache = tmp_path / "cache"
    monkeypatch.setenv("MONITOR_CACHE_DIR", str(cache))
    monkeypatch.delenv("MONITOR_RULE_CACHE", raising=False)
    for _ in range(2):
        assert main(["scan", "-r", str(pack), str(article)]) == 0
        assert '"attack_on_us_forces_in_iraq"' in capsys.readouterr().out
    assert len(list(cache.glob("rules-*.pickle"))) == 1
    shutil.rmtree(cache)
    monkeypatch.setenv("MONITOR_RULE_CACHE", "off")
    assert main(["scan", "-r", str(pack), str(article)]) == 0
    assert not cache.exists()


def test_the_cached_matcher_is_read_back_whole_and_takes_the_threshold_asked(pack: Path, tmp_path: Path) -> None:
    """The compiled matcher itself is kept (its automaton, regular expressions and presence tests rebuilt on
    loading), so a cached start skips building it; the threshold is the caller's, not the cached one's."""
    cache = tmp_path / "cache"
    first = load_pack_cached([pack], cache, min_severity=3)
    again = load_pack_cached([pack], cache, min_severity=5)
    assert again is not first and again.min_severity == 5 and first.min_severity == 3
    for title, expected in HEADLINES:
        assert again.match(title).event_type == expected
        assert again.match(title).alert == (first.match(title).severity >= 5)
    evidence = {e.phrase for e in again.match(HEADLINES[0][0]).evidence}
    assert evidence == {e.phrase for e in first.match(HEADLINES[0][0]).evidence}


def test_the_shipped_pack_read_back_has_the_tables_it_was_built_with(tmp_path: Path) -> None:
    """The patterns, their normalised forms and the Arabic-script vocabulary are stored in a cheaper form than they
    are used in (``patterns.stored``): read back, they are the same values and types, and match alike."""
    built = load_pack_cached([RULES], tmp_path)
    back = load_pack_cached([RULES], tmp_path)
    assert back is not built
    assert back._patterns == built._patterns and {type(p) for p in back._patterns} == {CompiledPattern}
    assert back._pattern_keys == built._pattern_keys and back._latin_masks == built._latin_masks
    assert back._masks == built._masks and back._vocabulary == built._vocabulary and back._vocabulary
    texts = [
        "غارة أمريكية على قاعدة عين الأسد في العراق",  # Arabic script: the vocabulary is made from its string
        "پهپاد آمریکایی فرمانده کتائب حزب‌الله را در بغداد کشت",
        *(title for title, _ in HEADLINES),
    ]
    assert [back.match(t) for t in texts] == [built.match(t) for t in texts]
