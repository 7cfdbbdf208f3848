"""Digests: the window each schedule covers, what a digest says (pure), its rendering and its sending once per
window across replicas. May import: ``delivery`` and below; the cron schedule itself runs in ``service``."""
