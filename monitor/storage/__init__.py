"""Every Redis key, script and command: the connection (embedded, a URL, a Redis Cluster or a primary found through
Sentinel), waiting for replicas, batching, poll state, leases, events, the outbox stream, dead letters and backlog.
The only package that imports redis; it raises ``StoreError``, never redis' own errors. May import: ``events``,
``detection``, ``parsing``, ``config``, ``core``."""
