"""Digests: the window each schedule covers, what a digest says (pure), its rendering and its sending once per
window across replicas. May import: ``delivery`` and below; the cron arithmetic and the schedule itself live in
``service`` (``service.cron`` passes fire times in), the Redis reads and claims in ``storage.digests``."""
