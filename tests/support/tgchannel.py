"""A public Telegram channel's web preview, written for these tests, served from loopback.

The pages have the shape of ``https://t.me/s/NAME`` (one ``.tgme_widget_message`` per post with ``data-post``,
the text block, the ``<time datetime>``), with posts written for the project in Arabic, Persian and English.

    channel = Channel("sabereen_test", SAMPLE_POSTS)
    async with FeedServer() as srv:
        channel.serve(srv)                 # GET /s/sabereen_test[?after=N | ?before=N]
        channel.add(Post(110, "..."))      # a new post appears
        channel.queries                    # the query strings asked for, in order
"""

from __future__ import annotations

import hashlib
import html
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from aiohttp import web

from tests.support.feedserver import FeedServer

__all__ = ["ARABIC_CLAIM", "ENGLISH_CLAIM", "PERSIAN_STATEMENT", "Channel", "Post", "sample_posts"]

PAGE_SIZE = 20
_MORE = "tme_messages_more js-messages_more"

ARABIC_CLAIM = (
    "عاجل | المقاومة الإسلامية في العراق\n"
    "استهدف مجاهدونا فجر اليوم قاعدة عين الأسد التي تتمركز فيها قوات الاحتلال الأمريكي في الأنبار "
    "بطائرة مسيّرة، وقد أصابت هدفها بدقة. 🔻"
)
PERSIAN_STATEMENT = (
    "بیانیه سپاه پاسداران انقلاب اسلامی\n"
    "هرگونه تعرض نیروهای آمریکایی به مواضع مقاومت در عراق بی‌پاسخ نخواهد ماند و پاسخ ما قاطع خواهد بود."
)
ENGLISH_CLAIM = (
    "Rockets hit Ain al-Asad air base hosting US troops in western Iraq\n"
    "The coalition said two service members were lightly hurt. More: https://example.org/ain-al-asad"
)


@dataclass(frozen=True)
class Post:
    """One post: its id and text (lines split by newlines; None for a post without text), and its kind."""

    id: int
    text: str | None
    at: datetime = field(default_factory=lambda: datetime.now(UTC))
    photo: bool = False  # a photo above the text, which is then its caption
    service: bool = False  # "channel photo updated" and the like
    reply_to: str | None = None  # the quoted text of the post it answers


def sample_posts(start: int = 100, at: datetime | None = None) -> list[Post]:
    """Posts 100-106 minus 104 (deleted): an Arabic claim, a Persian statement, a service post, a photo with a
    caption, a photo without one, and an English post that answers the Arabic claim."""
    t0 = at or datetime(2024, 1, 28, 6, 0, tzinfo=UTC)
    return [
        Post(start, ARABIC_CLAIM, t0),
        Post(start + 1, PERSIAN_STATEMENT, t0 + timedelta(minutes=20)),
        Post(start + 2, None, t0 + timedelta(minutes=30), service=True),
        Post(start + 3, "صور من موقع الاستهداف قرب قاعدة حرير في أربيل", t0 + timedelta(minutes=40), photo=True),
        Post(start + 5, None, t0 + timedelta(minutes=50), photo=True),
        Post(start + 6, ENGLISH_CLAIM, t0 + timedelta(minutes=55), reply_to="عاجل | المقاومة الإسلامية في العراق"),
    ]


def _text_block(text: str) -> str:
    lines = [html.escape(line) for line in text.split("\n")]
    body = "<br/>".join(lines).replace("🔻", '<i class="emoji" style="background-image:url(x)"><b>🔻</b></i>')
    body = body.replace(
        "https://example.org/ain-al-asad",
        '<a href="https://example.org/ain-al-asad" target="_blank" rel="noopener">https://example.org/ain-al-asad</a>',
    )
    return f'<div class="tgme_widget_message_text js-message_text" dir="auto">{body}</div>'


def _message(channel: str, post: Post) -> str:
    stamp = post.at.isoformat()
    footer = (
        '<div class="tgme_widget_message_footer compact js-message_footer"><div class="tgme_widget_message_info">'
        '<span class="tgme_widget_message_views">4.1K</span><span class="tgme_widget_message_meta">'
        f'<a class="tgme_widget_message_date" href="https://t.me/{channel}/{post.id}">'
        f'<time datetime="{stamp}" class="time">{post.at:%H:%M}</time></a></span></div></div>'
    )
    if post.service:
        return (
            f'<div class="tgme_widget_message service_message js-widget_message" data-post="{channel}/{post.id}">'
            '<div class="tgme_widget_message_bubble"><div class="message_media_not_supported_label">'
            f"Channel photo updated</div>{footer}</div></div>"
        )
    parts = [
        f'<div class="tgme_widget_message_author accent_color"><a class="tgme_widget_message_owner_name" '
        f'href="https://t.me/{channel}"><span dir="auto">Test channel</span></a></div>'
    ]
    if post.reply_to:
        parts.append(
            f'<a class="tgme_widget_message_reply" href="https://t.me/{channel}/{post.id - 6}">'
            '<div class="tgme_widget_message_author accent_color"><span class="name">Test channel</span></div>'
            f"{_text_block(post.reply_to)}</a>"
        )
    if post.photo:
        parts.append(
            f'<a class="tgme_widget_message_photo_wrap" href="https://t.me/{channel}/{post.id}" '
            "style=\"background-image:url('https://cdn.example.org/p.jpg')\"></a>"
        )
    if post.text is not None:
        parts.append(_text_block(post.text))
    return (
        '<div class="tgme_widget_message_wrap js-widget_message_wrap">'
        f'<div class="tgme_widget_message text_not_supported_wrap js-widget_message" data-post="{channel}/{post.id}"'
        f' data-view="x"><div class="tgme_widget_message_bubble">{"".join(parts)}{footer}</div></div></div>'
    )


def page(channel: str, posts: list[Post], *, before: int | None = None, after: int | None = None) -> bytes:
    """A preview page with ``posts`` (oldest first) and the "more" links the real one has."""
    links = ""
    if before is not None:
        links += f'<a href="/s/{channel}?before={before}" class="{_MORE}" data-before="{before}"></a>'
    messages = "".join(_message(channel, p) for p in posts)
    if after is not None:
        messages += f'<a href="/s/{channel}?after={after}" class="{_MORE}" data-after="{after}"></a>'
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8"><title>Test channel – Telegram</title>'
        f'<link rel="canonical" href="https://t.me/s/{channel}"></head><body class="tgme_webpage">'
        '<div class="tgme_channel_info"><div class="tgme_channel_info_header_title"><span dir="auto">Test channel'
        '</span></div></div><main class="tgme_main"><section class="tgme_channel_history js-message_history">'
        f'<div class="tgme_widget_message_centered js-messages_more_wrap">{links}</div>{messages}'
        "</section></main></body></html>"
    ).encode()


@dataclass
class Channel:
    """The posts of one channel and the preview pages over them, as ``t.me/s/NAME`` pages them."""

    name: str
    posts: list[Post]
    queries: list[str] = field(default_factory=list)
    #: Status codes to answer with before the next pages (a 429 with Retry-After, say), one per request.
    script: list[int] = field(default_factory=list)
    #: Send an ETag and answer a matching If-None-Match with 304 (t.me itself may not; the fetcher allows it).
    etags: bool = False
    #: The If-None-Match header of each request ("" when none was sent).
    conditions: list[str] = field(default_factory=list)

    def add(self, post: Post) -> None:
        self.posts.append(post)

    def render(self, *, after: int | None = None, before: int | None = None) -> bytes:
        ordered = sorted(self.posts, key=lambda p: p.id)
        if after is not None:
            newer = [p for p in ordered if p.id > after]
            shown = newer[:PAGE_SIZE]
            more = shown[-1].id if len(newer) > PAGE_SIZE else None
            return page(self.name, shown, before=shown[0].id if shown else None, after=more)
        if before is not None:
            ordered = [p for p in ordered if p.id < before]
        shown = ordered[-PAGE_SIZE:]
        return page(self.name, shown, before=shown[0].id if shown else None)

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        self.queries.append(request.query_string)
        self.conditions.append(request.headers.get("If-None-Match", ""))
        if self.script:
            status = self.script.pop(0)
            return web.Response(status=status, headers={"Retry-After": "120"}, text="slow down")
        after, before = request.query.get("after"), request.query.get("before")
        body = self.render(
            after=int(after) if after and after.isdigit() else None,
            before=int(before) if before and before.isdigit() else None,
        )
        if not self.etags:
            return web.Response(body=body, content_type="text/html", charset="utf-8")
        etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers={"ETag": etag})
        return web.Response(body=body, content_type="text/html", charset="utf-8", headers={"ETag": etag})

    def serve(self, server: FeedServer) -> None:
        server.route(f"/s/{self.name}", self.handle)
