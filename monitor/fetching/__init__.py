"""Polling feeds: the guarded HTTP fetch with conditional GET, the adaptive schedule of each feed, and the
``FeedPoller`` that takes a feed's lease, fetches, parses and hands the articles on; public Telegram channels are read
incrementally through their web preview (``telegram``).
May import: ``storage`` and below."""
