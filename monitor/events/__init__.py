"""Events: clustering matches into real-world happenings (pure decisions, MinHash similarity), the escalation index,
and what an alert says (payloads per the webhook contract). May import: ``detection``, ``parsing``, ``config``,
``core``; no I/O libraries."""
