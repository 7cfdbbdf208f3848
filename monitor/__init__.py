"""Escalation monitor: watches news feeds and alerts once per Iraq-US escalation event."""

__version__ = "0.1.0"
__all__ = ["__version__"]
