"""What every command module shares: the exit codes, where the configuration and the rule cache are, and running a
coroutine."""

from __future__ import annotations

import argparse
import os
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

__all__ = ["DEFAULT_CONFIG", "EXIT_FAILURE", "EXIT_OK", "EXIT_USAGE", "config_path", "rule_cache_dir", "run"]

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
DEFAULT_CONFIG = Path("config/monitor.yaml")


def config_path(args: argparse.Namespace) -> Path:
    """``-c``, else ``$MONITOR_CONFIG``, else ``config/monitor.yaml``."""
    if args.config:
        return Path(args.config)
    return Path(os.environ.get("MONITOR_CONFIG") or DEFAULT_CONFIG)


def rule_cache_dir() -> Path | None:
    """Where offline commands keep compiled rule packs: ``$MONITOR_CACHE_DIR``, else the user's cache folder
    (``$XDG_CACHE_HOME`` or ``~/.cache``) under ``escalation-monitor``; ``MONITOR_RULE_CACHE=off`` turns it off."""
    if os.environ.get("MONITOR_RULE_CACHE", "").strip().lower() in ("0", "off", "no", "false"):
        return None
    if explicit := os.environ.get("MONITOR_CACHE_DIR"):
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "escalation-monitor"


def run(coro: Coroutine[Any, Any, int]) -> int:
    import asyncio  # only the commands that need an event loop pay for importing it

    return asyncio.run(coro)
