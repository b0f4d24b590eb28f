"""`sources import FILE.opml` and `sources export`: subscriptions in and out, through the CLI."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from tests.newsroom import PAIRS, Site, Story, rss20

OPML = Path(__file__).parent / "testdata" / "opml"

BASE = """
[monitor]
per_host_delay = 0
allow_private_networks = true
workers = 1

[storage]
url = "sqlite:///data/monitor.db"
"""

CONFIGURED = BASE + """
[[sources]]
name = "dw"
url = "https://dw.example/rss"

[[sources]]
name = "asia-wire"
url = "https://other.example/rss"
"""


def blocks(text: str) -> list[dict]:
    return tomllib.loads(text)["sources"]


def test_import_prints_sources_with_unique_names_leaving_out_configured_urls(project):
    project.write(CONFIGURED)

    result = project.cli("sources", "import", str(OPML / "subscriptions.opml"))

    assert result.code == 0, result.err
    assert blocks(result.out) == [
        # Nested outlines are read; "asia-wire" is taken by the configuration.
        {"name": "asia-wire-2", "kind": "feed", "url": "https://asia-wire.example/rss.xml"},
        {"name": "peninsula-notes", "kind": "feed",
         "url": "https://peninsula-notes.example/feed.json"},
        {"name": "asia-wire-3", "kind": "feed", "url": "https://asia-wire.example/japan/rss.xml"},
        {"name": "nhk", "kind": "feed", "url": "https://www3.nhk.or.jp/rss/news/cat6.xml"},
        {"name": "title-with-quotes-a-backslash", "kind": "feed",
         "url": 'https://quotes.example/feed?a=1&b="2"'},
    ]
    assert "# folder: Korea desk / Think tanks" in result.out
    # DW's URL differs only by case and a tracking parameter: already configured.
    assert "already configured as 'dw': https://DW.example/rss?utm_source=reader" in result.err
    assert "'A gopher feed': not an http(s) URL" in result.err
    assert "'Another list': a link to another subscription list, not followed" in result.err


def test_imported_blocks_appended_to_the_configuration_validate(project):
    project.write(CONFIGURED)
    result = project.cli("sources", "import", str(OPML / "subscriptions.opml"))
    project.write(CONFIGURED + "\n" + result.out)

    assert project.cli("validate").code == 0
    # Importing again finds everything configured.
    again = project.cli("sources", "import", str(OPML / "subscriptions.opml"))
    assert again.code == 0 and "sources" not in tomllib.loads(again.out)
    assert "0 new source(s), 6 already configured" in again.err


@pytest.mark.parametrize("body, message", [
    (b'<?xml version="1.0"?>\n<opml version="2.0"><body>\n'
     b'  <outline text="Tom & Jerry" xmlUrl="https://t.example/rss"/>\n</body></opml>',
     "broken.opml: line 3, column 23: not well-formed XML (not well-formed (invalid token))"),
    (b'<opml version="2.0"><body><outline text="a" xmlUrl="https://a.example/"></body>',
     "broken.opml: line 1, column 75: not well-formed XML (mismatched tag)"),
    (b"", "broken.opml: empty file"),
    (b"\x1f\x8b\x08\x00binary", "broken.opml: line 1, column 1: not well-formed XML"),
    (b'<?xml version="1.0"?><!DOCTYPE opml [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]>'
     b'<opml><body><outline text="&b;" xmlUrl="https://a.example/"/></body></opml>',
     "broken.opml: refused: the file declares XML entities"),
    (b'<rss version="2.0"><channel/></rss>', "broken.opml: not an OPML file: its root element "
                                            "is <rss>, not <opml>"),
    (b'<opml version="2.0"><head/></opml>', "broken.opml: not an OPML file: no <body> element"),
])
def test_a_malformed_file_is_a_clear_error(project, body, message):
    project.write(CONFIGURED)
    (project.path / "broken.opml").write_bytes(body)

    result = project.cli("sources", "import", "broken.opml")

    assert result.code == 2
    assert message in result.err
    assert result.out == ""


def test_a_missing_file_is_a_usage_error(project):
    project.write(CONFIGURED)
    result = project.cli("sources", "import", "nowhere.opml")
    assert (result.code, result.err.strip()) == (
        2, "news-monitor: error: nowhere.opml: no such file")


def test_export_writes_opml_that_import_reads_back(project, monkeypatch):
    monkeypatch.setenv("FEED_TOKEN", "s3cr3t-token-value")
    project.write(CONFIGURED + """
[[sources]]
name = "private"
url = "https://private.example/feed?token=${FEED_TOKEN}"

[[sources]]
name = "listing"
kind = "page"
url = "https://listing.example/news/"
""")

    result = project.cli("sources", "export")

    assert result.code == 0, result.err
    assert result.out.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<opml version="2.0">')
    assert "s3cr3t-token-value" not in result.out        # the secret stays a reference
    assert 'xmlUrl="https://private.example/feed?token=${FEED_TOKEN}"' in result.out
    assert "left out (not feeds): listing" in result.err

    (project.path / "out.opml").write_text(result.out, encoding="utf-8")
    project.write(BASE)
    back = project.cli("sources", "import", "out.opml")
    assert back.code == 0, back.err
    assert blocks(back.out) == [
        {"name": "dw", "kind": "feed", "url": "https://dw.example/rss"},
        {"name": "asia-wire", "kind": "feed", "url": "https://other.example/rss"},
        {"name": "private", "kind": "feed",
         "url": "https://private.example/feed?token=${FEED_TOKEN}"},
    ]


def test_an_imported_source_polls(project, http_server):
    """From the feed reader's file to an alert: the whole way a new user takes."""
    site = Site(http_server, "Asia Wire", "/wire")
    summit = Story.from_file("kishida-summit", PAIRS / "en_original.txt")
    feed = site.feed("/rss.xml", rss20([(summit, site.publish(summit))]), "application/rss+xml")
    (project.path / "mine.opml").write_text(
        f'<opml version="1.0"><body><outline text="Korea"><outline text="Asia Wire" '
        f'xmlUrl="{feed}"/></outline></body></opml>', encoding="utf-8")
    project.write(BASE)
    toml = project.cli("sources", "import", "mine.opml").out
    project.write(BASE + toml + """
[[rules]]
name = "summit"
query = 'Kishida AND summit'
notify = ["archive"]

[[notifiers]]
name = "archive"
kind = "jsonl"
path = "data/alerts.jsonl"
""")

    result = project.cli("check-now", "--json")

    assert result.code == 0, result.err
    assert [a["title"] for a in project.alerts()] == [summit.title]
    assert [s["name"] for s in result.json()["sources"]] == ["asia-wire"]
