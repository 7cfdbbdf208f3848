"""The clustering and escalation policies of the configuration's ``events`` and ``escalation`` sections: what the
processor (``monitor.processing.processor``) is built with."""

from __future__ import annotations

from datetime import timedelta

from monitor.config import EscalationConfig, EventsConfig
from monitor.events.cluster import EventPolicy
from monitor.events.escalation import EscalationPolicy
from monitor.events.joining import family_of

__all__ = ["policies"]


def policies(events: EventsConfig, escalation: EscalationConfig) -> tuple[EventPolicy, EscalationPolicy]:
    event_policy = EventPolicy(
        window=timedelta(hours=events.window_hours),
        windows={family_of(t): timedelta(hours=h) for t, h in events.window_hours_by_type.items()},
        join_threshold=events.join_threshold,
        revise_on_severity=events.revise_on_severity,
        revise_on_confirmation=events.revise_on_confirmation,
        revise_on_casualties=events.revise_on_casualties,
        outlet_thresholds=tuple(events.outlet_thresholds),
    )
    escalation_policy = EscalationPolicy(
        half_life=timedelta(hours=escalation.half_life_hours),
        thresholds=(
            escalation.thresholds[0],
            escalation.thresholds[1],
            escalation.thresholds[2],
            escalation.thresholds[3],
        ),
        hysteresis=escalation.hysteresis,
    )
    return event_policy, escalation_policy
