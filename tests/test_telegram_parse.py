"""Telegram channel previews -> articles (``monitor.parsing.telegram``), on pages written for the project."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from monitor.core.errors import ParseError
from monitor.parsing.pool import ParserPool
from monitor.parsing.telegram import (
    TITLE_MAX,
    ChannelPage,
    channel_page_url,
    headline,
    parse_channel_page,
    post_url,
)
from tests.support.tgchannel import ARABIC_CLAIM, PERSIAN_STATEMENT, Channel, Post, page, sample_posts

NAME = "sabereen_test"
FETCHED = datetime(2024, 1, 28, 8, 0, tzinfo=UTC)
HTML = {"content-type": "text/html; charset=utf-8"}


def parse(body: bytes, channel: str = NAME) -> ChannelPage:
    return parse_channel_page(body, headers=HTML, feed="tg", channel=channel, url="https://t.me/s/x", fetched=FETCHED)


def test_each_readable_post_becomes_an_article_with_its_link_date_and_text() -> None:
    result = parse(Channel(NAME, sample_posts()).render())
    assert [p.id for p in result.posts] == [100, 101, 103, 106]  # 102 service, 104 deleted, 105 photo only
    assert result.newest_id == 106 and not result.more_after
    claim = result.posts[0].article
    assert claim.url == claim.guid == "https://t.me/sabereen_test/100"
    assert claim.published == datetime(2024, 1, 28, 6, 0, tzinfo=UTC)
    assert claim.title == "عاجل | المقاومة الإسلامية في العراق"
    # Line breaks become spaces, the emoji (an <i> around the character) stays as text.
    assert claim.summary == ARABIC_CLAIM.replace("\n", " ")
    assert claim.feed == "tg" and claim.fetched == FETCHED and claim.content == ""
    assert claim.id.startswith("u:")


def test_persian_keeps_its_zero_width_non_joiner_and_letters() -> None:
    statement = parse(Channel(NAME, sample_posts()).render()).posts[1].article
    assert statement.summary == PERSIAN_STATEMENT.replace("\n", " ")
    assert "بی\u200cپاسخ" in statement.summary and "ی" in statement.title


def test_a_photo_caption_is_the_text_and_a_quoted_reply_is_not() -> None:
    posts = {p.id: p.article for p in parse(Channel(NAME, sample_posts()).render()).posts}
    assert posts[103].title == "صور من موقع الاستهداف قرب قاعدة حرير في أربيل"
    english = posts[106]
    assert english.title == "Rockets hit Ain al-Asad air base hosting US troops in western Iraq"
    assert "المقاومة" not in english.summary  # the quoted post it answers is not its text
    assert english.summary.endswith("More: https://example.org/ain-al-asad")  # the link kept as text


def test_posts_of_another_channel_are_ignored_and_the_page_spelling_kept() -> None:
    body = page("Other_Channel", [Post(7, "Something else entirely here")])
    assert parse(body).posts == ()
    mixed = parse(page("Sabereen_Test", [Post(9, "A post in the channel's own spelling")]))
    assert mixed.channel == "Sabereen_Test"
    assert mixed.posts[0].article.url == post_url("Sabereen_Test", 9)


def test_an_empty_history_is_no_posts_not_an_error() -> None:
    empty = parse(page(NAME, []))
    assert empty.posts == () and empty.newest_id is None


@pytest.mark.parametrize(
    "body",
    [
        b"<!doctype html><html><body><h1>Welcome</h1><p>No channel here.</p></body></html>",
        b'<html><body><div class="tgme_page"><div class="tgme_page_title">Private group</div>'
        b'<a class="tgme_action_button_new">View in Telegram</a></div></body></html>',
        b"",
        b"\x00\xff\xfe garbage \x89PNG",
    ],
)
def test_a_page_that_is_not_a_channel_preview_is_a_clear_error(body: bytes) -> None:
    with pytest.raises(ParseError, match="not a Telegram channel preview"):
        parse(body)


def test_missing_and_broken_fields_are_tolerated() -> None:
    body = (
        b'<section class="tgme_channel_history">'
        b'<div class="tgme_widget_message" data-post="sabereen_test/5"><div class="tgme_widget_message_text">'
        b'US embassy in Baghdad orders staff to leave</div><time datetime="not a date"></time></div>'
        b'<div class="tgme_widget_message" data-post="sabereen_test/x"><div class="tgme_widget_message_text">'
        b"bad id</div></div>"
        b'<div class="tgme_widget_message" data-post="sabereen_test/6"><time datetime="2030-01-01T00:00:00"></time>'
        b'<div class="tgme_widget_message_document_title">Statement on the Harir base strike.pdf</div></div>'
        b"</section>"
    )
    posts = parse(body).posts
    assert [(p.id, p.article.published) for p in posts] == [(5, None), (6, FETCHED)]  # a date in the future: now
    assert posts[1].article.title == "Statement on the Harir base strike.pdf"


def test_a_link_to_newer_posts_is_reported() -> None:
    channel = Channel(NAME, [Post(i, f"Post number {i} of a long burst of news") for i in range(1, 31)])
    first = parse(channel.render(after=0))
    assert [p.id for p in first.posts] == list(range(1, 21)) and first.more_after
    assert not parse(channel.render(after=20)).more_after


@pytest.mark.parametrize(
    ("lines", "title"),
    [
        (["🔴 عاجل", "استهداف رتل للدعم اللوجستي الأمريكي في الديوانية"],
         "🔴 عاجل استهداف رتل للدعم اللوجستي الأمريكي في الديوانية"),
        (["U.S. forces struck two sites in Iraq overnight. Officials gave no details."],
         "U.S. forces struck two sites in Iraq overnight."),
        (["هل تنسحب القوات الأمريكية من العراق؟ سؤال يطرحه الجميع اليوم"], "هل تنسحب القوات الأمريكية من العراق؟"),
    ],
)  # fmt: skip
def test_the_headline_is_the_first_line_or_sentence(lines: list[str], title: str) -> None:
    assert headline(lines) == title


def test_a_long_headline_is_cut_at_a_word() -> None:
    title = headline(["word " * 100])
    assert len(title) <= TITLE_MAX and title.endswith("word…")


def test_page_urls() -> None:
    assert channel_page_url("https://t.me", NAME) == "https://t.me/s/sabereen_test"
    assert (
        channel_page_url("http://127.0.0.1:8080/", NAME, after=120) == "http://127.0.0.1:8080/s/sabereen_test?after=120"
    )


async def test_the_worker_pool_parses_channel_pages_and_reports_errors() -> None:
    pool = ParserPool(workers=1, memory_mb=256, timeout_s=30)
    try:
        result = await pool.parse_channel(
            Channel(NAME, sample_posts()).render(), headers=HTML, feed="tg", channel=NAME, url="u", fetched=FETCHED
        )
        assert [p.id for p in result.posts] == [100, 101, 103, 106]
        with pytest.raises(ParseError, match="not a Telegram channel preview"):
            await pool.parse_channel(b"<p>no</p>", headers=HTML, feed="tg", channel=NAME, url="u", fetched=FETCHED)
    finally:
        pool.close()
