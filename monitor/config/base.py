"""What every section of the configuration is built from: the strict model base that runs the checks passed in by
the loader, and the validators the sections share."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, Self, TypeVar
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, ValidationInfo, model_validator

from monitor.config.addresses import bad_addresses

__all__ = ["CHECKS", "SectionCheck", "Strict", "email_addresses", "http_url"]


CHECKS = "monitor.config.checks"  # the validation context's key for the checks load_config was given
_S = TypeVar("_S", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class SectionCheck(Generic[_S]):
    """A check of every ``section`` of a config that needs a layer above this package, passed in by whoever loads
    the config (``load_config(..., checks=...)``): the service layer checks each digest's schedule with its
    scheduler (``monitor.service.cron.CONFIG_CHECKS``). ``problem`` gets a section that passed its own validation
    and returns why it is still wrong, or None; the reason is reported at the section's line like any other."""

    section: type[_S]
    problem: Callable[[_S], str | None]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="after")
    def _passed_in_checks(self, info: ValidationInfo) -> Self:
        checks = info.context.get(CHECKS, {}) if isinstance(info.context, dict) else {}
        for problem in checks.get(type(self), ()):
            reason = problem(self)
            if reason:
                raise ValueError(reason)
        return self


def email_addresses(values: list[str]) -> list[str]:
    bad = bad_addresses(values)
    if bad:
        raise ValueError(f"not an e-mail address: {', '.join(bad)}")
    return values


def http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    if "\\" in value:  # URL parsers disagree on where its host ends (RELIABILITY.md A8)
        raise ValueError("must not contain a backslash")
    return value
