"""The generation marker: noticing that Redis lost its state, and how far back the feeds were already read.

A Redis restarted without persistence, wiped (``FLUSHALL``) or replaced comes back empty: every article still in
the feeds then looks new and would alert again, with the same ids. The monitor marks the state it writes with a
random token kept in two places: in Redis (``Keys.generation``) and in a small JSON file beside the embedded data
(``redis.data_dir``, the one directory the service writes), together with, per feed, when the feed was last read
into that state. The file survives the loss; Redis' copy does not.

``Generation.check`` compares the two: at start, before each batch of articles is processed and on the daemon's
heartbeat. A marker that is missing or different while this process (or its file) knew one means the state was
lost: one ``redis_state_lost`` warning, a count on the observer, a new marker, and for each feed a *cutoff*, the
moment it was last read. The next read of that feed is silent up to its cutoff (the processor claims those articles
and rebuilds their events without alerting, see ``monitor.processing``); articles published after it alert as
usual. A fresh install (no file, no marker) starts a generation without any cutoff: nothing was read before.

Feeds are keyed by name and URL, so a file left by another configuration never silences a feed it did not read.
What cannot be told apart: an article published before its feed's last read but first listed after it (a feed
that lags) is taken as read; the alternative, re-alerting everything, is what this module exists to prevent.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import secrets
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import redis.asyncio as aioredis
import structlog
from redis.exceptions import RedisError

from monitor.core.clock import Clock
from monitor.core.errors import StoreError
from monitor.core.observe import NULL_OBSERVER, Observer
from monitor.storage.keys import Keys

__all__ = ["Generation", "state_file"]

log = structlog.get_logger(__name__)

#: Feed name -> its URL in the running configuration (None when unknown, e.g. a replay).
FeedLocator = Callable[[str], str | None]


def state_file(directory: Path, keys: Keys) -> Path:
    """Where the generation of ``keys``' namespace is remembered outside Redis."""
    return directory / f"generation-{keys.namespace}.json"


class Generation:
    """The current generation of the Redis state and each feed's last read into it; see the module docstring.

    ``path`` None keeps it in memory only: a loss while the process runs is still noticed, not one across a restart.
    """

    def __init__(
        self,
        redis: aioredis.Redis,
        keys: Keys,
        clock: Clock,
        *,
        path: Path | None = None,
        locate: FeedLocator = lambda feed: None,
        observer: Observer = NULL_OBSERVER,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.clock = clock
        self.path = path
        self.locate = locate
        self.observer = observer
        self.token: str | None = None
        self.losses = 0
        self._reads: dict[str, str] = {}  # feed key -> ISO time of its last read into this generation
        self._cutoffs: dict[str, datetime] = {}  # feed key -> silent up to here, until the feed is read again
        self._loaded = False
        self._dirty = False
        self._unwritable = False
        self._lock: asyncio.Lock | None = None

    def _key(self, feed: str) -> str:
        url = self.locate(feed)
        return feed if url is None else f"{feed} {hashlib.sha1(url.encode(), usedforsecurity=False).hexdigest()[:12]}"

    def cutoff(self, feed: str) -> datetime | None:
        """Until when ``feed``'s articles are taken as read (silently claimed); None: the feed alerts as usual."""
        return self._cutoffs.get(self._key(feed)) if self._cutoffs else None

    def read(self, feed: str, at: datetime) -> bool:
        """``feed`` was read (its articles processed) at ``at``; True when that ended a silent re-read."""
        key = self._key(feed)
        self._reads[key] = at.isoformat()
        self._dirty = True
        return self._cutoffs.pop(key, None) is not None

    async def check(self) -> bool:
        """Compare Redis' marker with the one this process knows; True when the state was found lost (then logged,
        counted and a new generation begun, with a cutoff per feed read before). Raises ``StoreError``."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if not self._loaded:
                await asyncio.to_thread(self._load)
            try:
                raw = await self.redis.get(self.keys.generation)
            except RedisError as exc:
                raise StoreError(f"Redis failed reading the generation marker: {exc}") from exc
            found = _token(raw)
            if found is not None and found == self.token:
                return False
            if self.token is None:  # first look: adopt what Redis holds, or begin the first generation
                self.token = found or await self._begin()
                self._dirty = True
                await self.save()
                return False
            await self._lost(previous=self.token, found=found)
            return True

    async def _lost(self, *, previous: str, found: str | None) -> None:
        # Another replica may have begun the new generation already: join it rather than begin a third.
        self.token = found or await self._begin()
        self._cutoffs.update({key: datetime.fromisoformat(at) for key, at in self._reads.items()})
        self._reads = {}
        self._dirty = True
        self.losses += 1
        self.observer.redis_state_lost()
        log.warning(
            "redis_state_lost",
            previous_generation=previous,
            generation=self.token,
            feeds_reread_silently=len(self._cutoffs),
            reason="the generation marker is missing" if found is None else "Redis holds another generation",
            consequence="feeds are re-read without alerting up to their last read; alerts queued before were lost",
        )
        await self.save()

    async def _begin(self) -> str:
        """Write a new marker unless one appeared meanwhile; the token that is in Redis after."""
        token = secrets.token_hex(8)
        body = json.dumps({"generation": token, "created": self.clock.now().isoformat()})
        try:
            if await self.redis.set(self.keys.generation, body, nx=True):
                return token
            found = _token(await self.redis.get(self.keys.generation))
        except RedisError as exc:
            raise StoreError(f"Redis failed writing the generation marker: {exc}") from exc
        return found or token

    async def save(self) -> None:
        """Write the file when something changed (the heartbeat and shutdown call it); errors are only logged."""
        if self.path is None or not self._dirty or self.token is None:
            return
        body = json.dumps({"generation": self.token, "feeds": self._reads}, sort_keys=True, indent=1)
        self._dirty = False
        try:
            await asyncio.to_thread(_write, self.path, body)
        except OSError as exc:
            self._dirty = True
            if not self._unwritable:  # once, not on every heartbeat; a loss is still noticed while running
                self._unwritable = True
                log.warning("generation_file_unwritable", path=str(self.path), reason=str(exc))
        else:
            self._unwritable = False

    def _load(self) -> None:
        self._loaded = True
        if self.path is None:
            return
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            token, reads = data["generation"], data.get("feeds", {})
            if not isinstance(token, str) or not isinstance(reads, dict):
                raise ValueError("unexpected shape")
            with contextlib.suppress(TypeError, ValueError):
                self._reads = {str(k): datetime.fromisoformat(v).isoformat() for k, v in reads.items()}
            self.token = token
        except FileNotFoundError:
            return
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("generation_file_unreadable", path=str(self.path), reason=str(exc))


def _token(raw: object) -> str | None:
    if raw is None:
        return None
    with contextlib.suppress(ValueError, TypeError, AttributeError):
        token = json.loads(raw.decode() if isinstance(raw, bytes) else str(raw))["generation"]
        return token if isinstance(token, str) else None
    return None


def _write(path: Path, body: str) -> None:
    """Atomically: a crash mid-write leaves the previous file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_text(body, encoding="utf-8")
    os.replace(partial, path)
