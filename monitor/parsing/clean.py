"""Pure text and URL helpers that turn feed fields into the plain, bounded values an ``Article`` holds."""

from __future__ import annotations

import hashlib
import html
import re
import unicodedata
from urllib.parse import unquote_plus, urljoin, urlsplit, urlunsplit

# selectolax and w3lib are imported where they are used: ``monitor scan`` of plain-text headlines needs neither, and
# w3lib brings urllib.request, http.client and ssl with it.

__all__ = ["article_id", "canonical_url", "clean_text", "html_to_text", "joined_url", "plain_url"]

# Tags whose text is never reader-visible prose.
_INVISIBLE = ["script", "style", "noscript", "template", "head", "iframe", "object", "svg", "math"]
# Block-level tags, and the invisible ones (which usually sit between blocks): a space goes in front of each so
# "<p>a</p><p>b</p>" reads "a b", not "ab", while inline tags ("<b>W</b>ashington") stay glued. A regex on the
# source is far cheaper than editing the parsed tree.
_BLOCK_TAG = re.compile(
    r"<(/?)(p|div|br|hr|li|ul|ol|dl|dt|dd|h[1-6]|tr|td|th|table|thead|tbody|blockquote|pre|section|article"
    r"|aside|header|footer|figure|figcaption|address|nav|main|details|summary|script|style|noscript|iframe)\b",
    re.IGNORECASE,
)
_WHITESPACE = re.compile(r"\s+")


def _control_table() -> dict[int, str | None]:
    table: dict[int, str | None] = {}
    for code in [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0)]:
        table[code] = None
    for code in (0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x85):
        table[code] = " "
    # Bidi embeddings/overrides and isolates can make an alert title display as something it does not say;
    # the marks LRM/RLM and the joiners ZWJ/ZWNJ (needed in Persian and Arabic) are kept.
    for code in [*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0xFEFF, 0xFFFE, 0xFFFF]:
        table[code] = None
    return table


_CONTROLS = _control_table()
_SURROGATES = re.compile(r"[\ud800-\udfff]")
# The ASCII controls the table deletes (the whitespace ones, 0x09-0x0D, are collapsed below instead).
_ASCII_CONTROLS = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")


def clean_text(text: str, limit: int) -> str:
    """``text`` on one line: control and bidi-override characters removed, whitespace runs (CR/LF included)
    collapsed to one space, NFC-normalised, stripped and cut to at most ``limit`` characters."""
    if text.isascii():  # most feed text: no bidi controls, surrogates or composed forms to care about
        if not text.isprintable():
            text = _ASCII_CONTROLS.sub("", text)
        text = " ".join(text.split())  # what ``_WHITESPACE.sub(" ", text).strip()`` gives (same whitespace)
        return text[:limit].rstrip() if len(text) > limit else text
    text = _SURROGATES.sub("", text.translate(_CONTROLS))
    text = _WHITESPACE.sub(" ", unicodedata.normalize("NFC", text)).strip()
    return text[:limit].rstrip() if len(text) > limit else text


def html_to_text(markup: str) -> str:
    """The reader-visible text of an HTML fragment or page: scripts and styles dropped, entities decoded,
    whitespace collapsed."""
    if "<" not in markup:
        # Most titles are plain text; the parser would only decode entities, so skip it.
        return " ".join(html.unescape(markup).split())
    from selectolax.lexbor import LexborHTMLParser

    tree = LexborHTMLParser(_BLOCK_TAG.sub(r" <\1\2", markup))
    tree.strip_tags(_INVISIBLE)
    root = tree.body or tree.root
    text = root.text(deep=True, separator="") if root is not None else ""
    return _WHITESPACE.sub(" ", text).strip()


# Query parameters that identify a campaign or a click, not the document. Matched case-insensitively.
_TRACKING = frozenset(
    {
        "fbclid",
        "gclid",
        "gclsrc",
        "dclid",
        "gbraid",
        "wbraid",
        "msclkid",
        "yclid",
        "twclid",
        "ttclid",
        "igshid",
        "mc_cid",
        "mc_eid",
        "ocid",
        "cmpid",
        "cmp",
        "icid",
        "smid",
        "smtyp",
        "xtor",
        "at_medium",
        "at_campaign",
        "at_custom1",
        "at_custom2",
        "at_custom3",
        "at_custom4",
        "ns_mchannel",
        "ns_source",
        "ns_campaign",
        "ns_linkname",
        "ns_fee",
        "_ga",
        "_gl",
        "_hsenc",
        "_hsmi",
        "mkt_tok",
        "spm",
        "ref_src",
        "ref_url",
        "__twitter_impression",
        "wt.mc_id",
        "wt_mc",
        "s_cid",
        "mbid",
        "taid",
        "soc_src",
        "soc_trk",
    }
)
_TRACKING_PREFIXES = ("utm_", "pk_", "mtm_", "hsa_", "itm_")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _is_tracking(pair: str) -> bool:
    name = unquote_plus(pair.split("=", 1)[0]).lower()
    return name in _TRACKING or name.startswith(_TRACKING_PREFIXES)


# An http(s) URL already in its canonical spelling: lower-case host name of plain labels (no IDNA), no port,
# credentials, query or fragment, a path of unreserved characters only, none of its segments starting with a dot.
# Most feeds' links are such URLs; w3lib would hand them back unchanged, at a quarter of a feed's parsing time.
_PLAIN_URL = re.compile(
    r"https?://(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:/[A-Za-z0-9_~-][A-Za-z0-9._~-]*)*/?"
)


def plain_url(url: str) -> bool:
    """Whether ``url`` is an absolute http(s) URL already in its canonical spelling (a trailing "/" aside when the
    path is empty): ``urljoin`` and ``canonical_url`` would give it back as it is."""
    return len(url) <= 2000 and _PLAIN_URL.fullmatch(url) is not None and "xn--" not in url


def canonical_url(url: str) -> str:
    """One spelling per http(s) document: lower-case scheme and host, no default port, no fragment, no tracking
    parameters, remaining query sorted and percent-encoded consistently. Other URLs come back stripped."""
    url = url.strip()
    if plain_url(url):
        return _with_path(url)
    return _canonical_url(url)


def joined_url(base: str, link: str) -> str:
    """``canonical_url`` of ``link`` resolved against ``base``; an absolute link in its canonical spelling already
    (most are) is its own join."""
    link = link.strip()
    return _with_path(link) if plain_url(link) else canonical_url(urljoin(base, link))


def _with_path(url: str) -> str:
    """A canonical URL with an empty path gets its root "/" (``plain_url`` URLs only)."""
    return url if url.find("/", 8) >= 0 else url + "/"


def _canonical_url(url: str) -> str:
    """``canonical_url`` by w3lib, for any URL."""
    from w3lib.url import canonicalize_url

    try:
        if urlsplit(url).scheme.lower() not in _DEFAULT_PORTS:
            return url
        parts = urlsplit(canonicalize_url(url, keep_fragments=False))
        port = parts.port
    except ValueError:
        return url
    # Rebuilt from the host name alone: credentials never identify a document and must not reach an alert.
    host = (parts.hostname or "").rstrip(".")
    if ":" in host:
        host = f"[{host}]"
    if port is not None and port != _DEFAULT_PORTS[parts.scheme]:
        host = f"{host}:{port}"
    query = "&".join(pair for pair in parts.query.split("&") if pair and not _is_tracking(pair))
    return urlunsplit((parts.scheme, host, parts.path or "/", query, ""))


_ID_HEX = 24


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8", "surrogatepass"), usedforsecurity=False).hexdigest()[:_ID_HEX]


def _fingerprint_text(text: str) -> str:
    return _WHITESPACE.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def article_id(guid: str | None, url: str | None, title: str, text: str, *, url_is_canonical: bool = False) -> str:
    """A stable identity for dedup: ``g:`` + hash of the GUID, ``u:`` + hash of the canonical URL, or ``t:`` +
    hash of the normalised title and text, whichever is available first.

    A GUID that is itself an http(s) URL is treated as the URL, so the same article reached through a
    permalink GUID in one feed and a plain link in another gets one id. A short GUID ("123") is only unique
    inside its own feed, so it gives way to the URL when there is one and is tied to the title when not.
    ``url_is_canonical`` spares canonicalising a URL that came from ``canonical_url`` already.
    """
    guid = (guid or "").strip()
    if guid.lower().startswith(("http://", "https://")):
        return "u:" + _digest(canonical_url(guid))
    if len(guid) >= 12:
        return "g:" + _digest(guid)
    if url and url.strip():
        return "u:" + _digest(url if url_is_canonical else canonical_url(url))
    if guid:
        return "g:" + _digest(guid + "\n" + _fingerprint_text(title))
    return "t:" + _digest(_fingerprint_text(title) + "\n" + _fingerprint_text(text))
