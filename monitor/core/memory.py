"""Give freed heap memory back to the operating system after handling a large body.

CPython frees a large body's buffers (64 kB chunks, parser trees) into glibc's heap, which keeps the pages; after
a few hostile feeds the process stays at its high-water mark for good. ``malloc_trim`` returns the free pages.
It costs about a millisecond, so it runs only after bodies over ``LARGE_BODY``. Elsewhere than glibc it is a
no-op.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util

__all__ = ["release_free_memory"]


def _trim() -> ctypes._NamedFuncPointer | None:
    name = ctypes.util.find_library("c")
    if not name:
        return None
    with contextlib.suppress(OSError, AttributeError):
        return ctypes.CDLL(name).malloc_trim
    return None


_MALLOC_TRIM = _trim()


def release_free_memory() -> None:
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)
