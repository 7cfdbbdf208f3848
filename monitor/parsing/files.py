"""Offline reading for ``monitor scan`` and ``monitor rules test``: files and folders into ``Article``s.

Formats: ``.txt`` (first line is the title, the rest is the body), ``.html``/``.htm``, ``.json`` (an object or
a list of objects), ``.jsonl`` (one object a line; ``.gz`` compressed files too) and ``.xml``/``.rss``/``.atom``
feeds. JSON objects carry ``id``, ``title``, ``summary``, ``content``, ``url``, ``published`` (any missing);
the headline-corpus spellings ``headline``, ``short_description``, ``link`` and ``date`` are read too.
"""

from __future__ import annotations

import gzip
import json
import re
import unicodedata
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

from monitor.core.errors import MonitorError, ParseError
from monitor.core.models import Article
from monitor.parsing.clean import clean_text, html_to_text

__all__ = [
    "SUFFIXES",
    "Document",
    "article_files",
    "article_from_object",
    "file_contents",
    "file_documents",
    "json_line_documents",
    "read_articles",
    "read_documents",
]

SUFFIXES = (".txt", ".html", ".htm", ".json", ".jsonl", ".xml", ".rss", ".atom")
TITLE_LIMIT = 500
TEXT_LIMIT = 200_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DECODER = json.JSONDecoder()  # ``json.loads`` without its per-call checks
# Saved web pages end in link lists ("Related", other stories' headlines), share buttons and subscription
# prompts; another story's headline there must not make this page an alert. Trailing lines that read like links
# (short, no sentence ending) or like page furniture are dropped, up to the last line of prose.
_LINK_LINE_WORDS = 14
_FURNITURE = re.compile(
    r"^(related( (articles|stories|coverage|content|news))?|read more|more (stories|from|on this|news)\b.*|"
    r"recommended( for you)?|you (may|might) also like|most (read|popular|viewed)|trending|latest( news)?|"
    r"(send|share) this( to a friend)?|share|subscribe\b.*|sign up\b.*|advertisement|next article|"
    r"previous article|see also|also read|top stories|popular)\W*$",
    re.IGNORECASE,
)
# The same furniture in HTML, removed before the page is turned into text.
_HTML_FURNITURE = (
    "nav",
    "footer",
    "aside",
    "header",
    "form",
    "[class*=related]",
    "[class*=recommend]",
    "[class*=newsletter]",
    "[class*=share]",
    "[id*=related]",
    "[class*=cookie]",
    "[id*=cookie]",
)


def _published(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _field(obj: dict[str, Any], *names: str) -> str:
    for name in names:
        value = obj.get(name)
        if value:
            return str(value)
    return ""


def strip_page_furniture(text: str) -> str:
    """``text`` without its trailing link list and page furniture (see ``_FURNITURE``)."""
    lines = text.rstrip().splitlines()
    end = len(lines)
    while end > 0:
        line = lines[end - 1].strip()
        if not line or _FURNITURE.match(line):
            end -= 1
            continue
        if len(line.split()) <= _LINK_LINE_WORDS and not line.endswith((".", "!", "?", '"', "\u201d", ":")):
            end -= 1  # a headline-like line: a link to another story
            continue
        break
    # Keep everything when the whole text looks like a list: it is then the content itself, not a footer.
    return "\n".join(lines[:end]) if end else text


class Document(NamedTuple):
    """What ``monitor scan`` needs of one article: its identity and the three texts the matcher reads. Cheaper to
    build than an ``Article`` (no date to parse), so a scan of millions of headlines builds no ``Article``."""

    id: str
    url: str
    title: str
    summary: str
    content: str


def _text(value: Any) -> str:
    """A JSON value as ``_field`` gives it: a string as it is, another true value as ``str`` writes it, else ``""``."""
    return value if type(value) is str else str(value) if value else ""


def _title(text: str) -> str:
    """``clean_text(html_to_text(text), TITLE_LIMIT)``, without their steps for markup, entities, controls and
    composed forms when the title has none (most have none). A printable line holds none of the characters that
    ``clean_text`` deletes, and no whitespace but the space."""
    if "<" not in text and "&" not in text:
        line = " ".join(text.split())
        if line.isprintable() and (line.isascii() or unicodedata.is_normalized("NFC", line)):
            return line[:TITLE_LIMIT].rstrip() if len(line) > TITLE_LIMIT else line
    return clean_text(html_to_text(text), TITLE_LIMIT)


def _document(obj: dict[str, Any], fallback_id: str | None, name: str = "", number: int = 0) -> Document:
    """The ``Document`` of one JSON object (HTML in text fields is reduced to text); an object without an id gets
    ``fallback_id``, or else ``name:number``. The fields are ``_field``'s, read without its loop."""
    get = obj.get
    content = _text(get("content") or get("text") or get("body"))
    return Document(
        _text(get("id")) or (f"{name}:{number}" if fallback_id is None else fallback_id),
        _text(get("url") or get("link")).strip(),  # as given: scan reports on documents, it does not deduplicate them
        _title(_text(get("title") or get("headline"))),
        html_to_text(_text(get("summary") or get("short_description") or get("description")))[:TEXT_LIMIT],
        strip_page_furniture(html_to_text(content))[:TEXT_LIMIT] if content else "",
    )


def article_from_object(obj: dict[str, Any], *, source: str, fallback_id: str) -> Article:
    """An ``Article`` from one JSON object (HTML in text fields is reduced to text)."""
    doc = _document(obj, fallback_id)
    return Article(
        id=doc.id,
        feed=source,
        url=doc.url,
        guid=doc.id,
        title=doc.title,
        summary=doc.summary,
        content=doc.content,
        published=_published(_field(obj, "published", "date")),
        fetched=_EPOCH,
    )


def _text_article(path: Path, text: str) -> Article:
    title, _, body = text.lstrip("\ufeff").partition("\n")
    return Article(
        id=path.stem,
        feed=path.parent.name,
        url="",
        guid=None,
        title=clean_text(title, TITLE_LIMIT),
        summary="",
        content=strip_page_furniture(body.strip())[:TEXT_LIMIT],
        published=None,
        fetched=_EPOCH,
    )


def _html_article(path: Path, markup: str) -> Article:
    from selectolax.lexbor import LexborHTMLParser

    tree = LexborHTMLParser(markup)
    heading = tree.css_first("title") or tree.css_first("h1")
    title = clean_text(heading.text() if heading is not None else "", TITLE_LIMIT)
    for selector in _HTML_FURNITURE:
        for node in tree.css(selector):
            node.decompose()
    body = tree.body.html if tree.body is not None else markup
    return Article(
        id=path.stem,
        feed=path.parent.name,
        url="",
        guid=None,
        title=title,
        summary="",
        content=html_to_text(body or "")[:TEXT_LIMIT],
        published=None,
        fetched=_EPOCH,
    )


def _json_lines(path: Path, lines: list[str], first: int = 1) -> Iterator[tuple[dict[str, Any], str]]:
    """The objects of ``lines`` of a ``.jsonl`` file, the first of them its line ``first``, each with the id an
    object without one gets; blank lines are skipped."""
    decode = _DECODER.decode
    for number, line in enumerate(lines, start=first):
        obj = _json_object(decode, line, path, number)
        if obj is not None:
            yield obj, f"{path.name}:{number}"


def _json_object(decode: Callable[[str], Any], line: str, path: Path, number: int) -> dict[str, Any] | None:
    """The JSON object on line ``number`` of ``path`` (None for a blank line); anything else is an error naming the
    line."""
    try:
        obj = decode(line)
    except json.JSONDecodeError:
        if not line.strip():
            return None
        raise MonitorError(f"{path}:{number}: not valid JSON: {_json_error(line)}") from None
    if type(obj) is not dict:
        raise MonitorError(f"{path}:{number}: expected a JSON object")
    return obj


def _json_error(line: str) -> str:
    """What ``json.loads`` says is wrong with ``line`` (it also refuses a byte-order mark, which ``decode`` reads as
    a bad value)."""
    try:
        json.loads(line)
    except json.JSONDecodeError as exc:
        return exc.msg
    return "Expecting value"


def _json_objects(path: Path, raw: bytes, suffix: str) -> Iterator[tuple[dict[str, Any], str]]:
    """The objects of a ``.jsonl`` or ``.json`` file, each with the id an object without one gets."""
    if suffix == ".jsonl":
        yield from _json_lines(path, raw.decode("utf-8-sig").splitlines())
        return
    try:
        data = json.loads(raw.decode("utf-8-sig"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MonitorError(f"{path}: not valid JSON: {exc}") from exc
    items = data if isinstance(data, list) else [data]
    for i, obj in enumerate(items):
        if not isinstance(obj, dict):
            raise MonitorError(f"{path}: item {i} is not a JSON object")
        yield obj, f"{path.name}:{i}"


def _contents(path: Path) -> tuple[bytes, str]:
    """The file's bytes (inflated when gzipped) and the suffix that tells its format."""
    raw = path.read_bytes()
    suffix = path.suffix.lower()
    if suffix == ".gz":
        raw = gzip.decompress(raw)
        suffix = Path(path.stem).suffix.lower()
    return raw, suffix


def _read_file(path: Path, raw: bytes, suffix: str) -> Iterator[Article]:
    if suffix in (".jsonl", ".json"):
        for obj, fallback_id in _json_objects(path, raw, suffix):
            yield article_from_object(obj, source=path.stem, fallback_id=fallback_id)
    elif suffix in (".xml", ".rss", ".atom"):
        from monitor.parsing.feed import parse_feed  # feedparser costs its import only to commands reading feeds

        try:
            yield from parse_feed(
                raw, headers={}, feed=path.stem, url=path.resolve().as_uri(), fetched=datetime.now(UTC)
            )
        except ParseError as exc:
            raise MonitorError(f"{path}: {exc.reason}") from exc
    elif suffix in (".html", ".htm"):
        yield _html_article(path, raw.decode("utf-8", "replace"))
    else:
        yield _text_article(path, raw.decode("utf-8", "replace"))


def _files(path: Path) -> Iterator[Path]:
    if path.is_dir():
        for child in sorted(path.rglob("*")):
            name = child.name.lower().removesuffix(".gz")
            if child.is_file() and name.endswith(SUFFIXES):
                yield child
    elif path.is_file():
        yield path
    else:
        raise MonitorError(f"{path}: no such file or folder")


def read_articles(paths: list[Path]) -> Iterator[Article]:
    """Every article in ``paths`` (folders recursively), in order; raises ``MonitorError`` naming the file."""
    for path in paths:
        for file in _files(path):
            try:
                yield from _read_file(file, *_contents(file))
            except OSError as exc:
                raise MonitorError(f"{file}: cannot read: {exc.strerror or exc}") from exc


def article_files(paths: list[Path]) -> Iterator[Path]:
    """The files ``read_articles`` reads from ``paths`` (folders recursively), in order."""
    for path in paths:
        yield from _files(path)


def file_contents(path: Path) -> tuple[bytes, str]:
    """The bytes of an article file (inflated when gzipped) and the suffix that tells its format."""
    try:
        return _contents(path)
    except OSError as exc:
        raise MonitorError(f"{path}: cannot read: {exc.strerror or exc}") from exc


def json_line_documents(path: Path, lines: list[str], first: int = 1) -> Iterator[Document]:
    """The ``Document``s of some lines of a ``.jsonl`` file, the first of them its line ``first`` (which names
    errors and the ids of objects without one): a part of a big file can be read apart from the rest. A line whose
    fields msgspec reads (``jsonfields``) is not decoded again; any other is read by the standard library."""
    from monitor.parsing.jsonfields import decode_fields  # msgspec costs its import only to commands reading lines

    decode, name, new = _DECODER.decode, path.name, tuple.__new__  # ``Document(...)`` without its Python call
    for number, line in enumerate(lines, start=first):
        fields = decode_fields(line)
        if fields is not None:
            summary = fields.summary or fields.short_description or fields.description or ""
            content = fields.content or fields.text or fields.body or ""
            yield new(
                Document,
                (
                    fields.id or f"{name}:{number}",
                    (fields.url or fields.link or "").strip(),
                    _title(fields.title or fields.headline or ""),
                    # ``html_to_text`` of a summary without markup or entities, without its calls
                    " ".join(summary.split())[:TEXT_LIMIT]
                    if "<" not in summary and "&" not in summary
                    else html_to_text(summary)[:TEXT_LIMIT],
                    strip_page_furniture(html_to_text(content))[:TEXT_LIMIT] if content else "",
                ),
            )
            continue
        obj = _json_object(decode, line, path, number)
        if obj is not None:
            yield _document(obj, None, name, number)


def file_documents(path: Path, raw: bytes, suffix: str) -> Iterator[Document]:
    """The ``Document``s of one file, from its ``file_contents``."""
    if suffix == ".jsonl":
        yield from json_line_documents(path, raw.decode("utf-8-sig").splitlines())
    elif suffix == ".json":
        for obj, fallback_id in _json_objects(path, raw, suffix):
            yield _document(obj, fallback_id)
    else:
        for a in _read_file(path, raw, suffix):
            yield Document(a.id, a.url, a.title, a.summary, a.content)


def read_documents(paths: list[Path]) -> Iterator[Document]:
    """``read_articles`` for ``monitor scan``: the same articles, in the same order and with the same errors, as
    ``Document``s; JSON objects never become ``Article``s."""
    for file in article_files(paths):
        yield from file_documents(file, *file_contents(file))
