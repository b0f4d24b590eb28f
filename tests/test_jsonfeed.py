"""JSON Feed 1.0 and 1.1 as `kind = "feed"`: the same entries, limits and care as XML feeds."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.errors import ParseError
from monitor.sources.feeds import MAX_CHARS, MAX_ENTRIES, parse_feed
from tests.newsroom import PAIRS, Site, Story, json_feed
from tests.test_hostile import config as hostile_config

DATA = Path(__file__).parent / "testdata" / "feeds"
NOW = datetime(2024, 3, 9, 12, 0, tzinfo=UTC)
V11 = "https://jsonfeed.org/version/1.1"


def parse(body: bytes | str | dict, content_type: str | None = "application/feed+json"):
    if isinstance(body, dict):
        body = json.dumps(body)
    if isinstance(body, str):
        body = body.encode("utf-8")
    return parse_feed(body, url="https://notes.example/feed.json", content_type=content_type,
                      now=NOW)


def feed_of(*items, **top) -> dict:
    return {"version": V11, "title": "T", **top, "items": list(items)}


def test_json_feed_11_into_entries():
    parsed = parse_feed((DATA / "jsonfeed11.json").read_bytes(),
                        url="https://peninsula-notes.example/feed.json",
                        content_type="application/feed+json", now=NOW)
    assert parsed.title == "Peninsula Notes"
    assert parsed.ttl_seconds is None
    first, second, third = parsed.entries     # a repeated id and an item with neither id nor URL go
    assert first.url == "https://peninsula-notes.example/2024/03/kishida-ready-to-meet-kim"
    assert first.guid == "pn-2024-0305"
    assert first.title == 'Kishida "ready to meet Kim at any time"'
    assert first.summary == "Japan's prime minister renewed his offer of a summit."
    assert first.content == ("Japan's prime minister said he was ready to meet North Korea's "
                             "leader.\n\nThe abduction issue remains the main obstacle.")
    assert first.published == datetime(2024, 3, 5, 0, 30, tzinfo=UTC)
    assert first.author == "Aiko Tanaka, Min-jun Park"
    # external_url when there is no url; content_text kept in paragraphs; date_modified.
    assert second.url == "https://wire.example/abductee-families-urge-direct-talks"
    assert second.content.endswith("prime minister.\n\nThey asked for direct talks.")
    assert second.published == datetime(2024, 3, 6, 22, 45, tzinfo=UTC)
    assert second.author == "Peninsula Notes desk"       # the feed's authors stand in
    # An id that is a URL is the link; a date centuries ahead is unknown, not first forever.
    assert third.url == "https://peninsula-notes.example/2024/03/permalink-id"
    assert third.published is None


def test_json_feed_10_author_and_numeric_id():
    parsed = parse_feed((DATA / "jsonfeed10.json").read_bytes(),
                        url="https://old-style.example/feed.json", now=NOW)
    first, second = parsed.entries
    assert (first.guid, first.author) == ("275221", "Feed Author")
    assert first.published == datetime(2024, 3, 1, 17, 0, tzinfo=UTC)
    assert second.author == "Item Author"


ONE_ITEM = '{"version": "' + V11 + '", "items": [{"id": "1", "url": "https://n.example/a"}]}'


@pytest.mark.parametrize("body, content_type", [
    (ONE_ITEM.encode(), "text/plain"),                      # recognised by its content
    (b"\xef\xbb\xbf  " + ONE_ITEM.encode(), None),            # a BOM and white space first
    (ONE_ITEM.encode("utf-16"), "application/json"),        # UTF-16, labelled JSON
])
def test_recognised_by_content_or_type(body, content_type):
    [entry] = parse(body, content_type).entries
    assert entry.url == "https://n.example/a"


def test_an_xml_feed_served_as_json_is_still_read():
    body = (DATA / "rss20.xml").read_bytes()
    assert len(parse(body, "application/json").entries) == 2


@pytest.mark.parametrize("body, message", [
    (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    (b'{"version": "%s", "items": [{"id": %s}]}' % (V11.encode(), b"9" * 50_000), "invalid JSON"),
    (b'{"version": "%s", "items": [' % V11.encode(), "invalid JSON"),
    (b'[{"id": "1"}]', "not a JSON Feed"),
    (b'{"items": []}', "not a JSON Feed"),
    (b'{"version": "https://example.org/version/1", "items": []}', "not a JSON Feed"),
    (b'{"version": "%s", "items": {"id": "1"}}' % V11.encode(), "not a JSON Feed"),
    (b'{"version": 1.1, "items": []}', "not a JSON Feed"),
])
def test_hostile_or_wrong_json_is_refused(body, message):
    with pytest.raises(ParseError, match=message):
        parse(body)


def test_fields_of_the_wrong_type_are_ignored_not_trusted():
    parsed = parse(feed_of(
        1, "x", None, [], {"id": {"a": 1}, "url": 7, "title": ["t"]},
        {"id": "ok", "url": "https://n.example/ok", "title": 5, "summary": {"x": 1},
         "content_html": 3, "content_text": None, "date_published": 20240101,
         "authors": "me", "author": ["you"]},
        title={"not": "a string"}, authors=[{"name": 3}, "x"]))
    [entry] = parsed.entries
    assert (entry.url, entry.guid, entry.title, entry.summary, entry.content,
            entry.published, entry.author) == ("https://n.example/ok", "ok", "", "", "", None, "")
    assert parsed.title == ""


def test_links_only_http_and_text_cleaned():
    no_link, entry = parse(feed_of(
        {"id": "1", "url": "javascript:alert(1)", "external_url": "data:text/html,x"},
        {"id": "2", "url": "https://n.example/2",
         "title": "Kishida\u202e\x1b[31m meets\u200b Kim\n\nagain",
         "content_html": "<p>One<script>steal()</script></p><style>p{}</style><p>Two</p>"})).entries
    assert (no_link.url, no_link.guid) == (None, "1")    # kept by its id, as in XML feeds
    assert entry.url == "https://n.example/2"
    assert entry.title == "Kishida[31m meets Kim again"
    assert entry.content == "One\n\nTwo"


def test_limits_are_those_of_xml_feeds():
    items = [{"id": str(i), "url": f"https://n.example/{i}", "title": "x" * 5000,
              "content_text": "y" * (MAX_CHARS["content"] + 10)}
             for i in range(MAX_ENTRIES + 50)]
    parsed = parse(feed_of(*items))
    assert len(parsed.entries) == MAX_ENTRIES
    assert len(parsed.entries[0].title) == MAX_CHARS["title"]
    assert len(parsed.entries[0].content) <= MAX_CHARS["content"]


def test_invalid_utf8_costs_the_bytes_not_the_feed():
    body = b'{"version": "%s", "items": [{"id": "1", "url": "https://n.example/a", ' \
           b'"title": "caf\xe9 talks"}]}' % V11.encode()
    [entry] = parse(body).entries
    assert entry.title == "caf\ufffd talks"


# ---------------------------------------------------------------- end to end

@pytest.mark.parametrize("content_type", ["application/feed+json", "text/plain; charset=utf-8"])
def test_check_now_alerts_from_a_json_feed(project, http_server, content_type):
    site = Site(http_server, "Peninsula Notes", "/notes")
    summit = Story.from_file("kishida-summit", PAIRS / "en_original.txt")
    url = site.feed("/feed.json", json_feed([(summit, site.publish(summit))]), content_type)
    project.write(hostile_config([("notes", "feed", url)]))

    result = project.cli("check-now", "--json")

    assert result.code == 0, (result.out, result.err)
    [source] = result.json()["sources"]
    assert (source["status"], source["entries"], source["new_articles"]) == ("ok", 1, 1)
    [alert] = project.alerts()
    assert (alert["title"], alert["url"]) == (summit.title, site.url("/news/kishida-summit"))


def test_a_feed_source_that_is_an_html_page_names_the_feeds_it_advertises(project, http_server):
    home = http_server.route("/site/", b"""<!DOCTYPE html><html><head><title>Notes</title>
<link rel="alternate" type="application/rss+xml" title="RSS" href="/site/rss.xml">
<link rel="alternate" type="application/feed+json" href="https://notes.example/feed.json">
<link rel="alternate" type="application/json" href="/site/wp-json/wp/v2/pages/2">
</head><body><p>Welcome</p></body></html>""", headers={"Content-Type": "text/html"})
    project.write(hostile_config([("notes", "feed", home)]))

    result = project.cli("check-now", "--json")

    assert result.code == 1
    [source] = result.json()["sources"]
    assert source["error"] == ("not a feed: looks like an HTML page; this page advertises feeds: "
                               f"{http_server.url('/site/rss.xml')}, "
                               "https://notes.example/feed.json")
    [listed] = project.cli("sources", "list", "--json").json()
    assert "this page advertises feeds: " in listed["last_error"]
