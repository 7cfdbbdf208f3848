"""Outgoing HTTP: the private-network (SSRF) guard, the guarded aiohttp session, and Retry-After parsing, shared by
the fetchers and the sinks. May import: ``config``, ``core``."""
