"""monitor.sources.feeds, monitor.sources.links, monitor.sources.sitemaps: sources into entries."""

from __future__ import annotations

import gzip
import resource
from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.errors import ConfigError, ParseError
from monitor.sources.feeds import MAX_ENTRIES, parse_feed
from monitor.sources.links import discover_links
from monitor.sources.sitemaps import parse_sitemap

DATA = Path(__file__).parent / "testdata"
NOW = datetime(2024, 3, 9, 12, 0, tzinfo=UTC)


def feed(name: str, url: str = "https://feeds.example/feed.xml", content_type: str | None = None):
    return parse_feed((DATA / "feeds" / name).read_bytes(), url=url, content_type=content_type,
                      now=NOW)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# ---------------------------------------------------------------- feeds

def test_rss20():
    parsed = feed("rss20.xml", url="https://www.nea-monitor.example/feed/")
    assert parsed.title == "Northeast Asia Monitor & Review"
    assert parsed.ttl_seconds == 1800
    first, second = parsed.entries
    assert first.url == "https://www.nea-monitor.example/analysis/2024/03/kishida-signals-readiness-for-summit/"
    assert first.guid == "nea-20240305-001"
    assert first.title == "Kishida signals readiness for summit with Kim Jong Un"
    assert first.summary == ("Japan's prime minister said on Tuesday he was ready to meet "
                             "North Korea's leader \"at any time\". Read more »")
    assert first.content == ("Japan's prime minister said on Tuesday he was ready to meet "
                             "North Korea's leader."
                             "\n\nThe abduction issue remains the main obstacle.")
    assert first.published == utc(2024, 3, 5, 0, 30)
    assert first.author == "Aiko Tanaka"
    assert second.author == "News Desk"
    assert second.published == utc(2024, 3, 6, 22, 15)


def test_atom_prefers_alternate_link_and_resolves_it():
    parsed = feed("atom.xml", url="https://peninsula-watch.example/atom.xml")
    first, second = parsed.entries
    assert first.url == "https://peninsula-watch.example/posts/41-abductee-families-urge-direct-talks"
    assert first.title == "Abductee families urge direct talks"
    assert first.author == "Min-jun Park"
    assert first.published == utc(2024, 3, 6, 22, 45)
    assert "They met the prime minister on Thursday." in first.content
    assert second.published == utc(2024, 3, 1, 12)  # only <updated>


@pytest.mark.parametrize("name, title, entry_title, entry_url, published", [
    ("rss10.rdf", "Think Tank Commentary", "What a Japan-North Korea summit would need",
     "https://think-tank.example/commentary/1987", utc(2024, 2, 28, 1)),
    ("rss091.xml", "Old Wire Service", "Envoys meet in Ulaanbaatar",
     "http://old-wire.example/story.php?id=8812", None),
    ("shift_jis.xml", "日本外交ニュース", "岸田首相、日朝首脳会談に意欲",
     "https://gaikou.example.jp/news/20240305-nitcho", utc(2024, 3, 5, 9)),
    ("euc_jp.xml", "日本外交ニュース", "岸田首相、日朝首脳会談に意欲",
     "https://gaikou.example.jp/news/20240305-nitcho", utc(2024, 3, 5, 9)),
    ("iso8859_1.xml", "Revue diplomatique",
     "Sommet Japon-Corée du Nord : déjà des réticences à Séoul",
     "https://revue.example.fr/articles/sommet-japon-coree", None),
    ("lying_declaration.xml", "Revue diplomatique",
     "Sommet Japon–Corée du Nord : déjà des réticences à Séoul",
     "https://revue.example.fr/articles/sommet-japon-coree", None),
])
def test_formats_and_encodings(name, title, entry_title, entry_url, published):
    parsed = feed(name)
    assert parsed.title == title
    assert [e.title for e in parsed.entries] == [entry_title]
    assert parsed.entries[0].url == entry_url
    assert parsed.entries[0].published == published


def test_japanese_summary_is_decoded():
    assert feed("shift_jis.xml").entries[0].summary == (
        "拉致問題の解決に向け、金正恩総書記との会談を目指すと表明した。")


def test_http_charset_wins_over_declaration():
    body = (DATA / "feeds" / "shift_jis.xml").read_bytes().replace(b'encoding="Shift_JIS"',
                                                                  b'encoding="UTF-8"')
    parsed = parse_feed(body, url="https://gaikou.example.jp/rss",
                        content_type="application/rss+xml; charset=Shift_JIS")
    assert parsed.entries[0].title == "岸田首相、日朝首脳会談に意欲"


def test_http_charset_that_lies_about_utf8_body():
    parsed = feed("lying_declaration.xml", content_type="text/xml; charset=iso-8859-1")
    assert parsed.entries[0].summary == "Les négociateurs évoquent un « dialogue difficile »."


def test_entries_without_link_or_guid_are_skipped():
    entries = feed("no_links.xml").entries
    assert [(e.title, e.url, e.guid) for e in entries] == [
        ("", "https://odd.example/a/untitled-item-123", None),
        ("Permalink guid only", "https://odd.example/p/guid-as-link", "https://odd.example/p/guid-as-link"),
        ("Opaque guid only", None, "urn:odd:42"),
    ]


def test_duplicate_guids_kept_once():
    assert [e.title for e in feed("duplicate_guids.xml").entries] == ["First copy", "Other"]


def test_future_and_garbage_dates():
    by_title = {e.title: e.published for e in feed("future_dates.xml").entries}
    assert by_title == {"Far future": None, "Slightly ahead": utc(2024, 3, 10, 2),
                        "Garbage date": None}


def test_malformed_feed_with_entries_is_accepted():
    entries = feed("broken_but_useful.xml").entries
    assert [e.title for e in entries][:1] == ["Unescaped & ampersand in title"]
    assert entries[0].published == utc(2024, 3, 4, 10)


@pytest.mark.parametrize("name, message", [
    ("html_page.html", "not a feed: looks like an HTML page"),
    ("garbage.bin", "not a feed: binary data"),
    ("json_not_a_feed.json", "not a feed: JSON, but not a JSON Feed"),
    ("not_a_feed.xml", "not a feed: no RSS or Atom root element"),
    ("sitemap.xml", "not a feed: this is a sitemap"),
])
def test_not_a_feed(name, message):
    with pytest.raises(ParseError, match=message):
        feed(name)


@pytest.mark.parametrize("body", [b"", b"   \n", b"\x1f\x8b\x08\x00\x00\x00"])
def test_empty_or_binary_body(body):
    with pytest.raises(ParseError, match="not a feed"):
        parse_feed(body, url="https://feeds.example/")


@pytest.mark.parametrize("name", ["billion_laughs.xml", "xxe.xml"])
def test_hostile_entities_are_refused(name):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(ParseError, match="refused"):
        feed(name)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 50_000  # KiB


def test_undeclared_entities_do_not_leak_files():
    # no DOCTYPE at all: the reference stays unexpanded, nothing is read from disk
    body = (DATA / "feeds" / "xxe.xml").read_bytes().split(b"]>", 1)[1]
    parsed = parse_feed(body, url="https://xxe.example/feed")
    text = " ".join(e.title + e.summary for e in parsed.entries)
    assert "root:" not in text


def test_entry_cap():
    items = "".join(f"<item><title>t{i}</title><link>https://big.example/a/{i}</link></item>"
                    for i in range(MAX_ENTRIES + 50))
    body = f'<rss version="2.0"><channel><title>big</title>{items}</channel></rss>'.encode()
    assert len(parse_feed(body, url="https://big.example/").entries) == MAX_ENTRIES


def test_long_fields_are_clipped():
    body = (f'<rss version="2.0"><channel><title>x</title><item><title>{"a" * 50_000}</title>'
            f'<link>https://e.example/a/1</link></item></channel></rss>').encode()
    assert len(parse_feed(body, url="https://e.example/").entries[0].title) <= 1000


def test_syndication_module_ttl():
    body = b'''<rss version="2.0" xmlns:sy="http://purl.org/rss/1.0/modules/syndication/"><channel>
      <title>x</title><sy:updatePeriod>hourly</sy:updatePeriod><sy:updateFrequency>4</sy:updateFrequency>
      </channel></rss>'''
    assert parse_feed(body, url="https://e.example/").ttl_seconds == 900


# ---------------------------------------------------------------- links

LISTING_URL = "https://www.nea-monitor.example/korea/"


def test_discover_links_heuristics():
    entries = discover_links((DATA / "pages" / "listing.html").read_bytes(), url=LISTING_URL,
                             link_pattern=None)
    assert [(e.url, e.title) for e in entries] == [
        ("https://www.nea-monitor.example/analysis/2024/03/kishida-signals-readiness-for-summit/",
         "Kishida signals readiness for summit with Kim Jong Un"),
        ("https://www.nea-monitor.example/news/pyongyang-rejects-tokyo-overture",
         "Pyongyang rejects Tokyo's overture"),
        ("https://nea-monitor.example/news/875421",
         "Families of abductees meet the prime minister"),
        ("https://news.nea-monitor.example/2024/03/07/envoys-meet-in-ulaanbaatar",
         "Envoys meet in Ulaanbaatar"),
    ]


def test_discover_links_with_pattern():
    entries = discover_links((DATA / "pages" / "listing.html").read_bytes(), url=LISTING_URL,
                             link_pattern=r"^/news/[^/?]+$")
    assert [e.url for e in entries] == [
        "https://www.nea-monitor.example/news/pyongyang-rejects-tokyo-overture",
        "https://nea-monitor.example/news/875421",
    ]


def test_discover_links_bad_pattern_is_a_config_error():
    with pytest.raises(ConfigError, match="link_pattern"):
        discover_links(b"<html><body><a href='/a'>a</a></body></html>", url=LISTING_URL,
                       link_pattern="(")


@pytest.mark.parametrize("body", [b"", b"  "])
def test_discover_links_empty_page(body):
    with pytest.raises(ParseError):
        discover_links(body, url=LISTING_URL, link_pattern=None)


def test_discover_links_honours_charset():
    body = ('<html><body><a href="/news/sommet-japon-coree-du-nord">Sommet à Séoul</a>'
            '</body></html>').encode("cp1252")
    [entry] = discover_links(body, url="https://revue.example.fr/", link_pattern=None,
                             charset="windows-1252")
    assert entry.title == "Sommet à Séoul"


# ---------------------------------------------------------------- sitemaps

def sitemap(name: str, url: str = "https://www.nea-monitor.example/sitemap.xml", gz: bool = False):
    body = (DATA / "feeds" / name).read_bytes()
    return parse_sitemap(gzip.compress(body) if gz else body, url=url, now=NOW)


@pytest.mark.parametrize("gz", [False, True])
def test_sitemap_urlset(gz):
    result = sitemap("sitemap.xml", gz=gz)
    assert result.sitemaps == []
    assert [(e.url, e.published) for e in result.entries] == [
        ("https://www.nea-monitor.example/analysis/2024/03/kishida-signals-readiness-for-summit/",
         utc(2024, 3, 5, 0, 30)),
        ("https://www.nea-monitor.example/news/pyongyang-rejects-tokyo-overture", utc(2024, 3, 6)),
        ("https://www.nea-monitor.example/relative/path-is-resolved", None),  # lastmod in 2100
    ]


def test_news_sitemap():
    entries = sitemap("news_sitemap.xml", url="https://wire.example/news-sitemap.xml").entries
    assert [(e.title, e.published) for e in entries] == [
        ("Abductee families urge direct talks with Pyongyang", utc(2024, 3, 6, 22, 45)),
        ("日朝首脳会談、実現に課題", utc(2024, 3, 7)),
    ]


def test_sitemap_index():
    result = sitemap("sitemap_index.xml", url="https://wire.example/sitemap.xml")
    assert result.entries == []
    assert result.sitemaps == ["https://wire.example/sitemaps/news.xml", "https://wire.example/sitemaps/2024-03.xml.gz"]


@pytest.mark.parametrize("name, message", [
    ("rss20.xml", "not a sitemap: root element is <rss>"),
    ("html_page.html", "not a sitemap"),
    ("billion_laughs.xml", "refused"),
    ("xxe.xml", "refused"),
    ("garbage.bin", "not a sitemap"),
])
def test_not_a_sitemap(name, message):
    with pytest.raises(ParseError, match=message):
        sitemap(name)


def test_gzip_bomb_is_refused():
    bomb = gzip.compress(b"<urlset>" + b" " * (60 * 1024 * 1024))
    with pytest.raises(ParseError, match="decompresses to more than"):
        parse_sitemap(bomb, url="https://wire.example/s.xml.gz")
