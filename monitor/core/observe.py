"""What the pipeline reports about itself, as a small protocol: the edges call it,
``monitor.service.metrics`` implements it.

The app, the processor and the deliverers take an ``Observer`` and never import a metrics library, so the pure
core stays free of Prometheus and tests that do not care pass nothing (``NULL_OBSERVER``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol

__all__ = ["NULL_OBSERVER", "FetchOutcome", "NullObserver", "Observer"]

#: ``ok``: a body was fetched and processed; ``not_modified``: a 304; ``error``: the poll failed anywhere.
FetchOutcome = Literal["ok", "not_modified", "error"]


class Observer(Protocol):
    """Counts and timings of the daemon's work. Every method is called on the event loop and must not block."""

    def feed_polled(self, feed: str, outcome: FetchOutcome, seconds: float) -> None:
        """A poll of ``feed`` finished (``seconds``: from its start to its end, as ``latency_s`` of feed health)."""

    def feed_skipped(self, feed: str) -> None:
        """A poll was skipped because another replica holds the feed's lease."""

    def items_parsed(self, feed: str, count: int) -> None:
        """A fetched body of ``feed`` held ``count`` articles."""

    def rules_matched(self, rules: Sequence[str]) -> None:
        """A new (not yet claimed) article matched these rules at the alert threshold."""

    def event_opened(self, event_type: str) -> None:
        """A new event was committed (its first alert enqueued)."""

    def event_revised(self, event_type: str) -> None:
        """An event's revision alert was enqueued."""

    def alert_delivered(self, sink: str, latency_s: float | None) -> None:
        """A sink accepted an alert; ``latency_s``: from its enqueueing (the article's processing) to now."""

    def alert_failed(self, sink: str) -> None:
        """An attempt failed and a retry was scheduled."""

    def alert_dead_lettered(self, sink: str) -> None:
        """An alert went to the dead-letter stream for ``sink``."""

    def config_reloaded(self, ok: bool) -> None:
        """A SIGHUP reload was applied (``ok``) or refused (the last good configuration stays)."""

    def redis_state_lost(self) -> None:
        """Redis was found empty or replaced (see ``monitor.storage.generation``)."""


class NullObserver:
    """Observes nothing: the default wherever no metrics are wanted (``monitor once``, tests, replay)."""

    def feed_polled(self, feed: str, outcome: FetchOutcome, seconds: float) -> None:
        pass

    def feed_skipped(self, feed: str) -> None:
        pass

    def items_parsed(self, feed: str, count: int) -> None:
        pass

    def rules_matched(self, rules: Sequence[str]) -> None:
        pass

    def event_opened(self, event_type: str) -> None:
        pass

    def event_revised(self, event_type: str) -> None:
        pass

    def alert_delivered(self, sink: str, latency_s: float | None) -> None:
        pass

    def alert_failed(self, sink: str) -> None:
        pass

    def alert_dead_lettered(self, sink: str) -> None:
        pass

    def config_reloaded(self, ok: bool) -> None:
        pass

    def redis_state_lost(self) -> None:
        pass


NULL_OBSERVER: Observer = NullObserver()
