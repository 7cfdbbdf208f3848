"""The one exception tree. Lower libraries' errors are translated at the boundary (``raise ... from``)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ConfigError",
    "DeliveryError",
    "FetchError",
    "MonitorError",
    "ParseError",
    "PermanentDeliveryError",
    "Problem",
    "RuleError",
    "StartupError",
    "StoreError",
    "StoreUnavailableError",
]


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a file, located as precisely as we can."""

    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else self.path
        return f"{where}: {self.message}"


class MonitorError(Exception):
    """Base of every error the monitor raises on purpose."""


class ConfigError(MonitorError):
    """The configuration is invalid; carries every problem found, not only the first."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class RuleError(ConfigError):
    """A rule or entity file is invalid."""


class FetchError(MonitorError):
    """A feed could not be fetched; ``reason`` is short and safe to log."""

    def __init__(self, url: str, reason: str, *, status: int | None = None, retry_after: float | None = None) -> None:
        self.url = url
        self.reason = reason
        self.status = status
        self.retry_after = retry_after
        super().__init__(f"{reason}")


class ParseError(MonitorError):
    """A feed body could not be parsed into entries at all."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(reason)


class DeliveryError(MonitorError):
    """A sink failed in a way that is worth retrying."""

    def __init__(self, reason: str, *, retry_after: float | None = None) -> None:
        self.reason = reason
        self.retry_after = retry_after
        super().__init__(reason)


class PermanentDeliveryError(DeliveryError):
    """A sink refused the alert for good (e.g. HTTP 400); the alert goes to the dead-letter stream."""

    def __init__(self, reason: str, *, disable_sink: bool = False) -> None:
        self.disable_sink = disable_sink
        super().__init__(reason)


class StoreError(MonitorError):
    """Redis is unreachable or answered with an error."""


class StoreUnavailableError(StoreError):
    """Redis could not be reached or did not answer in time (down, restarting, paused): worth retrying after a
    pause, unlike an error Redis answered with."""


class StartupError(MonitorError):
    """The daemon refused to start (an unsafe Redis with ``redis.require_safe``) or a part of it could not."""
