"""The rule pack for the offline commands (``scan``, ``rules test``), loaded without the daemon's modules.

Kept apart from ``bootstrap`` so that these commands import only configuration and detection code: no asyncio
stack, no Redis client, no scheduler. They need only the rules' location and the alert threshold from the
configuration, so they skip its scheduler checks; ``monitor check`` validates everything.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from monitor.config import Config, load_config
from monitor.core.errors import ConfigError
from monitor.detection.matcher import Matcher
from monitor.detection.packcache import load_pack_cached

__all__ = ["load_pack_for_cli"]


def load_pack_for_cli(
    path: Path, env: Mapping[str, str], rules: list[Path] | None, *, cache_dir: Path | None = None
) -> Matcher:
    """The compiled rule pack, alerting from the config's threshold: ``-r`` paths win, and the config is optional
    when they are given.
    ``cache_dir``: where compiled packs are kept between runs (``None``: compile every time)."""
    config: Config | None = None
    if not rules or path.exists():
        try:
            config = load_config(path, env=env)
        except ConfigError:
            if not rules:
                raise
    paths = rules or (config.rules if config else [Path("rules")])
    return load_pack_cached(paths, cache_dir, min_severity=config.alerts.min_severity if config else 3)
