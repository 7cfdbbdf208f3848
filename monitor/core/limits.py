"""Size thresholds shared by the fetcher (daemon side) and the parser pool, kept apart so that neither has to
import the other (parser workers should not load aiohttp)."""

from __future__ import annotations

__all__ = ["LARGE_BODY", "LARGE_BODY_SLOTS"]

#: A body over this many bytes is "large". News feeds are a few hundred kB at most; larger bodies are rare and
#: are what a hostile feed sends, so only a few are handled at a time (see ``LARGE_BODY_SLOTS``).
LARGE_BODY = 1_000_000
#: Fetches that may hold a large body at once. The others wait (within their own deadline) before reading past
#: ``LARGE_BODY``; the parser pool parses one large body at a time. Together these bound the daemon's memory.
LARGE_BODY_SLOTS = 2
