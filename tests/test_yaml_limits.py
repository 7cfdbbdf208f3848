"""YAML as an attacker writes it, in the configuration or a rule file: alias bombs, recursive aliases and deep
nesting are refused fast and in little memory with ``path:line`` (exit 2); aliases within the limits still work."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from monitor.config import load_config
from monitor.config.yamlsrc import MAX_ALIAS_NODES, MAX_DEPTH, load_yaml, load_yaml_documents
from monitor.core.errors import ConfigError, RuleError
from monitor.detection.rulefile import load_rules
from tests.support.commands import run_monitor

ROOT = Path(__file__).resolve().parents[1]
#: Nine nested levels of ten aliases: 10^10 nodes when expanded, from 600 bytes.
BOMB = "".join(
    [f"l0: &l0 [{', '.join(['lol'] * 10)}]\n"]
    + [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]\n" for i in range(1, 10)]
)


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("where", ["config", "rule file"])
def test_an_alias_bomb_is_refused_fast_with_path_and_line(tmp_path: Path, where: str) -> None:
    if where == "config":
        bomb = config = write(tmp_path, "monitor.yaml", f"rules: [{ROOT / 'rules'}]\n{BOMB}")
    else:
        (tmp_path / "rules").mkdir()
        bomb = write(tmp_path / "rules", "bomb.yaml", BOMB)
        config = write(tmp_path, "monitor.yaml", f"rules: [{ROOT / 'rules'}, {tmp_path / 'rules'}]\n")
    started = time.monotonic()
    done = run_monitor("check", "-c", str(config))
    assert time.monotonic() - started < 20
    assert done.returncode == 2, done.stderr[-2000:]
    lines = done.stderr.splitlines()
    assert f"aliases expand to more than {MAX_ALIAS_NODES} nodes" in done.stderr, lines
    assert all(line.startswith(f"{bomb}:") for line in lines), lines
    assert "Traceback" not in done.stderr


def test_a_recursive_alias_is_refused_at_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "monitor.yaml", "feeds: []\nloop: &a [x, *a]\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    assert [str(p) for p in caught.value.problems] == [f"{path}:2: alias *a is inside its own anchor (recursive)"]

    rule = write(tmp_path, "rule.yaml", "title: Loop\nid: loop\ndetection: &d\n  sel: {keywords: [*d]}\n")
    with pytest.raises(RuleError) as caught_rule:
        load_rules([rule])
    assert [p.line for p in caught_rule.value.problems] == [4]
    assert "recursive" in caught_rule.value.problems[0].message


def test_nesting_is_bounded_with_or_without_aliases(tmp_path: Path) -> None:
    deep = write(tmp_path, "deep.yaml", "a: " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(ConfigError, match=f"nested more than {MAX_DEPTH} levels deep") as caught:
        load_yaml(deep)
    assert caught.value.problems[0].line == 1
    half = MAX_DEPTH // 2 + 1
    aliased = write(tmp_path, "aliased.yaml", f"a: &a {'[' * half}{']' * half}\nb: {'[' * half}*a{']' * half}\n")
    with pytest.raises(ConfigError, match="levels deep with aliases") as caught:
        load_yaml(aliased)
    assert caught.value.problems[0].line == 2
    fits = write(tmp_path, "fits.yaml", "[" * (MAX_DEPTH - 1) + "x" + "]" * (MAX_DEPTH - 1) + "\n")
    assert load_yaml(fits).data is not None


def test_aliases_within_the_limit_still_work(tmp_path: Path) -> None:
    """Ordinary reuse is fine, up to the limit exactly, in every document of a file (each counts on its own)."""
    entries = MAX_ALIAS_NODES // 10 - 1  # the anchored list is itself a node
    words = ", ".join(f"w{i}" for i in range(entries))
    uses = ", ".join(["*w"] * 10)
    path = write(
        tmp_path, "reuse.yaml", f"words: &w [{words}]\nuses: [{uses}]\n---\nagain: &w [{words}]\nx: [{uses}]\n"
    )
    first, second = load_yaml_documents(path)
    assert len(first.data["uses"]) == 10 and first.data["uses"][9][-1] == f"w{entries - 1}"
    assert second.data["x"][0] == second.data["again"]
    over = write(tmp_path, "over.yaml", f"words: &w [{words}, extra]\nuses: [{uses}]\n")
    with pytest.raises(ConfigError, match="aliases expand to more than"):
        load_yaml(over)

    config = write(
        tmp_path,
        "monitor.yaml",
        "smtp: {host: localhost}\ndigests:\n  - {name: a, cron: '0 7 * * *', to: &desk [desk@example.org]}\n"
        "  - {name: b, cron: '0 19 * * *', to: *desk}\n",
    )
    assert [d.to for d in load_config(config, env={}).digests] == [["desk@example.org"]] * 2


def test_a_value_its_tag_cannot_read_is_one_line(tmp_path: Path) -> None:
    path = write(
        tmp_path, "monitor.yaml", "fetch:\n  timeout_s: !!float soon\n  concurrency: !!python/name:os.system\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    rendered = [str(p) for p in caught.value.problems]
    assert f"{path}:2: bad value for !!float" in rendered
    assert any(r.startswith(f"{path}:3: bad value: could not determine a constructor") for r in rendered)
    assert all("\n" not in r for r in rendered)
