"""monitor.text.extract: an article page into its headline, text and metadata."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.text.extract import decode_html, extract_article

PAGES = Path(__file__).parent / "testdata" / "pages"
NOW = datetime(2024, 3, 9, 12, 0, tzinfo=UTC)


def extract(name: str, url: str, charset: str | None = None):
    return extract_article((PAGES / name).read_bytes(), url=url, charset=charset, now=NOW)


def test_news_article_with_boilerplate():
    art = extract("article_en.html", "https://www.nea-monitor.example/analysis/2024/03/kishida-signals-readiness-for-summit/?utm_source=rss")
    assert art.title == "Kishida signals readiness for summit with Kim Jong Un"
    assert art.text.count("\n") >= 4
    assert "reviving a long-stalled effort" in art.text
    assert "had already been resolved." in art.text
    for boilerplate in ("cookies", "Subscribe", "Related stories", "Five things to know",
                        "daily briefing", "All rights reserved"):
        assert boilerplate not in art.text
    assert art.author == "Aiko Tanaka"
    assert art.published == datetime(2024, 3, 5, 0, 30, tzinfo=UTC)
    assert art.site_name == "NEA Monitor"
    assert art.canonical_url == "https://www.nea-monitor.example/analysis/2024/03/kishida-signals-readiness-for-summit/"
    assert art.language == "en"


def test_blog_post_json_ld_and_legacy_charset():
    art = extract("article_blog.html", "https://peninsula-watch.example/2024/03/ulaanbaatar-channel")
    assert art.title == "Why the Ulaanbaatar channel matters"
    assert "café conversations" in art.text
    assert "too optimistic" not in art.text  # comments are not the article
    assert "Blogroll" not in art.text
    assert art.author == "Min-jun Park"
    assert art.published == datetime(2024, 3, 2, 23, 20, tzinfo=UTC)
    assert art.site_name == "Peninsula Watch"
    assert art.canonical_url is None


@pytest.mark.parametrize("charset", [None, "Shift_JIS", "utf-8"])  # utf-8: the header lies
def test_japanese_article(charset):
    art = extract("article_ja.html", "https://gaikou.example.jp/news/20240307-nitcho?from=top",
                  charset)
    assert art.title == "日朝首脳会談、実現に課題"
    assert "拉致問題の解決が最優先課題" in art.text
    assert "クッキー" not in art.text and "関連記事" not in art.text
    assert art.site_name == "外交ニュース"
    assert art.published == datetime(2024, 3, 7, 9, 0, tzinfo=UTC)
    assert art.canonical_url == "https://gaikou.example.jp/news/20240307-nitcho"
    assert art.language == "ja"


BODY = ("<p>" + " ".join(["The envoys met again in Mongolia to prepare the ground for talks."] * 6)
        + "</p>")


@pytest.mark.parametrize("title_html, expected", [
    ("<title>Envoys meet again | Wire Example</title>", "Envoys meet again"),
    ("<title>Envoys meet again - wire.example</title>", "Envoys meet again"),
    ("<title>Envoys meet again – WIRE</title>", "Envoys meet again"),
    ("<title>Wire Example | Envoys meet again</title>", "Envoys meet again"),
    ("<title>Kim - Kishida talks: what next</title>", "Kim - Kishida talks: what next"),
    ('<title>Wire Example</title><meta property="og:title" content="Wire Example">', ""),
])
def test_title_never_site_boilerplate(title_html, expected):
    page = (f'<html><head>{title_html}<meta property="og:site_name" content="Wire Example"></head>'
            f'<body><article>{BODY}</article></body></html>')
    art = extract_article(page, url="https://www.wire.example/2024/03/envoys-meet-again", now=NOW)
    assert art.title == expected


def test_title_falls_back_to_h1_when_title_is_site_name():
    page = ('<html><head><title>Wire Example</title>'
            '<meta property="og:site_name" content="Wire Example"></head>'
            f'<body><article><h1>Envoys meet again in Mongolia</h1>{BODY}</article></body></html>')
    art = extract_article(page, url="https://wire.example/a/envoys", now=NOW)
    assert art.title == "Envoys meet again in Mongolia"


def test_future_date_and_non_http_canonical_are_dropped():
    page = ('<html><head><meta property="article:published_time" content="2099-01-01T00:00:00Z">'
            '<link rel="canonical" href="javascript:alert(1)"></head>'
            f'<body><article>{BODY}</article></body></html>')
    art = extract_article(page, url="https://wire.example/a/b", now=NOW)
    assert art.published is None
    assert art.canonical_url is None


@pytest.mark.parametrize("body", [
    b"", b"\x00\x01\x02garbage", b"<html><body><nav><a href='/'>Home</a></nav></body></html>",
    b"<html><head><title>Only a title</title></head><body></body></html>",
])
def test_no_usable_text(body):
    assert extract_article(body, url="https://wire.example/a", now=NOW) is None


@pytest.mark.parametrize("body, charset, expected", [
    ("café".encode("cp1252"), "iso-8859-1", "café"),
    ('<meta charset="euc-jp">日本'.encode("euc_jp"), None, '<meta charset="euc-jp">日本'),
    ("\ufeffcafé".encode("utf-8"), "iso-8859-1", "café"),  # BOM beats the header
    ("café".encode(), "no-such-charset", "café"),
])
def test_decode_html(body, charset, expected):
    assert decode_html(body, charset) == expected
