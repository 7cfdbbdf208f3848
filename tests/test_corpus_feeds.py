"""Every feed file of the shared corpus goes through parse -> normalise without an unhandled exception.

The corpus (about 2,300 files) is feedparser's own synthetic test cases plus 199 real captured feeds; see
``../shared/corpus/LICENSES.md``. ``ParseError`` is an allowed outcome for files that are not feeds.
"""

from __future__ import annotations

import csv
import re
from datetime import UTC, datetime
from pathlib import Path

from structlog.testing import capture_logs

from monitor.core.errors import ParseError
from monitor.core.models import Article
from monitor.parsing.feed import CONTENT_LIMIT, MAX_ENTRIES, SUMMARY_LIMIT, TITLE_LIMIT, parse_feed

FETCHED = datetime(2026, 1, 1, tzinfo=UTC)
# feedparser's encoding cases give the HTTP headers they need in a comment, e.g. "Header: Content-type: ...".
_HEADER = re.compile(rb"^Header:\s*([\w-]+):\s*(.*?)\s*$", re.MULTILINE)


def _headers(body: bytes) -> dict[str, str]:
    return {name.decode().lower(): value.decode("latin-1") for name, value in _HEADER.findall(body[:2048])}


def _check(article: Article) -> list[str]:
    problems = []
    if len(article.title) > TITLE_LIMIT or len(article.summary) > SUMMARY_LIMIT or len(article.content) > CONTENT_LIMIT:
        problems.append("text over its limit")
    if article.url and not article.url.startswith(("http://", "https://")):
        problems.append(f"non-web url {article.url!r}")
    if article.published is not None and (
        article.published.utcoffset() != UTC.utcoffset(None) or article.published > FETCHED
    ):
        problems.append(f"bad published {article.published!r}")
    if not (article.title or article.summary or article.content or article.url):
        problems.append("empty article")
    if any(c in article.title for c in "\r\n\x00"):
        problems.append("control characters in title")
    if not re.fullmatch(r"[gut]:[0-9a-f]{24}", article.id):
        problems.append(f"bad id {article.id!r}")
    return problems


def _feed_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.name not in ("LICENSE", "MANIFEST.tsv"))


def test_every_corpus_file_parses_or_is_refused_cleanly(corpus: Path) -> None:
    files = _feed_files(corpus / "feeds")
    assert len(files) > 2_000
    with_entries, refused = 0, []
    failures: list[str] = []
    with capture_logs():  # hundreds of feed_malformed warnings are expected here
        for path in files:
            body = path.read_bytes()
            try:
                articles = parse_feed(
                    body, headers=_headers(body), feed="corpus", url="https://example.org/feed", fetched=FETCHED
                )
            except ParseError:
                refused.append(path.name)
                continue
            except Exception as exc:  # the point of this test: report every crash, not only the first
                failures.append(f"{path.relative_to(corpus)}: {exc!r}")
                continue
            with_entries += bool(articles)
            failures.extend(f"{path.relative_to(corpus)}: {problem}" for a in articles for problem in _check(a))
    assert failures == []
    # Nearly every file is read as a feed. Only about a third yield articles: most of feedparser's cases test
    # channel-level elements, or entries holding only an author, a category or an enclosure (no text, no link).
    assert len(refused) < 0.01 * len(files), refused
    assert with_entries > 0.3 * len(files)


def test_real_world_feeds_yield_their_entries(corpus: Path) -> None:
    """The 199 captured feeds: none is refused, and each yields as many entries as feedparser finds (minus
    entries with no text and no link at all, which we drop)."""
    feeds = corpus / "feeds"
    rows = list(csv.DictReader((feeds / "MANIFEST.tsv").read_text(encoding="utf-8").splitlines(), delimiter="\t"))
    assert len(rows) > 150
    short: list[str] = []
    expected_total = found_total = 0
    with capture_logs():
        for row in rows:
            articles = parse_feed(
                (feeds / row["group"] / row["file"]).read_bytes(),
                headers={},
                feed=row["group"],
                url="https://example.org/feed",
                fetched=FETCHED,
            )
            expected = min(int(row["fp_entries"]), MAX_ENTRIES)
            expected_total += expected
            found_total += len(articles)
            if expected and not articles:
                short.append(f"{row['group']}/{row['file']}: 0 of {expected}")
    assert short == []
    assert found_total >= 0.99 * expected_total
