"""The offline demo: sample feeds on loopback, the real daemon, signed webhook deliveries, a live item."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.timeout(60)
async def test_demo_alerts_within_seconds(tmp_path: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "monitor",
        "demo",
        "--seconds",
        "16",
        "--data-dir",
        str(tmp_path / "redis"),
        cwd=ROOT,
        env={**os.environ},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(), 50)
    text = out.decode()
    assert process.returncode == 0, text
    heads = [line for line in text.splitlines() if line.startswith("[ALERT")]
    # Seven sample escalation items are three events (several outlets each); the breaking item is a fourth.
    assert len([h for h in heads if "(update" not in h]) == 4, text
    assert "[ESCALATION" in text
    assert "Harir air base" in text  # the item published while it ran
    assert "signature INVALID" not in text and "signature valid" in text
    for unrelated in ("Houthi missile sites", "teachers strike", "Rail workers", "Late strike sends champions"):
        assert unrelated not in text
