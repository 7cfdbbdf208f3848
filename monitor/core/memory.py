"""Give freed heap memory back to the operating system after handling a large body.

CPython frees a large body's buffers (64 kB chunks, parser trees) into glibc's heap, which keeps the pages; after
a few hostile feeds the process stays at its high-water mark for good. ``malloc_trim`` returns the free pages.
It costs about a millisecond, so it runs only after bodies over ``LARGE_BODY``. Elsewhere than glibc it is a
no-op.

``limit_heap_growth`` (at the start of the daemon and of each parser worker) keeps the high-water mark from
forming in the first place: glibc raises its mmap threshold each time a large block is freed (up to 32 MB), after
which bodies and parse buffers come from the heap and stay there, and it gives every thread an arena of its own
(``asyncio.to_thread``, the executor's threads). A fixed threshold keeps every block of 256 kB or more in its own
mapping, returned the moment it is freed, and two arenas bound the rest.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util

__all__ = ["limit_heap_growth", "release_free_memory"]

# mallopt(3) parameters, from glibc's malloc.h.
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
_MMAP_THRESHOLD = 256 * 1024
_ARENAS = 2


def _trim() -> ctypes._NamedFuncPointer | None:
    name = ctypes.util.find_library("c")
    if not name:
        return None
    with contextlib.suppress(OSError, AttributeError):
        return ctypes.CDLL(name).malloc_trim
    return None


_MALLOC_TRIM = _trim()


def _mallopt() -> ctypes._NamedFuncPointer | None:
    name = ctypes.util.find_library("c")
    if not name:
        return None
    with contextlib.suppress(OSError, AttributeError):
        return ctypes.CDLL(name).mallopt
    return None


def limit_heap_growth() -> None:
    """Fix glibc's mmap threshold and cap its arenas (see the module docstring); call before threads start."""
    mallopt = _mallopt()
    if mallopt is not None:
        mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)
        mallopt(_M_ARENA_MAX, _ARENAS)


def release_free_memory() -> None:
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)
