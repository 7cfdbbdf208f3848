"""The ``redis`` section's modes: ``mode`` (and ``MONITOR_REDIS_MODE``), the sentinels, the sentinel password kept
out of every message, the cluster's need of a node's URL, and what ``wait_replicas`` defaults to."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.cli import main
from monitor.config import Config, load_config, with_environment
from monitor.core.errors import ConfigError
from monitor.service.bootstrap import _secrets
from tests.support.commands import run_monitor

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "s3ntinel-Pw-77"


def write(folder: Path, text: str) -> Path:
    path = folder / "monitor.yaml"
    path.write_text(f"rules: [{ROOT / 'rules'}]\nmetrics: {{enabled: false}}\n{text}")
    return path


def test_sentinel_settings_are_read_and_checked(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "redis:\n  mode: sentinel\n  sentinels: [10.0.0.5:26379, 'sentinel-b.internal:26379']\n"
        f"  service_name: monitor\n  sentinel_password: {PASSWORD}\n",
    )
    config = load_config(path, env={})
    assert config.redis.mode == "sentinel" and config.redis.sentinels[1] == "sentinel-b.internal:26379"
    assert config.redis.replicas_to_wait == 1
    assert PASSWORD in _secrets(config)[0]  # the log redactor hides it
    with pytest.raises(ConfigError) as missing:
        load_config(write(tmp_path, "redis: {mode: sentinel, sentinels: ['h:1']}\n"), env={})
    assert "redis.sentinels (host:port, ...) and redis.service_name" in str(missing.value)
    with pytest.raises(ConfigError) as bad:
        load_config(write(tmp_path, "redis: {mode: sentinel, sentinels: ['no-port'], service_name: m}\n"), env={})
    assert f"{path}:3: redis.sentinels[0]" in str(bad.value)


def test_a_sentinel_password_is_never_printed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(
        tmp_path,
        f"redis:\n  mode: sentinel\n  sentinel_password: {PASSWORD}\n  sentinels: [h:1]\n  bogus: {PASSWORD}\n",
    )
    assert main(["check", "-c", str(path)]) == 2
    err = capsys.readouterr().err
    assert "redis.bogus: unknown key" in err and PASSWORD not in err


def test_the_mode_comes_from_the_environment_too() -> None:
    config = with_environment(Config(), {"MONITOR_REDIS_MODE": "cluster", "REDIS_URL": "redis://n1:7000"})
    assert config.redis.mode == "cluster" and config.redis.replicas_to_wait == 1
    with pytest.raises(ConfigError, match="MONITOR_REDIS_MODE: Input should be 'standalone', 'cluster' or 'sentinel'"):
        with_environment(Config(), {"MONITOR_REDIS_MODE": "clustre"})
    with pytest.raises(ConfigError, match=r"MONITOR_REDIS_MODE: mode sentinel needs redis\.sentinels"):
        with_environment(Config(), {"MONITOR_REDIS_MODE": "sentinel"})
    assert with_environment(Config(), {}).redis.replicas_to_wait == 0


def test_a_cluster_needs_the_url_of_a_node(tmp_path: Path) -> None:
    done = run_monitor("check", "-c", str(write(tmp_path, "")), env={"MONITOR_REDIS_MODE": "cluster"})
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().endswith(
        "redis.mode cluster needs redis.url (or REDIS_URL) naming one of its nodes: redis://host:port"
    )
    assert "Traceback" not in done.stderr
