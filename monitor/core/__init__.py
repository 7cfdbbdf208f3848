"""The pure core: the values the pipeline passes along (articles, matches), the clock seam, the exception tree,
logging set-up, size limits, the observer protocol and the atomic write of cache files. Imports nothing of the
monitor; no network or Redis I/O."""
