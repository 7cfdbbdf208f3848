"""The webhook body formats: one pure function per format, from the alert payload to the JSON to post.

``generic`` is the payload contract itself (signed); the others are what a chat service's incoming webhook takes
(never signed: none of them can verify a signature). Golden files in ``tests/data/golden`` pin each format.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from monitor.delivery.sinks.discord import discord_payload
from monitor.delivery.sinks.slack import slack_payload
from monitor.delivery.sinks.teams import teams_payload

__all__ = ["FORMATS", "Format", "render_payload"]

Format = Literal["generic", "slack", "discord", "teams"]


def _generic(alert: dict[str, Any]) -> dict[str, Any]:
    return alert


FORMATS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "generic": _generic,
    "slack": slack_payload,
    "discord": discord_payload,
    "teams": teams_payload,
}


def render_payload(fmt: str, alert: dict[str, Any]) -> dict[str, Any]:
    """The JSON object to post for ``alert`` in format ``fmt`` (one of ``FORMATS``)."""
    try:
        build = FORMATS[fmt]
    except KeyError:
        raise ValueError(f"unknown webhook format {fmt!r} (known: {', '.join(FORMATS)})") from None
    return build(alert)
