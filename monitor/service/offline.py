"""The rule pack for the offline commands (``scan``, ``rules test``), loaded without the daemon's modules.

Kept apart from ``bootstrap`` so that these commands import only configuration and detection code: no asyncio
stack, no Redis client, no scheduler. They need only the rules' location and the alert threshold from the
configuration, so they skip its scheduler checks; ``monitor check`` validates everything.

Those two settings are kept in the same cache folder as the compiled pack, under a name that hashes everything
the configuration's reading depends on: the file's path and bytes, the whole environment (``${VAR}`` and the
overrides), the configuration code and the Python version. A configuration that fails to load is never cached,
so its errors always come from the real reader; one that loads is not read again (nor the YAML reader and the
schema imported) until one of those changes.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Mapping
from pathlib import Path

from monitor.core.errors import ConfigError
from monitor.core.files import write_atomically
from monitor.detection.matcher import Matcher
from monitor.detection.packcache import load_pack_cached

__all__ = ["load_pack_for_cli"]

_CONFIG_CODE = Path(__file__).resolve().parents[1] / "config"
_FORMAT = b"offline-settings 1"


def load_pack_for_cli(
    path: Path, env: Mapping[str, str], rules: list[Path] | None, *, cache_dir: Path | None = None
) -> Matcher:
    """The compiled rule pack, alerting from the config's threshold: ``-r`` paths win, and the config is optional
    when they are given.
    ``cache_dir``: where compiled packs are kept between runs (``None``: compile every time)."""
    settings: tuple[list[Path], int] | None = None
    if not rules or path.exists():
        try:
            settings = _settings(path, env, cache_dir)
        except ConfigError:
            if not rules:
                raise
    paths = rules or (settings[0] if settings else [Path("rules")])
    return load_pack_cached(paths, cache_dir, min_severity=settings[1] if settings else 3)


def _settings(path: Path, env: Mapping[str, str], cache_dir: Path | None) -> tuple[list[Path], int]:
    """The configuration's rule paths and alert threshold, through the cache in ``cache_dir`` when given."""
    target = None
    if cache_dir is not None:
        try:
            target = cache_dir / f"config-{_key(path, env)}.json"
            stored = json.loads(target.read_text(encoding="utf-8"))
            return [Path(p) for p in stored["rules"]], int(stored["min_severity"])
        except (OSError, ValueError, KeyError, TypeError):
            pass  # not cached yet (or unreadable): the real reader decides
    from monitor.config import load_config

    config = load_config(path, env=env)
    settings = (list(config.rules), config.alerts.min_severity)
    if target is not None:
        _write(target, {"rules": [str(p) for p in settings[0]], "min_severity": settings[1]})
    return settings


def _key(path: Path, env: Mapping[str, str]) -> str:
    digest = hashlib.sha256(_FORMAT)
    digest.update(sys.version.encode())
    for code in sorted(_CONFIG_CODE.glob("*.py")):
        digest.update(code.name.encode() + b"\0" + code.read_bytes() + b"\0")
    digest.update(str(path).encode() + b"\0" + path.read_bytes() + b"\0")
    for name, value in sorted(env.items()):
        digest.update(f"{name}\0{value}\0".encode(errors="surrogateescape"))
    return digest.hexdigest()


def _write(target: Path, value: object) -> None:
    write_atomically(target, lambda handle: handle.write(json.dumps(value).encode()), prefix=".config-")
