from __future__ import annotations

import gzip
import io
import json
import time
import zlib
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import feedparser
import pytest
from structlog.testing import capture_logs

from monitor.core.errors import ParseError
from monitor.core.models import Article
from monitor.parsing.feed import (
    CONTENT_LIMIT,
    MAX_ENTRIES,
    TITLE_LIMIT,
    parse_feed,
    parse_feed_async,
    strip_entity_declarations,
)

DATA = Path(__file__).parent / "data" / "feeds"
FETCHED = datetime(2024, 1, 10, 12, 0, tzinfo=UTC)
XML = {"content-type": "application/rss+xml"}


def _parse(
    body: bytes,
    headers: dict[str, str] | None = None,
    url: str = "https://example.org/feed.xml",
    fetched: datetime = FETCHED,
) -> list[Article]:
    return parse_feed(body, headers=XML if headers is None else headers, feed="sample", url=url, fetched=fetched)


def _rss(*items: str, channel: str = "") -> bytes:
    return (
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title>{channel}'
        + "".join(f"<item>{item}</item>" for item in items)
        + "</channel></rss>"
    ).encode()


def _as_json(article: Article) -> dict[str, Any]:
    data = asdict(article)
    data["published"] = article.published.isoformat() if article.published else None
    data["fetched"] = article.fetched.isoformat()
    return data


GOLDEN = sorted(DATA.rglob("*.json"))


@pytest.mark.parametrize("expected_path", GOLDEN, ids=[str(p.relative_to(DATA)) for p in GOLDEN])
def test_golden(expected_path: Path) -> None:
    """Each sample feed beside its expected result. The JSON was produced by this parser and checked by hand;
    when a change alters it on purpose, regenerate it the same way and review the diff."""
    expected = json.loads(expected_path.read_text(encoding="utf-8"))
    articles = parse_feed(
        expected_path.with_suffix(".xml").read_bytes(),
        headers=expected["headers"],
        feed="sample",
        url=expected["url"],
        fetched=datetime.fromisoformat(expected["fetched"]),
    )
    assert [_as_json(a) for a in articles] == expected["articles"]


def test_golden_files_are_present() -> None:
    assert len(GOLDEN) >= 6


# -- not a feed -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("body", [b"", b"   \n\t ", gzip.compress(b"")])
def test_empty_body_is_a_parse_error(body: bytes) -> None:
    with pytest.raises(ParseError, match="empty body") as info:
        _parse(body, url="https://example.org/empty.xml")
    assert info.value.url == "https://example.org/empty.xml"


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"<!doctype html><html><head><title>Home</title></head><body><p>Hello</p></body></html>", "text/html"),
        (b"<html><body>Not a feed</body></html>", "application/xml"),
        (b'{"version": "not a feed"}', "application/json"),
        (b"just some text", "text/plain"),
        (b"\x00\x01\x02binary", "application/octet-stream"),
    ],
)
def test_non_feed_bodies_are_parse_errors(body: bytes, content_type: str) -> None:
    with pytest.raises(ParseError, match="not a feed"):
        _parse(body, {"Content-Type": content_type})


def test_feedparser_never_reads_a_path(tmp_path: Path) -> None:
    # feedparser.parse(bytes) first tries the bytes as a file name; a body naming a local feed file must not
    # make us read that file.
    secret = tmp_path / "secret.xml"
    secret.write_bytes(_rss("<title>local secret</title>"))
    with pytest.raises(ParseError):
        _parse(str(secret).encode())


def test_feed_without_entries_is_empty_not_an_error() -> None:
    assert _parse(_rss()) == []


# -- malformed but usable ------------------------------------------------------------------------------------


def test_bozo_feed_with_entries_is_returned_and_logged() -> None:
    broken = b'<rss version="2.0"><channel><item><title>Strike & counter-strike</title></item></channel></rss'
    with capture_logs() as logs:
        articles = _parse(broken, url="https://example.org/broken.xml")
    assert [a.title for a in articles] == ["Strike & counter-strike"]
    assert logs == [
        {
            "event": "feed_malformed",
            "log_level": "warning",
            "feed": "sample",
            "url": "https://example.org/broken.xml",
            "entries": 1,
            "reason": logs[0]["reason"],
        }
    ]
    assert logs[0]["reason"]


def test_wrong_content_type_is_logged_at_info() -> None:
    with capture_logs() as logs:
        articles = _parse(_rss("<title>fine</title>"), {"Content-Type": "text/html"})
    assert [a.title for a in articles] == ["fine"]
    assert [(log["event"], log["log_level"]) for log in logs] == [("feed_malformed", "info")]


def test_well_formed_feed_logs_nothing() -> None:
    with capture_logs() as logs:
        _parse(_rss("<title>ok</title>"))
    assert logs == []


# -- entity declarations --------------------------------------------------------------------------------------


def _laughs(encoding: str = "utf-8") -> bytes:
    entities = "".join(
        f'<!ENTITY l{i} "&l{i - 1};&l{i - 1};&l{i - 1};&l{i - 1};&l{i - 1};&l{i - 1};&l{i - 1};'
        f'&l{i - 1};&l{i - 1};&l{i - 1};">'
        for i in range(1, 10)
    )
    doc = (
        f'<?xml version="1.0" encoding="{encoding}"?><!DOCTYPE rss [<!ENTITY l0 "lol">{entities}]>'
        '<rss version="2.0"><channel><item><title>Laughs &l9;</title></item></channel></rss>'
    )
    return doc.encode(encoding)


def _quadratic(prolog: str = '<?xml version="1.0"?>\n') -> bytes:
    # Declarations on their own lines, as feedparser's own DOCTYPE handling expects: it keeps this "safe"
    # text entity for its fallback parser, which would expand it to 200 MB.
    big = "A" * 100_000
    refs = "&big;" * 2_000
    return (
        f'{prolog}<!DOCTYPE rss [\n<!ENTITY big "{big}">\n]>\n<rss version="2.0"><channel>'
        f"<item><title>Quadratic</title><description>{refs}</description></item></channel></rss>"
    ).encode()


@pytest.mark.parametrize(
    "body",
    [_laughs(), _laughs("utf-16"), _quadratic(), _quadratic("stray text\n"), _quadratic("<!-- <b>x</b> -->\n")],
    ids=["billion-laughs", "billion-laughs-utf16", "quadratic-blowup", "after-stray-text", "after-comment"],
)
def test_entity_expansion_is_defused(body: bytes) -> None:
    started = time.monotonic()
    articles = _parse(body)
    assert time.monotonic() - started < 2
    assert len(articles) == 1
    assert "lollol" not in articles[0].title
    # What feedparser itself produced, before our length caps could hide an expansion.
    raw = feedparser.parse(
        io.BytesIO(strip_entity_declarations(body)), sanitize_html=False, resolve_relative_uris=False
    )
    assert len(raw.entries[0].get("summary", "")) < len(body)
    assert "lollol" not in raw.entries[0].get("title", "")


def test_strip_entity_declarations_keeps_everything_else() -> None:
    body = (
        b'<?xml version="1.0"?>\n<!-- c -->\n<!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN"'
        b' "http://my.netscape.com/publish/formats/rss-0.91.dtd" [\n'
        b'  <!ENTITY id "tag:example.com,">\n  <!ENTITY % ext SYSTEM "http://example.com/x.ent"> %ext;\n'
        b'  <!ELEMENT rss ANY>\n  <!ENTITY tricky "a > b">\n]>\n<rss version="0.91"/>'
    )
    stripped = strip_entity_declarations(body)
    assert b"<!ENTITY" not in stripped and b"%ext;" not in stripped
    assert stripped.startswith(b'<?xml version="1.0"?>\n<!-- c -->\n<!DOCTYPE rss PUBLIC "-//Netscape')
    assert b"<!ELEMENT rss ANY>" in stripped
    assert stripped.endswith(b']>\n<rss version="0.91"/>')


def test_strip_entity_declarations_leaves_documents_without_them_alone() -> None:
    body = _rss("<description><![CDATA[How <!ENTITY declarations work]]></description>")
    assert strip_entity_declarations(body) is body
    doctype_free = b'<rss version="2.0"><channel><item><title>&lt;!ENTITY x "y"&gt;</title></item></channel></rss>'
    assert strip_entity_declarations(doctype_free.replace(b"&lt;", b"<")) == doctype_free.replace(b"&lt;", b"<")


def test_malformed_internal_subset_with_entities_is_refused() -> None:
    body = b'<!DOCTYPE rss [<!ENTITY x "unterminated> ]><rss version="2.0"><channel/></rss>'
    with pytest.raises(ParseError, match="malformed DOCTYPE"):
        _parse(body)


def test_declared_entities_lose_their_text_but_the_feed_still_parses() -> None:
    body = (
        b'<!DOCTYPE rss [<!ENTITY id "tag:example.com,">]><rss version="2.0"><channel><item>'
        b"<guid>&id;2006-05-04:/blog/</guid><title>Entry</title></item></channel></rss>"
    )
    articles = _parse(body)
    assert [a.title for a in articles] == ["Entry"]
    assert articles[0].guid is not None and "tag:example.com," not in articles[0].guid


# -- encodings and compression -------------------------------------------------------------------------------


def test_charset_from_content_type_is_honoured() -> None:
    body = '<rss version="2.0"><channel><item><title>Удар по базе</title></item></channel></rss>'.encode("cp1251")
    articles = _parse(body, {"Content-Type": "application/rss+xml; charset=windows-1251"})
    assert [a.title for a in articles] == ["Удар по базе"]


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32"])
def test_wide_encodings(encoding: str) -> None:
    doc = (
        f'<?xml version="1.0" encoding="{encoding}"?><rss version="2.0"><channel>'
        "<item><title>ضربة أمريكية</title></item></channel></rss>"
    )
    assert [a.title for a in _parse(doc.encode(encoding), {})] == ["ضربة أمريكية"]


def test_gzip_body_without_content_encoding_is_inflated() -> None:
    assert [a.title for a in _parse(gzip.compress(_rss("<title>zipped</title>")))] == ["zipped"]


def test_gzip_bomb_body_is_refused() -> None:
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    bomb = packer.compress(bytes(64 * 1024 * 1024)) + packer.flush()
    with pytest.raises(ParseError, match="inflates past"):
        _parse(bomb)


def test_corrupt_gzip_body_is_refused() -> None:
    with pytest.raises(ParseError, match="corrupt gzip"):
        _parse(b"\x1f\x8b\x08\x00garbage")


# -- normalisation of entries ----------------------------------------------------------------------------------


def test_text_fields_are_plain_and_bounded() -> None:
    huge = "word " * 20_000
    body = _rss(
        f"<title>{'T' * 2_000}</title><description><![CDATA[<p>{huge}</p>]]></description>"
        f"<content:encoded xmlns:content='http://purl.org/rss/1.0/modules/content/'><![CDATA[{huge}"
        "]]></content:encoded>"
    )
    [article] = _parse(body)
    assert len(article.title) == TITLE_LIMIT
    assert len(article.content) <= CONTENT_LIMIT
    assert "<p>" not in article.summary


def test_dates() -> None:
    body = _rss(
        "<title>offset</title><pubDate>Sun, 07 Jan 2024 14:30:00 +0300</pubDate>",
        "<title>soon</title><pubDate>Wed, 10 Jan 2024 20:00:00 GMT</pubDate>",
        "<title>future</title><pubDate>Sat, 20 Jan 2024 00:00:00 GMT</pubDate>",
        "<title>garbage</title><pubDate>yesterday-ish</pubDate>",
        "<title>none</title>",
    )
    published = {a.title: a.published for a in _parse(body)}
    assert published == {
        "offset": datetime(2024, 1, 7, 11, 30, tzinfo=UTC),
        "soon": datetime(2024, 1, 10, 20, 0, tzinfo=UTC),  # within a day: a fast clock, kept
        "future": FETCHED,
        "garbage": None,
        "none": None,
    }


def test_updated_is_used_when_published_is_missing() -> None:
    body = (
        b'<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title><entry><title>a</title>'
        b"<updated>2024-01-09T11:15:00+01:00</updated></entry></feed>"
    )
    [article] = _parse(body, {"content-type": "application/atom+xml"})
    assert article.published == datetime(2024, 1, 9, 10, 15, tzinfo=UTC)


def test_naive_fetched_time_is_taken_as_utc() -> None:
    [article] = _parse(_rss("<title>x</title>"), fetched=datetime(2024, 1, 10, 12, 0))
    assert article.fetched == FETCHED


def test_links_are_absolute_canonical_and_web_only() -> None:
    body = _rss(
        "<title>relative</title><link>../world/a?utm_campaign=x&amp;id=1</link>",
        "<title>script</title><link>javascript:alert(document.cookie)</link>",
        "<title>data</title><link>data:text/html,hi</link>",
    )
    urls = {a.title: a.url for a in _parse(body, url="https://news.example.org/feeds/rss.xml")}
    assert urls == {"relative": "https://news.example.org/world/a?id=1", "script": "", "data": ""}


def test_same_story_in_two_feeds_gets_the_same_id() -> None:
    first = _rss("<title>A</title><guid>https://example.org/story?utm_source=one</guid>")
    second = _rss("<title>A (updated)</title><link>https://example.org/story?utm_source=two</link>")
    assert _parse(first)[0].id == _parse(second)[0].id


def test_language_from_headers_when_the_feed_has_none() -> None:
    [article] = _parse(_rss("<title>x</title>"), {"Content-Type": "application/rss+xml", "Content-Language": "DE"})
    assert article.language == "de"


def test_entries_are_capped_to_the_newest() -> None:
    start = datetime(2020, 1, 1, tzinfo=UTC)
    items = [
        f"<title>n{i}</title><pubDate>{(start + timedelta(hours=i)).strftime('%a, %d %b %Y %H:%M:%S GMT')}</pubDate>"
        for i in range(MAX_ENTRIES + 200)
    ]
    items.insert(0, "<title>undated</title>")
    articles = _parse(_rss(*items))
    assert len(articles) == MAX_ENTRIES
    titles = {a.title for a in articles}
    assert "n0" not in titles and "undated" not in titles and f"n{MAX_ENTRIES + 199}" in titles
    # Document order is kept among the survivors.
    assert [a.title for a in articles[:2]] == ["n200", "n201"]


async def test_parse_feed_async_matches_sync() -> None:
    body = (DATA / "wire-rss2.xml").read_bytes()
    expected = _parse(body, url="https://wire.example.org/world/rss.xml")
    assert (
        await parse_feed_async(
            body, headers=XML, feed="sample", url="https://wire.example.org/world/rss.xml", fetched=FETCHED
        )
        == expected
    )


async def test_parse_feed_async_raises_parse_error() -> None:
    with pytest.raises(ParseError):
        await parse_feed_async(b"", headers={}, feed="sample", url="https://example.org/", fetched=FETCHED)
