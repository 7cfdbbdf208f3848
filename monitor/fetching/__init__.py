"""Polling feeds: the guarded HTTP fetch with conditional GET, the adaptive schedule of each feed, and the
``FeedPoller`` that takes a feed's lease, fetches, parses and hands the articles on.
May import: ``storage`` and below."""
