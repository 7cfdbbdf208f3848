"""Events: clustering matches into real-world happenings (pure decisions: ``joining`` says whether a report
belongs to an event, ``cluster`` keeps the event and its revisions, ``similarity`` the MinHash, ``facts`` what a
text confirms, claims or denies, ``days`` the day it names), the escalation index, and what an alert says (payloads
per the webhook contract).
May import: ``detection``, ``parsing``, ``config``, ``core``; no I/O libraries."""
