"""Rules and matching: the YAML rule pack (schema, loading, validation), text normalisation, the condition
language, the Aho-Corasick matcher and its prefilter, and the offline tools over it (scan, rules test, derive). May
import: ``parsing``, ``config``, ``core``; no I/O libraries."""
