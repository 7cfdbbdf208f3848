"""Configuration: the contract's keys, ${VAR} substitution, REDIS_URL, and every problem with its line."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.cli import main
from monitor.config import ConsoleSink, FeedConfig, SectionCheck, WebhookSink, load_config
from monitor.core.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]

CONTRACT = """\
redis:
  url: embedded
  data_dir: var/
rules: [rules/]
fetch:
  timeout_s: 20
  max_bytes: 10000000
  allow_private_networks: false
feeds:
  - name: example-wire
    url: https://example.org/world.rss
    interval_s: 300
alerts:
  min_severity: 3
  max_age_hours: 72
  sinks:
    - type: webhook
      url: https://hooks.example.org/monitor
      secret: ${WEBHOOK_SECRET}
    - type: console
smtp:
  host: localhost
  port: 25
  sender: monitor@example.org
digests:
  - name: daily
    cron: "0 7 * * *"
    to: [desk@example.org]
    min_severity: 2
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "monitor.yaml"
    path.write_text(text)
    return path


def test_the_contract_example_loads(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, CONTRACT), env={"WEBHOOK_SECRET": "s3cret"})
    assert config.feeds[0].name == "example-wire" and config.feeds[0].interval_s == 300
    webhook, console = config.alerts.sinks
    assert isinstance(webhook, WebhookSink) and webhook.secret == "s3cret"
    assert isinstance(console, ConsoleSink)
    assert config.digests[0].cron == "0 7 * * *"
    assert config.redis.url == "embedded"


def test_redis_url_from_the_environment_wins(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, CONTRACT), env={"WEBHOOK_SECRET": "x" * 8, "REDIS_URL": "redis://r:6379/1"})
    assert config.redis.url == "redis://r:6379/1"


def test_defaults_fill_a_minimal_file(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "feeds: []\n"), env={})
    assert config.alerts.min_severity == 3 and config.alerts.max_age_hours == 72
    assert config.rules == [Path("rules")]
    assert [s.type for s in config.alerts.sinks] == ["console"]


def test_variable_default_syntax(tmp_path: Path) -> None:
    text = "feeds:\n  - name: a\n    url: ${FEED_URL:-https://example.org/a.xml}\n"
    assert load_config(write(tmp_path, text), env={}).feeds[0].url == "https://example.org/a.xml"


def test_every_problem_is_reported_with_its_line(tmp_path: Path) -> None:
    text = """\
redis:
  url: embedded
  colour: blue
feeds:
  - name: a
    url: ftp://example.org/x
    interval_s: 0
  - name: b
    url: https://example.org/${MISSING}
alerts:
  min_severity: 9
  sinks:
    - type: webhook
      url: https://hooks.example.org/x
      sceret: nope
  min_severity: 3
"""
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text), env={})
    lines = {(p.line, p.message.split(":")[0]) for p in caught.value.problems}
    rendered = "\n".join(str(p) for p in caught.value.problems)
    assert (3, "redis.colour") in lines, rendered
    assert (6, "feeds[0].url") in lines, rendered
    assert (7, "feeds[0].interval_s") in lines, rendered
    assert any(p.line == 9 and "MISSING" in p.message for p in caught.value.problems), rendered
    assert (11, "alerts.min_severity") in lines, rendered
    assert (15, "alerts.sinks[0].sceret") in lines, rendered
    assert any(p.line == 16 and "duplicate key" in p.message for p in caught.value.problems), rendered
    assert all(str(p).startswith(f"{tmp_path / 'monitor.yaml'}:") for p in caught.value.problems)


def test_yaml_syntax_error_has_a_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, "feeds:\n  - name: [unclosed\n"), env={})
    assert caught.value.problems[0].line is not None


def test_duplicate_feed_names_are_refused(tmp_path: Path) -> None:
    text = "feeds:\n  - {name: a, url: 'https://x.org/1'}\n  - {name: a, url: 'https://x.org/2'}\n"
    with pytest.raises(ConfigError, match="feed names must be unique"):
        load_config(write(tmp_path, text), env={})


def test_checks_passed_in_report_at_their_sections_line(tmp_path: Path) -> None:
    """``SectionCheck``: a layer above the config checks its sections; problems come back with their lines."""
    not_x = SectionCheck(FeedConfig, lambda feed: "x.org is not allowed" if "x.org" in feed.url else None)
    seen: list[str] = []
    path = write(tmp_path, "feeds:\n  - {name: a, url: 'https://x.org/1'}\n  - {name: b, url: 'https://y.org/2'}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={}, checks=[not_x, SectionCheck(FeedConfig, lambda feed: seen.append(feed.name))])
    assert [str(p) for p in caught.value.problems] == [f"{path}:2: feeds[0]: x.org is not allowed"]
    assert seen == ["b"]  # the first problem of a section stops its checks, as pydantic's own validators do
    assert [f.name for f in load_config(path, env={}).feeds] == ["a", "b"]  # nothing passed in, nothing checked

    text = "feeds:\n  - {name: a, url: 'https://x.org/1'}\n  - {name: b, url: 'https://x.org/2', x: 1}\n"
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:  # a section that fails its own validation is not checked too
        load_config(path, env={}, checks=[not_x])
    assert [str(p) for p in caught.value.problems] == [
        f"{path}:2: feeds[0]: x.org is not allowed",
        f"{path}:3: feeds[1].x: unknown key",
    ]


def test_check_exits_2_with_path_and_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "feeds:\n  - name: a\n    url: https://x.org/a\n    interval: 5\n")
    assert main(["check", "-c", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:4: feeds[0].interval: unknown key" in err


def test_check_summarises_the_shipped_config(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    assert main(["check"]) == 0
    out = capsys.readouterr().out
    assert "config: config/monitor.yaml (ok)" in out
    assert "rules: 14 in" in out and "event types:" in out  # seven English, seven Arabic-script


def test_monitor_config_environment_variable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, f"rules: [{ROOT / 'rules'}]\nfeeds: []\n")
    monkeypatch.setenv("MONITOR_CONFIG", str(path))
    assert main(["check"]) == 0
    assert f"config: {path} (ok)" in capsys.readouterr().out
