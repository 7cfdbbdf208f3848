"""Feed bytes -> ``Article``s. feedparser does the parsing; it never sees a URL or a path, only bytes and headers.

What reaches feedparser is defused first (entity declarations removed, a stray gzip layer inflated within a
bound), and what comes out is normalised into plain, bounded text (``monitor.parsing.clean``).
"""

from __future__ import annotations

import asyncio
import io
import re
import zlib
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import feedparser
import structlog

from monitor.core.errors import ParseError
from monitor.core.models import Article
from monitor.parsing.clean import article_id, clean_text, html_to_text, joined_url
from monitor.parsing.fastpath import parse_simple

__all__ = ["MAX_ENTRIES", "parse_feed", "parse_feed_async", "strip_entity_declarations"]

log = structlog.get_logger()

#: Entries kept per fetch, newest first; a feed that lists more is a dump, not a news feed.
MAX_ENTRIES = 1_000
TITLE_LIMIT = 500
SUMMARY_LIMIT = 5_000
CONTENT_LIMIT = 20_000
URL_LIMIT = 2_000
GUID_LIMIT = 1_000
LANGUAGE_LIMIT = 35
#: Bound on a body that arrives gzip-compressed without a Content-Encoding header.
MAX_INFLATED_BYTES = 20_000_000
#: The blank bytes some servers send before the XML declaration (see ``_declaration_first``).
_BLANK = b" \t\r\n"
#: A publisher's clock may run a little fast; beyond this, a date in the future is a mistake.
FUTURE_SLACK = timedelta(days=1)

_HTML_TYPES = ("text/html", "application/xhtml+xml")
# Only these reach feedparser: it decides the encoding from Content-Type and the language from
# Content-Language; Content-Encoding would be wrong anyway (the fetcher has already decoded the body).
_PASSED_HEADERS = ("content-type", "content-language")
_SERVER_LABEL_ERRORS = (feedparser.NonXMLContentType, feedparser.CharacterEncodingOverride)


# XML entity declarations are dropped before feedparser runs. Its XML parser (expat) expands them, and when
# that fails its fallback parser expands the "safe" text entities it found with a regex: one large entity
# referenced a million times becomes gigabytes either way. Feeds do not need them; the rare feed that uses one
# loses that entity's text.
_ENTITY_MARKER = "<!ENTITY"
# Encodings in which "<!ENTITY" is not plain ASCII (XML 1.0 appendix F), with their code unit size.
_WIDE_CODECS = (("utf-32-le", 4), ("utf-32-be", 4), ("utf-16-le", 2), ("utf-16-be", 2), ("cp037", 1))
_QUOTED = r"""(?:"[^"]*"|'[^']*')"""
_PROLOG_ITEM = re.compile(r"\s+|<\?.*?\?>|<!--.*?-->", re.DOTALL)
_DOCTYPE_HEAD = re.compile(
    rf"<!DOCTYPE\s+[^\s\[>]+(?:\s+(?:SYSTEM\s+{_QUOTED}|PUBLIC\s+{_QUOTED}(?:\s+{_QUOTED})?))?\s*"
)
_SUBSET_ITEM = re.compile(rf"\s+|<!--.*?-->|<\?.*?\?>|%[^\s;%<>]+;|<!(?:[^\"'>]|{_QUOTED})*>", re.DOTALL)
# feedparser's fallback parser looks for declarations in the "head": everything before the first "<" + word
# character, however malformed (text before the DOCTYPE, a second DOCTYPE).
_HEAD_END = re.compile(r"<\w", re.ASCII)


def _strip_prolog_doctype(text: str, url: str) -> str:
    """The DOCTYPE an XML parser reads (first thing after the XML declaration, comments and processing
    instructions) without ENTITY declarations and parameter-entity references in its internal subset."""
    pos = 1 if text.startswith("\ufeff") else 3 if text.startswith("\xef\xbb\xbf") else 0
    while (item := _PROLOG_ITEM.match(text, pos)) is not None:
        pos = item.end()
    head = _DOCTYPE_HEAD.match(text, pos)
    if head is None or not text.startswith("[", head.end()):
        return text
    kept: list[str] = []
    pos = head.end() + 1
    while not text.startswith("]", pos):
        item = _SUBSET_ITEM.match(text, pos)
        if item is None:
            raise ParseError(url, "malformed DOCTYPE internal subset")
        if not item.group().startswith(("<!ENTITY", "%")):
            kept.append(item.group())
        pos = item.end()
    return text[: head.end() + 1] + "".join(kept) + text[pos:]


def _strip_in_text(text: str, url: str) -> str:
    stripped = _strip_prolog_doctype(text, url)
    found = _HEAD_END.search(stripped)
    end = found.start() if found else len(stripped)
    if _ENTITY_MARKER in stripped[:end]:
        # Declarations no XML parser would read (after stray text, in a comment, in a second DOCTYPE) are
        # still found by feedparser's regex; spoil them for it. Later ones are only text.
        stripped = stripped[:end].replace(_ENTITY_MARKER, "<!_ENTITY") + stripped[end:]
    return stripped


def strip_entity_declarations(body: bytes, url: str = "") -> bytes:
    """``body`` without entity declarations in its DOCTYPE, in its original encoding; untouched if it has none.

    Raises ``ParseError`` when a DOCTYPE that declares entities cannot be read safely.
    """
    if _ENTITY_MARKER.encode("ascii") in body:
        # latin-1 maps bytes to characters one to one, so any ASCII-compatible encoding survives the round trip.
        text = body.decode("latin-1")
        stripped = _strip_in_text(text, url)
        return body if stripped is text else stripped.encode("latin-1")
    for codec, unit in _WIDE_CODECS:
        marker = _ENTITY_MARKER.encode(codec)
        found = body.find(marker)
        while found != -1 and found % unit:
            found = body.find(marker, found + 1)
        if found != -1:
            try:
                text = body.decode(codec, "surrogatepass")
            except UnicodeDecodeError as exc:
                raise ParseError(url, f"undecodable {codec} body with entity declarations") from exc
            stripped = _strip_in_text(text, url)
            return body if stripped is text else stripped.encode(codec, "surrogatepass")
    return body


def _inflate(body: bytes, url: str, limit: int) -> bytes:
    """Some servers send ``.xml.gz`` files as the body itself; feedparser cannot read those."""
    inflater = zlib.decompressobj(wbits=47)  # 32 + 15: accept gzip or zlib headers
    try:
        data = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise ParseError(url, "corrupt gzip body") from exc
    if len(data) > limit or inflater.unconsumed_tail:
        raise ParseError(url, f"gzip body inflates past {limit} bytes")
    if not inflater.eof:
        raise ParseError(url, "corrupt gzip body (truncated)")
    return data


def _to_text(value: Any, kind: str | None, limit: int) -> str:
    if not isinstance(value, str) or not value:
        return ""
    if kind is None or kind in _HTML_TYPES or kind.endswith("html"):
        value = html_to_text(value)
    return clean_text(value, limit)


def _field_text(entry: Mapping[str, Any], name: str, limit: int) -> str:
    detail = entry.get(f"{name}_detail") or {}
    return _to_text(entry.get(name), detail.get("type"), limit)


def _content_text(entry: Mapping[str, Any]) -> str:
    texts = [_to_text(part.get("value"), part.get("type"), CONTENT_LIMIT) for part in entry.get("content") or ()]
    return max(texts, key=len, default="")


def _published(entry: Mapping[str, Any], fetched: datetime) -> datetime | None:
    for key in ("published_parsed", "updated_parsed"):
        parsed = entry.get(key)
        if not parsed:
            continue
        try:
            # feedparser has already converted the date to UTC.
            year, month, day, hour, minute, second = parsed[:6]
            moment = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
        except (TypeError, ValueError, OverflowError):
            continue
        return fetched if moment > fetched + FUTURE_SLACK else moment
    return None


def _language(entry: Mapping[str, Any], default: str | None) -> str | None:
    for name in ("title_detail", "summary_detail"):
        detail = entry.get(name) or {}
        if detail.get("language"):
            return clean_text(str(detail["language"]), LANGUAGE_LIMIT).lower() or default
    return default


def _entry_url(entry: Mapping[str, Any], base: str) -> str:
    link = entry.get("link")
    if not isinstance(link, str) or not link.strip():
        return ""
    try:
        absolute = joined_url(base, link)
    except ValueError:
        return ""
    # Only web links reach an alert: a "javascript:" or "data:" link in a receiver's chat client is a hazard.
    if not absolute.startswith(("http://", "https://")) or len(absolute) > URL_LIMIT:
        return ""
    return absolute


def _article(
    entry: Mapping[str, Any],
    *,
    feed: str,
    url: str,
    fetched: datetime,
    published: datetime | None,
    language: str | None,
) -> Article:
    title = _field_text(entry, "title", TITLE_LIMIT)
    summary = _field_text(entry, "summary", SUMMARY_LIMIT)
    content = _content_text(entry)
    link = _entry_url(entry, url)
    raw_guid = entry.get("id")
    guid = clean_text(raw_guid, GUID_LIMIT) if isinstance(raw_guid, str) else ""
    return Article(
        id=article_id(guid or None, link or None, title, content or summary, url_is_canonical=True),
        feed=feed,
        url=link,
        guid=guid or None,
        title=title,
        summary=summary,
        content=content,
        published=published,
        fetched=fetched,
        language=_language(entry, language),
    )


def _newest(entries: list[Any], fetched: datetime) -> list[tuple[Any, datetime | None]]:
    # Plain dicts: FeedParserDict's aliases warn (``updated_parsed`` falls back to ``published_parsed``).
    dated = [(plain, _published(plain, fetched)) for plain in map(dict, entries)]
    if len(dated) <= MAX_ENTRIES:
        return dated
    floor = datetime.min.replace(tzinfo=UTC)
    # Newest first; undated entries last, in document order (feeds list their newest first).
    ranked = sorted(range(len(dated)), key=lambda i: (dated[i][1] is not None, dated[i][1] or floor, -i), reverse=True)
    return [dated[i] for i in sorted(ranked[:MAX_ENTRIES])]


def _reason(exc: object) -> str:
    return clean_text(str(exc), 200) or type(exc).__name__


def parse_feed(
    body: bytes,
    *,
    headers: Mapping[str, str],
    feed: str,
    url: str,
    fetched: datetime,
    fast: bool = True,
    max_inflated: int = MAX_INFLATED_BYTES,
) -> list[Article]:
    """The entries of one fetched feed as ``Article``s, at most ``MAX_ENTRIES`` of the newest.

    ``headers`` are the response headers (any case); ``url`` is the final URL, used to resolve relative links
    and in errors. A malformed feed that still yields entries is returned and logged as ``feed_malformed``;
    a body that is not a feed at all (an HTML page, an empty body) raises ``ParseError``. Plain well-formed
    feeds are read by ``monitor.parsing.fastpath`` (same articles, several times faster); ``fast=False`` always uses
    feedparser, the reference. A body that is itself gzip data is inflated up to ``max_inflated`` bytes (the
    daemon passes ``fetch.max_bytes``, the bound every other body has).
    """
    if fetched.tzinfo is None:
        fetched = fetched.replace(tzinfo=UTC)
    if body[:2] == b"\x1f\x8b":
        body = _inflate(body, url, max_inflated)
    if not body.strip():
        raise ParseError(url, "empty body")
    body = _declaration_first(body)
    lowered = {name.lower(): value for name, value in headers.items()}
    passed = {name: lowered[name] for name in _PASSED_HEADERS if name in lowered}
    parsed = parse_simple(body, passed) if fast else None
    if parsed is None:
        parsed = _feedparser(body, passed, feed, url)
    return _articles(parsed, lowered, feed=feed, url=url, fetched=fetched)


def _declaration_first(body: bytes) -> bytes:
    """The body without the blank lines some servers send before the XML declaration. XML allows nothing before
    it, so with them feedparser's strict parser fails (a ``feed_malformed`` warning on every fetch) and its loose one
    reads the feed, and the fast path declines it; without them both read it as the well-formed feed it is."""
    if body[:1] not in _BLANK:
        return body
    stripped = body.lstrip(_BLANK)
    return stripped if stripped.startswith(b"<?xml") else body


def _feedparser(body: bytes, passed: dict[str, str], feed: str, url: str) -> dict[str, Any]:
    try:
        # A file-like object, never bytes: given bytes, feedparser first tries them as a file name.
        parsed = feedparser.parse(
            io.BytesIO(strip_entity_declarations(body, url)),
            response_headers=passed,
            sanitize_html=False,
            resolve_relative_uris=False,
        )
    except ParseError:
        raise
    except Exception as exc:  # feedparser's failures have no common base; none may escape as themselves
        raise ParseError(url, f"feed parser failed: {_reason(exc)}") from exc
    parsed = dict(parsed)
    entries = list(parsed.get("entries") or [])
    if not entries and not parsed.get("version"):
        raise ParseError(url, f"not a feed ({_reason(parsed.get('bozo_exception', 'no feed elements'))})")
    if parsed.get("bozo"):
        problem = parsed.get("bozo_exception")
        # A wrong Content-Type or charset label is the server's configuration, not a broken feed, and would
        # otherwise warn on every fetch.
        report = log.info if isinstance(problem, _SERVER_LABEL_ERRORS) else log.warning
        report("feed_malformed", feed=feed, url=url, entries=len(entries), reason=_reason(problem))
    return parsed


def _articles(
    parsed: Mapping[str, Any], lowered: Mapping[str, str], *, feed: str, url: str, fetched: datetime
) -> list[Article]:
    entries = list(parsed.get("entries") or [])
    channel = parsed.get("feed") or {}
    default_language = channel.get("language") or lowered.get("content-language")
    if default_language:
        default_language = clean_text(str(default_language), LANGUAGE_LIMIT).lower() or None
    articles = (
        _article(entry, feed=feed, url=url, fetched=fetched, published=published, language=default_language)
        for entry, published in _newest(entries, fetched)
    )
    # An entry with no text and no link (e.g. a stray empty <item/>) has nothing to match or to show.
    return [a for a in articles if a.title or a.summary or a.content or a.url]


async def parse_feed_async(
    body: bytes, *, headers: Mapping[str, str], feed: str, url: str, fetched: datetime
) -> list[Article]:
    """``parse_feed`` in a worker thread, so a large feed does not stall the event loop."""
    return await asyncio.to_thread(parse_feed, body, headers=headers, feed=feed, url=url, fetched=fetched)
