"""Routing as the operator sees it: ``monitor check`` refuses routing keys that name nothing the rule pack knows
(``path:line``, exit 2), and ``monitor route --explain FILE.json`` says which sinks an alert would reach and why."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from monitor.config import Config, load_config, sink_name
from monitor.config.yamlsrc import load_yaml
from monitor.core.errors import ConfigError, Problem
from monitor.delivery.routing import Route, route_problems
from monitor.detection.rulefile import RuleSet
from monitor.service.cron import CONFIG_CHECKS

__all__ = ["check_routes", "explain_routes"]


def check_routes(path: Path, env: Mapping[str, str], config: Config, ruleset: RuleSet) -> None:
    """Raise ``ConfigError`` with the line of every routing value the rule pack does not know."""
    entity_types = {entity_id: entity.type for entity_id, entity in ruleset.entities.items()}
    found = [
        (index, key, item, reason)
        for index, entry in enumerate(config.alerts.sinks)
        for key, item, reason in route_problems(entry, ruleset.event_types, entity_types)
    ]
    if not found:
        return
    located = load_yaml(path, env=env)
    raise ConfigError(
        [
            Problem(
                str(path), located.line(("alerts", "sinks", index, key, item)), f"alerts.sinks[{index}].{key}: {why}"
            )
            for index, key, item, why in found
        ]
    )


def _alert(file: Path) -> dict[str, Any]:
    try:
        alert = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError([Problem(str(file), None, f"not a readable JSON alert: {exc}")]) from None
    if not isinstance(alert, dict):
        raise ConfigError([Problem(str(file), 1, "an alert must be a JSON object")])
    return alert


def explain_routes(path: Path, env: Mapping[str, str], file: Path) -> str:
    """For each configured sink: whether the alert in ``file`` reaches it, and every routing key's verdict."""
    config = load_config(path, env=env, checks=CONFIG_CHECKS)
    alert = _alert(file)
    lines = [f"alert {alert.get('id', '?')} ({alert.get('kind', '?')}, revision {alert.get('revision', 1)})"]
    for index, entry in enumerate(config.alerts.sinks):
        verdicts = Route.of(entry).explain(alert)
        reaches = all(ok for ok, _ in verdicts)
        lines.append(f"{sink_name(entry, index)} ({entry.type}): {'reaches' if reaches else 'skipped'}")
        lines.extend(f"  {'+' if ok else '-'} {why}" for ok, why in verdicts)
        if not verdicts:
            lines.append("  + no routing keys: every alert")
    return "\n".join(lines)
