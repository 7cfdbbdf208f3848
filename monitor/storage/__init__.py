"""Every Redis key, script and command: the connection (embedded or URL), batching, poll state, leases, events,
the outbox stream, dead letters and backlog. The only package that imports redis; it raises ``StoreError``, never
redis' own errors. May import: ``events``, ``detection``, ``parsing``, ``config``, ``core``."""
