"""Writing a cache file so that a reader never sees half of it: into a temporary file beside it, then renamed."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

__all__ = ["write_atomically"]


def write_atomically(target: Path, write: Callable[[BinaryIO], object], *, prefix: str) -> bool:
    """Write ``target`` (its folder made private if missing) through ``write``; False when the disk refused (a cache
    that cannot be written is only slower next time). Any other error propagates, leaving no temporary file."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=prefix, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                write(handle)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError:
        return False
    return True
