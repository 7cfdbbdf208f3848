"""The pure core: the values the pipeline passes along (articles, matches), the clock seam, the exception tree,
logging set-up, size limits and the observer protocol. Imports nothing of the monitor; no network or Redis I/O."""
