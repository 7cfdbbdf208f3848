"""What every command module shares: the exit codes, where the configuration is, and running a coroutine."""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

__all__ = ["DEFAULT_CONFIG", "EXIT_FAILURE", "EXIT_OK", "EXIT_USAGE", "config_path", "run"]

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
DEFAULT_CONFIG = Path("config/monitor.yaml")


def config_path(args: argparse.Namespace) -> Path:
    """``-c``, else ``$MONITOR_CONFIG``, else ``config/monitor.yaml``."""
    if args.config:
        return Path(args.config)
    return Path(os.environ.get("MONITOR_CONFIG") or DEFAULT_CONFIG)


def run(coro: Coroutine[Any, Any, int]) -> int:
    return asyncio.run(coro)
