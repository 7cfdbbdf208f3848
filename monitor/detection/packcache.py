"""A compiled rule pack (its ``Matcher``, the ``RuleSet`` inside) kept on disk between runs, so offline commands
(``scan``, ``rules test``) start in milliseconds instead of re-reading the YAML and rebuilding the matcher.

The cache file is named by a SHA-256 over everything that decides the compiled pack: each rule file's path and
bytes, the bytes of the detection code (which reads, compiles and matches rules) and of the YAML reader, and the
Python version. Change any of them and the name changes, so a stale pack is never loaded; old files are simply
never read again. A pack that fails to validate is never cached: errors keep their ``path:line`` because they
always come from the real loader. The cache is the user's own (``$XDG_CACHE_HOME`` or ``~/.cache``), written
atomically; a file that cannot be read or written is ignored, never an error.
"""

from __future__ import annotations

import dataclasses
import hashlib
import pickle
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from monitor.core.files import write_atomically
from monitor.detection.matcher import Matcher
from monitor.detection.rulefile.load import load_rules, rule_files
from monitor.detection.rulefile.model import RuleSet

__all__ = ["cache_key", "load_pack_cached", "load_rules_cached"]

_PACKAGE = Path(__file__).resolve().parents[1]
#: The code whose behaviour the compiled pack depends on.
_COMPILER_SOURCES = ("detection", "config/yamlsrc.py")
_FORMAT = b"rule-pack-cache 3"


def _compiler_files() -> list[Path]:
    found: list[Path] = []
    for rel in _COMPILER_SOURCES:
        path = _PACKAGE / rel
        found.extend(sorted(path.rglob("*.py")) if path.is_dir() else [path])
    return found


def cache_key(files: Iterable[Path]) -> str:
    """The name of the compiled pack for these rule files with this code."""
    digest = hashlib.sha256(_FORMAT)
    digest.update(sys.version.encode())
    for path in (*_compiler_files(), *files):
        digest.update(str(path).encode() + b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def load_rules_cached(paths: Iterable[Path], cache_dir: Path | None) -> RuleSet:
    """``load_rules``, through the cache in ``cache_dir`` (``None``: no cache)."""
    return load_pack_cached(paths, cache_dir).ruleset


def load_pack_cached(paths: Iterable[Path], cache_dir: Path | None, *, min_severity: int = 3) -> Matcher:
    """The compiled pack of the rule files under ``paths``, through the cache in ``cache_dir`` (``None``: no
    cache), alerting from ``min_severity``."""
    paths = list(paths)
    if cache_dir is None:
        return Matcher(load_rules(paths), min_severity=min_severity)
    files, problems = rule_files(paths)
    if problems:  # missing paths: the loader raises, naming them
        return Matcher(load_rules(paths), min_severity=min_severity)
    try:
        target = cache_dir / f"rules-{cache_key(files)}.pickle"
    except OSError:
        return Matcher(load_rules(paths), min_severity=min_severity)
    cached = _read(target)
    if cached is not None:
        return cached.at_threshold(min_severity)
    matcher = Matcher(load_rules(paths), min_severity=min_severity)
    _write(target, matcher)
    return matcher


def _restore(cls: type[Any], values: tuple[Any, ...]) -> Any:
    """A slotted dataclass instance from its field values, as ``_Pickler`` saved it."""
    obj = object.__new__(cls)
    for name, value in zip(_field_names(cls), values, strict=True):
        object.__setattr__(obj, name, value)
    return obj


_FIELD_NAMES: dict[type[Any], tuple[str, ...]] = {}


def _field_names(cls: type[Any]) -> tuple[str, ...]:
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in dataclasses.fields(cls))
    return names


class _Pickler(pickle.Pickler):
    """Saves a slotted dataclass (the pack's rules, entities, conditions and patterns: thousands of them) as its
    class and field values: loading it back is several times cheaper than through the ``__setstate__`` that
    ``dataclass(slots=True)`` adds, which is most of a cached pack's loading time."""

    def reducer_override(self, obj: Any) -> Any:
        cls = type(obj)
        if "__slots__" in cls.__dict__ and dataclasses.is_dataclass(cls):
            return _restore, (cls, tuple(getattr(obj, name) for name in _field_names(cls)))
        return NotImplemented


def _read(target: Path) -> Matcher | None:
    try:
        with target.open("rb") as handle:
            value = pickle.load(handle)
    except FileNotFoundError:
        return None
    except Exception:  # a truncated or foreign file: ignore it, the loader rebuilds it
        return None
    return value if isinstance(value, Matcher) else None


def _write(target: Path, matcher: Matcher) -> None:
    write_atomically(
        target, lambda handle: _Pickler(handle, protocol=pickle.HIGHEST_PROTOCOL).dump(matcher), prefix=".rules-"
    )
