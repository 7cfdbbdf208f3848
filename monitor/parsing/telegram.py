"""A public Telegram channel's web preview (``https://t.me/s/NAME``) -> ``Article``s, one per post.

The preview is plain HTML that needs no login: one ``.tgme_widget_message`` per post, its ``data-post`` attribute
``NAME/ID``, the text in ``.tgme_widget_message_text`` (a photo's or a video's caption is that same block), the
time in ``<time datetime=...>``. Service posts (a pinned message, a new channel photo) and posts with nothing to read
are skipped but still count for the newest post id, so that the next poll asks only for what comes after them; a
deleted post simply leaves a gap in the ids. A page that is neither a channel's history nor holds any post (the
landing page of a private channel, an error page, a different site) is a ``ParseError`` that says so.

Pure: bytes in, values out. The fetcher (``monitor.fetching.telegram``) chooses the page; the pool runs this in a
worker process like any feed parse.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from selectolax.lexbor import LexborHTMLParser

from monitor.core.errors import ParseError
from monitor.core.models import Article
from monitor.parsing.clean import article_id, clean_text
from monitor.parsing.feed import FUTURE_SLACK, SUMMARY_LIMIT

__all__ = [
    "PUBLIC_BASE",
    "ChannelPage",
    "Post",
    "channel_page_url",
    "headline",
    "parse_channel_page",
    "post_url",
]

#: Where posts live for a reader, whatever base URL the pages were read from (a test server, a mirror).
PUBLIC_BASE = "https://t.me"
#: A headline shorter than this takes the next line too ("عاجل" alone, or an emoji and a hashtag, says nothing).
TITLE_MIN = 24
TITLE_MAX = 160
#: Posts kept per page: the preview shows about twenty; more is not a channel page.
MAX_POSTS = 200

_DATA_POST = re.compile(r"^([A-Za-z0-9_]{1,64})/([0-9]{1,12})$")
# A sentence ends at . ! ? (Latin), ؟ (Arabic) or ۔ (Urdu/Persian full stop) before a space, after two characters
# that are not a dot or a space: "U.S. forces" is not cut after "U.S.".
_SENTENCE_END = re.compile(r"(?<=[^\s.]{2})[.!?؟۔…](?=\s)")
_BLANK = re.compile(r"[ \t\u00a0]+")


@dataclass(frozen=True, slots=True)
class Post:
    """One post that became an article."""

    id: int
    article: Article


@dataclass(frozen=True, slots=True)
class ChannelPage:
    """What one preview page holds. ``newest_id`` is the highest post id on the page, skipped posts included (None
    when the page has none); ``more_after`` is true when the page links to newer posts than it shows."""

    channel: str
    posts: tuple[Post, ...]
    newest_id: int | None
    more_after: bool


def channel_page_url(base: str, channel: str, *, after: int | None = None) -> str:
    """The preview page of ``channel`` on ``base`` (``https://t.me`` unless overridden): its latest posts, or with
    ``after`` the posts that follow that id."""
    url = f"{base.rstrip('/')}/s/{channel}"
    return f"{url}?after={after}" if after else url


def post_url(channel: str, post_id: int) -> str:
    """A post's public link, ``https://t.me/NAME/ID``."""
    return f"{PUBLIC_BASE}/{channel}/{post_id}"


def headline(lines: list[str]) -> str:
    """A title from a post's lines: the first line (with the next ones while it is shorter than ``TITLE_MIN``),
    cut after its first sentence when that is long enough, and to at most ``TITLE_MAX`` characters at a word."""
    parts: list[str] = []
    for line in lines:
        parts.append(line)
        if len(" ".join(parts)) >= TITLE_MIN:
            break
    title = " ".join(parts)
    for end in _SENTENCE_END.finditer(title):
        if end.end() >= TITLE_MIN:
            title = title[: end.end()]
            break
    if len(title) <= TITLE_MAX:
        return title
    cut = title[: TITLE_MAX - 1]
    space = cut.rfind(" ")
    return (cut[:space] if space > TITLE_MAX // 2 else cut).rstrip(" ,،:;-–—") + "…"


def _decode(body: bytes, headers: Mapping[str, str]) -> str:
    charset = re.search(r"charset=([\w-]+)", headers.get("content-type", ""), re.IGNORECASE)
    try:
        return body.decode(charset.group(1) if charset else "utf-8", errors="replace")
    except LookupError:  # an unknown charset label: the preview is UTF-8 anyway
        return body.decode("utf-8", errors="replace")


def _lines(node: Any) -> list[str]:
    """The reader-visible lines of a text block: ``<br>`` and block ends are line breaks; links and emoji (an
    ``<i class="emoji">`` around the character itself) stay as their text."""
    for br in node.css("br"):
        br.replace_with("\n")
    text = node.text(deep=True, separator="")
    lines = (clean_text(_BLANK.sub(" ", line), SUMMARY_LIMIT) for line in text.split("\n"))
    return [line for line in lines if line]


def _post_text(message: Any) -> list[str]:
    """The post's own text (a media post's caption is the same block), else what its media says of itself: a
    document's title, a poll's question, a link preview's title and description."""
    for block in message.css(".tgme_widget_message_text"):
        parent, quoted = block.parent, False
        while parent is not None and parent is not message:
            if "tgme_widget_message_reply" in (parent.attributes.get("class") or ""):
                quoted = True  # the post it answers, quoted above it
                break
            parent = parent.parent
        if not quoted:
            lines = _lines(block)
            if lines:
                return lines
    for selector in (
        ".tgme_widget_message_document_title",
        ".tgme_widget_message_poll_question",
        ".link_preview_title",
        ".link_preview_description",
    ):
        found = message.css_first(selector)
        if found is not None and (lines := _lines(found)):
            return lines
    return []


def _published(message: Any, fetched: datetime) -> datetime | None:
    stamp = message.css_first(".tgme_widget_message_date time[datetime]") or message.css_first("time[datetime]")
    raw = stamp.attributes.get("datetime") if stamp is not None else None
    if not raw:
        return None
    try:
        moment = datetime.fromisoformat(raw.strip())
    except ValueError:
        return None
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return fetched if moment > fetched + FUTURE_SLACK else moment


def _article(message: Any, channel: str, post_id: int, *, feed: str, fetched: datetime) -> Article | None:
    lines = _post_text(message)
    if not lines:
        return None  # a photo or a sticker without a caption: nothing to match or to show
    link = post_url(channel, post_id)
    title = headline(lines)
    summary = clean_text(" ".join(lines), SUMMARY_LIMIT)
    return Article(
        id=article_id(link, link, title, summary),
        feed=feed,
        url=link,
        guid=link,
        title=title,
        summary=summary,
        content="",
        published=_published(message, fetched),
        fetched=fetched,
    )


def parse_channel_page(
    body: bytes, *, headers: Mapping[str, str], feed: str, channel: str, url: str, fetched: datetime
) -> ChannelPage:
    """The posts of ``channel`` on one preview page, oldest first as the page lists them.

    ``url`` is the page's address (for errors). Posts of another channel (a redirect to a different page) are
    ignored; a page that is not a channel preview raises ``ParseError``.
    """
    if fetched.tzinfo is None:
        fetched = fetched.replace(tzinfo=UTC)
    lowered = {name.lower(): value for name, value in headers.items()}
    tree = LexborHTMLParser(_decode(body, lowered))
    messages = tree.css(".tgme_widget_message[data-post]")
    if not messages and tree.css_first(".tgme_channel_history") is None:
        raise ParseError(url, "not a Telegram channel preview (is the channel public, and its name right?)")
    posts: list[Post] = []
    newest: int | None = None
    spelled = channel
    for message in messages[:MAX_POSTS]:
        found = _DATA_POST.match((message.attributes.get("data-post") or "").strip())
        if found is None or found.group(1).lower() != channel.lower():
            continue
        spelled, post_id = found.group(1), int(found.group(2))
        newest = post_id if newest is None else max(newest, post_id)
        if "service_message" in (message.attributes.get("class") or ""):
            continue
        article = _article(message, spelled, post_id, feed=feed, fetched=fetched)
        if article is not None:
            posts.append(Post(post_id, article))
    more = tree.css_first(".tme_messages_more[data-after]") is not None
    return ChannelPage(channel=spelled, posts=tuple(posts), newest_id=newest, more_after=more)
