"""Reading a public Telegram channel incrementally through its web preview (``type: telegram`` feeds).

The first poll reads the preview's latest posts (``/s/NAME``); after that each poll asks only for the posts after the
newest id it has seen (``/s/NAME?after=ID``), and follows the page's link to newer posts for a few pages when a burst
outran one page. Every page goes through the same ``Fetcher`` as RSS feeds (deadline, size cap, private-network
guard, redirects re-checked; a 429 or 503 raises ``FetchError`` with its ``Retry-After`` for the poller's backoff)
and is parsed in the same worker pool.

The cursor (``name/id``, lower-cased name) is saved with the poll's other state only after the posts are processed,
so a crash in between reads them again. Validators are sent only for the page they came from: when a poll found
nothing new, the next one asks for the same page and may get a 304.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from monitor.config import FeedConfig
from monitor.core.clock import Clock
from monitor.core.models import Article, Validators
from monitor.fetching.fetcher import Fetcher
from monitor.parsing.pool import ParserPool
from monitor.parsing.telegram import channel_page_url

__all__ = ["MAX_PAGES", "ChannelRead", "cursor_id", "read_channel"]

#: Pages one poll may read when posts come faster than a page a poll; the rest wait for the next poll.
MAX_PAGES = 5


@dataclass(frozen=True, slots=True)
class ChannelRead:
    """What one poll of a channel read: the new posts' articles (oldest first), the cursor to save, the status of
    the first page (200, or 304 when the server said nothing changed), the validators to keep and the pages read."""

    articles: list[Article]
    cursor: str | None
    status: int
    validators: Validators | None
    headers: dict[str, str] = field(default_factory=dict)
    pages: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.articles)


def cursor_id(cursor: str | None, channel: str) -> int | None:
    """The post id a saved cursor holds for ``channel``; None when there is none or it was another channel's (a
    feed renamed to a new channel starts afresh)."""
    if not cursor:
        return None
    name, _, number = cursor.rpartition("/")
    if name != channel.lower() or not number.isdigit():
        return None
    return int(number)


async def read_channel(
    feed: FeedConfig,
    *,
    fetcher: Fetcher,
    parser: ParserPool,
    clock: Clock,
    cursor: str | None,
    validators: Validators | None,
) -> ChannelRead:
    """The posts of ``feed``'s channel newer than ``cursor``. Raises ``FetchError`` / ``ParseError`` as a feed
    fetch does; posts of pages read before a failure are read again next time (the cursor is not saved)."""
    channel = feed.channel or ""
    last = cursor_id(cursor, channel)
    newest = last
    articles: list[Article] = []
    status, kept, headers, pages = 200, validators, {}, 0
    for page_number in range(MAX_PAGES):
        url = channel_page_url(feed.telegram_base_url, channel, after=newest)
        result = await fetcher.fetch(url, validators if page_number == 0 else None)
        pages += 1
        if page_number == 0:
            status, kept, headers = result.status, result.validators, result.headers
        if result.status == 304 or result.body is None:
            break
        page = await parser.parse_channel(
            result.body, headers=result.headers, feed=feed.name, channel=channel, url=result.url, fetched=clock.now()
        )
        # A server that ignores ``after`` sends the latest posts again: only the ones past the cursor are new.
        articles.extend(post.article for post in page.posts if newest is None or post.id > newest)
        if page.newest_id is None or (newest is not None and page.newest_id <= newest):
            break
        newest = page.newest_id
        if not page.more_after:
            break
    if newest != last:
        kept = Validators()  # they belong to a page the next poll will not ask for
    saved = f"{channel.lower()}/{newest}" if newest is not None else cursor
    return ChannelRead(articles, saved, status, kept, headers, pages)
