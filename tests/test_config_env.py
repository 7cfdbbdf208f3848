"""The environment and credentials in errors: a bad environment variable is reported like a bad key in the file
(one line naming it, exit 2, no traceback), and nothing printed about an error, from the file or the environment,
repeats a password, even of a malformed URL."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.cli import _HANDLERS, main
from tests.support.commands import run_monitor

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "hunter2-Zq8"


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


def good_config(folder: Path) -> Path:
    return write(folder, "monitor.yaml", f"rules: [{ROOT / 'rules'}]\nmetrics: {{enabled: false}}\n")


@pytest.mark.parametrize("command", ["check", "run"])
def test_a_bad_redis_url_in_the_environment_is_one_line_and_exit_2(tmp_path: Path, command: str) -> None:
    done = run_monitor(command, "-c", str(good_config(tmp_path)), env={"REDIS_URL": f"foo://admin:{PASSWORD}@db:6379"})
    assert done.returncode == 2
    assert done.stderr.splitlines() == ["REDIS_URL: must be 'embedded' or a redis://, rediss:// or unix:// URL"]


def test_environment_problems_are_reported_with_the_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "monitor.yaml", "feeds: []\nfetch: {timeuot_s: 3}\n")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("REDIS_URL", "http://db:6379")
        env.setenv("MONITOR_REPLICA", "no spaces please")
        assert main(["check", "-c", str(path)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"{path}:2: fetch.timeuot_s: unknown key",
        "MONITOR_REPLICA: must be letters, digits and . _ : @ - (at most 100)",
        "REDIS_URL: must be 'embedded' or a redis://, rediss:// or unix:// URL",
    ]


MALFORMED = {
    # A "/" in the password ends the host: what follows reads as a port, then as a path.
    f"redis://admin:{PASSWORD}/x@db:6379/0": "the port must be a number from 1 to 65535",
    f"redis://:{PASSWORD}#1@db:6379/0": "the port must be a number from 1 to 65535",
    f"redis://:1234/{PASSWORD}@db:6379": "must name a host",
    f"rediss://:{PASSWORD}@[::1:6379/0": "is not a well-formed URL",
    f"redis://:{PASSWORD}@db:6379/zero": "the database after the host must be a number",
    f"unix://:{PASSWORD}@": "a unix:// URL needs the socket's path",
    f"redis:{PASSWORD}@db": "must be 'embedded' or a redis://",
}


@pytest.mark.parametrize("url", list(MALFORMED))
def test_a_malformed_redis_url_never_prints_its_password(
    tmp_path: Path, url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    in_file = write(tmp_path, "bad.yaml", f"redis:\n  url: '{url}'\nrules: [{ROOT / 'rules'}]\n")
    with pytest.MonkeyPatch.context() as env:
        env.delenv("REDIS_URL", raising=False)
        assert main(["status", "-c", str(in_file)]) == 2
        env.setenv("REDIS_URL", url)
        assert main(["status", "-c", str(good_config(tmp_path))]) == 2
    err = capsys.readouterr().err
    assert err.splitlines()[0].startswith(f"{in_file}:2: redis.url: {MALFORMED[url]}"), err
    assert err.splitlines()[1].startswith(f"REDIS_URL: {MALFORMED[url]}"), err
    assert len(err.splitlines()) == 2 and PASSWORD not in err and PASSWORD[:7] not in err


def test_an_unexpected_error_is_printed_without_credentials(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bug's traceback is still printed (exit 1), but what it quotes loses its credentials."""

    def broken(args: object) -> int:
        raise RuntimeError(f"cannot use redis://:{PASSWORD}@db:6379/0 or {PASSWORD}")

    monkeypatch.setitem(_HANDLERS, "check", broken)
    monkeypatch.setenv("REDIS_URL", f"redis://:{PASSWORD}@db:6379/0")
    assert main(["check"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "RuntimeError: cannot use redis://[redacted]@db:6379/0 or [redacted]" in err
    assert PASSWORD not in err
