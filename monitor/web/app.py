"""Putting the dashboard on an aiohttp application: templates, static files, routes and the access middleware.

``install`` adds it to the daemon's HTTP server (``monitor.service.health``), beside ``/metrics``, ``/healthz`` and
``/readyz``, which it leaves alone (see ``monitor.web.security``).
"""

from __future__ import annotations

from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from monitor.web.handlers import Handlers
from monitor.web.reads import Reader
from monitor.web.security import Access, guard
from monitor.web.views import hhmm

__all__ = ["STATIC", "install"]

STATIC = Path(__file__).parent / "static"
TEMPLATES = Path(__file__).parent / "templates"
EVENT_TYPE_LABELS = {
    "us_strike_in_iraq": "US strike in Iraq",
    "attack_on_us_forces_in_iraq": "Attack on US forces",
    "high_value_target_killed": "High-value figure killed",
    "iraq_expels_or_ends_us_presence": "Move to expel US troops",
    "iran_retaliation_or_threat": "Iranian retaliation or threat",
    "us_embassy_or_diplomatic_incident": "US embassy incident",
    "us_personnel_evacuation_or_advisory": "Evacuation or advisory",
}


def _minutes(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.0f} min" if value < 120 else f"{value / 60:.1f} h"


def _age(value: float | None) -> str:
    """A duration in seconds: ``—`` when there is none, else in minutes or hours."""
    if value is None or value <= 0:
        return "—"
    return "under a minute" if value < 60 else _minutes(value / 60)


def install(app: web.Application, reader: Reader, *, token: str | None) -> None:
    """Serve the dashboard on ``app`` (before it starts); ``token`` is ``web.token`` (None: loopback only)."""
    access = Access(token)
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        when=hhmm,
        minutes=_minutes,
        age=_age,
        label=lambda t: EVENT_TYPE_LABELS.get(t or "", t or "—"),
    )
    app.middlewares.append(guard(access))
    app.router.add_routes(Handlers(reader, access).routes())
    app.router.add_static("/static/", STATIC, follow_symlinks=False, append_version=False)
