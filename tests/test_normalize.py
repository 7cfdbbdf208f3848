import re
from pathlib import Path

import pytest

from monitor.parsing.clean import article_id, canonical_url, clean_text, html_to_text


@pytest.mark.parametrize(
    ("markup", "text"),
    [
        ("<p>US strike</p><p>near Baghdad</p>", "US strike near Baghdad"),
        ("<b>W</b>ashington", "Washington"),
        ("a<br>b<br/>c", "a b c"),
        ("<div>x<script>alert('no')</script><style>p{color:red}</style>y</div>", "x y"),
        ("<p>Embassy &amp; consulate&nbsp;closed &#8211; &quot;now&quot;</p>", 'Embassy & consulate closed – "now"'),
        ("plain &lt;text&gt; &amp; entities", "plain <text> & entities"),
        ("x < y and z > 1", "x < y and z > 1"),
        ("<html><head><title>Page</title></head><body><h1>Head</h1>\n\n<p>Body</p></body></html>", "Head Body"),
        ("<ul><li>one</li><li>two</li></ul>", "one two"),
        ("unclosed <b>bold <i>text", "unclosed bold text"),
        ("", ""),
    ],
)
def test_html_to_text(markup: str, text: str) -> None:
    assert html_to_text(markup) == text


@pytest.mark.parametrize(
    ("raw", "limit", "clean"),
    [
        ("Rockets hit\r\nbase", 100, "Rockets hit base"),
        ("  tabs\tand\u00a0nbsp  ", 100, "tabs and nbsp"),
        ("nul\x00 and bell\x07 and \x85next", 100, "nul and bell and next"),
        ("spoof \u202egnp.exe\u202c here", 100, "spoof gnp.exe here"),
        ("\ufeffBOM", 100, "BOM"),
        ("lone \ud800 surrogate", 100, "lone surrogate"),
        ("می\u200cخواهم", 100, "می\u200cخواهم"),  # ZWNJ is part of Persian spelling
        ("abcdef ghij", 6, "abcdef"),
        ("abc def", 4, "abc"),
        ("e\u0301", 10, "é"),  # NFC
    ],
)
def test_clean_text(raw: str, limit: int, clean: str) -> None:
    assert clean_text(raw, limit) == clean


@pytest.mark.parametrize(
    ("url", "canonical"),
    [
        ("HTTP://News.Example.COM/World/Story?b=2&a=1#comments", "http://news.example.com/World/Story?a=1&b=2"),
        ("https://example.com/a?utm_source=rss&utm_medium=feed&id=7", "https://example.com/a?id=7"),
        ("https://example.com/a?UTM_Campaign=x&fbclid=1&gclid=2&ocid=3&cmpid=4&CMP=5", "https://example.com/a"),
        ("https://example.com:443/a", "https://example.com/a"),
        ("http://example.com:80/a", "http://example.com/a"),
        ("https://example.com:8443/a", "https://example.com:8443/a"),
        ("https://example.com", "https://example.com/"),
        ("https://user:secret@example.com/a", "https://example.com/a"),
        ("https://example.com./a", "https://example.com/a"),
        ("https://münchen.de/ä", "https://xn--mnchen-3ya.de/%C3%A4"),
        ("http://[2001:db8::1]:8080/x", "http://[2001:db8::1]:8080/x"),
        ("  https://example.com/a  ", "https://example.com/a"),
        ("tag:example.com,2024:story-1", "tag:example.com,2024:story-1"),
        ("http://[::1", "http://[::1"),
        ("", ""),
    ],
)
def test_canonical_url(url: str, canonical: str) -> None:
    assert canonical_url(url) == canonical


def test_canonical_url_is_idempotent() -> None:
    once = canonical_url("HTTPS://Example.com/a b?q=ü&utm_term=x")
    assert canonical_url(once) == once


def test_article_id_prefers_a_distinctive_guid() -> None:
    guid = "urn:uuid:1225c695-cfb8-4ebb-aaaa-80da344efa6a"
    first = article_id(guid, "https://example.com/a", "Title", "text")
    assert first.startswith("g:") and len(first) == 26
    # The same GUID under another URL or title is the same article (an edited headline, a moved page).
    assert article_id(guid, "https://example.com/b", "Edited", "other") == first


def test_article_id_treats_url_guids_as_urls() -> None:
    via_guid = article_id("https://example.com/story?utm_source=rss", None, "T", "")
    via_link = article_id(None, "https://EXAMPLE.com/story#top", "Other title", "")
    assert via_guid == via_link
    assert via_guid.startswith("u:")


def test_article_id_does_not_trust_short_guids_across_feeds() -> None:
    # "123" in two different feeds is two different articles.
    assert article_id("123", "https://a.example/x", "T", "") != article_id("123", "https://b.example/y", "T", "")
    assert article_id("123", None, "One story", "") != article_id("123", None, "Another", "")
    assert article_id("123", None, "One story", "").startswith("g:")


def test_article_id_falls_back_to_normalised_text() -> None:
    first = article_id(None, None, "US  Strike\nin Iraq", "Body text")
    assert first.startswith("t:")
    assert article_id("", "  ", "us strike in iraq", "body   text") == first
    assert article_id(None, None, "US strike in Syria", "Body text") != first


_EDGE_URLS = [
    "https://example.com",
    "https://example.com/",
    "http://example.com/a/b/",
    "https://Example.com/a",
    "HTTPS://example.com/a",
    "https://example.com./a",
    "https://example.com:443/a",
    "https://example.com:8443/a",
    "https://user:pw@example.com/a",
    "https://example.com/a?b=1",
    "https://example.com/a#top",
    "https://example.com/a/./b",
    "https://example.com/a/../b",
    "https://example.com/.well-known/x",
    "https://example.com/a//b",
    "https://example.com/a%2Fb",
    "https://example.com/a;p=1",
    "https://example.com/caf\u00e9",
    "https://xn--caf-dma.example/a",
    "https://xn--zz.example/a",
    "https://b\u00fccher.example/a",
    "https://-bad.example/a",
    "https://a-.example/a",
    "https://" + "a" * 64 + ".example/a",
    "https://127.0.0.1/a",
    "https://[::1]/a",
    "https://example.com/a b",
    "https://example.com/~user/page.html",
    "https://example.com/a_b-c.d~e/",
    "ftp://example.com/a",
    "mailto:someone@example.com",
    "https:/example.com/a",
    "https//example.com/a",
    "  https://example.com/a  ",
]


def _urls_of_the_corpus(corpus: Path) -> list[str]:
    found: set[str] = set()
    pattern = re.compile(rb"""(?:href=["']|<link>|<guid[^>]*>|<id>)\s*([^"'<\s]{1,300})""")
    for path in sorted((corpus / "feeds").rglob("*")):
        if path.is_file():
            found.update(m.group(1).decode("utf-8", "replace") for m in pattern.finditer(path.read_bytes()))
    return sorted(found)


def test_canonical_url_shortcut_gives_what_w3lib_gives(corpus: Path) -> None:
    """``canonical_url`` hands a URL already in its canonical spelling back without w3lib, and ``_entry_url`` joins
    it with nothing: both must give what the full path gives, for every link of the corpus and the edge cases."""
    from urllib.parse import urljoin

    from monitor.parsing.clean import _canonical_url, plain_url

    urls = _urls_of_the_corpus(corpus) + _EDGE_URLS
    plain = [url.strip() for url in urls if plain_url(url.strip())]
    assert len(plain) > 1000  # the shortcut is taken by most real links, so this compares a real share of them
    for url in urls:
        assert canonical_url(url) == _canonical_url(url.strip()), url
    for url in plain:
        for base in ("https://example.org/feed.xml", "http://example.org/", "https://sub.example.com/a/b?c=d"):
            assert urljoin(base, url) == url, (base, url)
