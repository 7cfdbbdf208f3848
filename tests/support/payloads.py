"""Helpers for tests that look inside rendered payloads."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

__all__ = ["strings"]


def strings(value: Any) -> Iterator[str]:
    """Every string anywhere in a JSON value."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)
