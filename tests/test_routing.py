"""Routing per sink: each key on its own, an alert reaching only the sinks it should through the real outbox,
``monitor route --explain`` and ``monitor check``'s refusal of routing values the rule pack does not know."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis

from monitor.config import Config
from monitor.delivery.routing import Route, is_major_change
from monitor.delivery.sinks.factory import build_sinks
from tests.support.alerts import escalation_alert, event_alert
from tests.support.commands import run_monitor
from tests.test_chat_discord import deliver

ROOT = Path(__file__).resolve().parents[1]


def route(**keys: Any) -> Route:
    entry = Config.model_validate({"alerts": {"sinks": [{"type": "console", **keys}]}}).alerts.sinks[0]
    return Route.of(entry)


def test_no_keys_route_everything() -> None:
    assert route().allows(event_alert(1)) and route().allows(escalation_alert(1, 2))


def test_min_severity_applies_to_every_kind() -> None:
    assert not route(min_severity=5).allows(event_alert(1, severity=4))
    assert not route(min_severity=5).allows(escalation_alert(2, 3))
    assert route(min_severity=4).allows(event_alert(1, severity=4))


def test_event_types() -> None:
    strikes = route(event_types=["us_strike_in_iraq"])
    assert strikes.allows(event_alert(1))
    assert strikes.refusals(event_alert(1, event_type="iran_retaliation_or_threat")) == [
        "event type iran_retaliation_or_threat not in event_types"
    ]
    assert strikes.allows(escalation_alert(2, 3))  # level changes are about no one event type


def test_entities_and_places_are_one_filter() -> None:
    harir = route(places=["harir", "ain_al_asad"])
    assert not harir.allows(event_alert(1))  # names baghdad and kataib_hezbollah
    assert harir.allows(event_alert(1, entities=["ain_al_asad", "iraq"]))
    both = route(places=["harir"], entities=["kataib_hezbollah"])
    assert both.allows(event_alert(1)) and both.explain(event_alert(1)) == [(True, "names kataib_hezbollah")]


def test_languages_hold_back_only_events_in_other_languages() -> None:
    arabic = route(languages=["ar"])
    assert arabic.allows(event_alert(1, languages=["en", "ar"]))
    assert not arabic.allows(event_alert(1, languages=["en"]))
    assert arabic.allows(event_alert(1))  # no language given: not held back


@pytest.mark.parametrize(
    ("changes", "major"),
    [
        (["type: us_strike_in_iraq -> high_value_target_killed"], True),
        (["severity 3 -> 4"], True),
        (["severity 4 -> 3"], False),
        (["casualties 2 -> 5"], True),
        (["casualties reported: 3"], True),
        (["officially confirmed"], True),
        (["status: claimed -> denied"], True),
        (["reported by 3 independent outlets"], False),
    ],
)
def test_major_revisions(changes: list[str], major: bool) -> None:
    assert all(is_major_change(c) == major for c in changes)
    alert = event_alert(1, revision=2, changes=changes)
    assert route(revisions="major").allows(alert) is major
    assert not route(revisions="none").allows(alert) and route(revisions="all").allows(alert)
    assert route(revisions="none").allows(event_alert(1))  # the first alert always goes


async def test_an_alert_reaches_only_the_sinks_it_should(
    redis: aioredis.Redis, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    config = Config.model_validate(
        {
            "alerts": {
                "sinks": [
                    {"type": "file", "name": "all", "path": str(tmp_path / "all.jsonl")},
                    {"type": "file", "name": "harir", "path": str(tmp_path / "h.jsonl"), "places": ["harir"]},
                    {"type": "file", "name": "major", "path": str(tmp_path / "m.jsonl"), "revisions": "major"},
                    {"type": "file", "name": "critical", "path": str(tmp_path / "c.jsonl"), "min_severity": 5},
                ]
            }
        }
    )
    alerts = [
        event_alert(1),
        event_alert(1, revision=2, changes=["reported by 3 independent outlets"]),
        event_alert(2, entities=["harir"], severity=5),
    ]
    for sink in build_sinks(config.alerts.sinks, session, io.StringIO()):
        await deliver(redis, sink, *alerts)
    got = {
        name: sorted(json.loads(line)["id"] for line in (tmp_path / f"{file}.jsonl").read_text().splitlines())
        for name, file in [("all", "all"), ("harir", "h"), ("major", "m"), ("critical", "c")]
    }
    assert got == {
        "all": ["evt1.r1", "evt1.r2", "evt2.r1"],
        "harir": ["evt2.r1"],
        "major": ["evt1.r1", "evt2.r1"],
        "critical": ["evt2.r1"],
    }


def _config(tmp_path: Path, sink: str) -> Path:
    path = tmp_path / "monitor.yaml"
    path.write_text(f"rules: [{ROOT / 'rules'}]\nalerts:\n  sinks:\n    - type: console\n    - {sink}\n")
    return path


def test_route_explain_says_which_sinks_and_why(tmp_path: Path) -> None:
    config = _config(tmp_path, "{type: file, name: bases, path: out.jsonl, places: [ain_al_asad], min_severity: 3}")
    alert = tmp_path / "alert.json"
    alert.write_text(json.dumps(event_alert(1)))
    done = run_monitor("route", "-c", str(config), "--explain", str(alert))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "alert evt1.r1 (event, revision 1)",
        "console (console): reaches",
        "  + no routing keys: every alert",
        "bases (file): skipped",
        "  + severity 4 >= min_severity 3",
        "  - names none of entities/places",
    ]


def test_check_refuses_routing_values_the_pack_does_not_know(tmp_path: Path) -> None:
    config = _config(
        tmp_path,
        "{type: file, path: o, event_types: [us_strike_in_iraq, moon_landing], places: [iraqi, atlantis]}",
    )
    done = run_monitor("check", "-c", str(config))
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"{config}:5: alerts.sinks[1].event_types: unknown event type 'moon_landing' (known: "
        + ", ".join(sorted(EVENT_TYPES))
        + ")",
        f"{config}:5: alerts.sinks[1].places: 'iraqi' is a country, not a place or base",
        f"{config}:5: alerts.sinks[1].places: unknown entity id 'atlantis'",
    ]


EVENT_TYPES = [p.stem for p in (ROOT / "rules").glob("*.yaml") if p.stem not in ("entities", "filters")]
