"""Feed bytes and article files into ``Article`` values: the lxml fast path, feedparser, Telegram channel previews
(``telegram``), the worker-process pool and the text/URL cleaning of feed fields. May import: ``config``, ``core``;
never the network or Redis."""
