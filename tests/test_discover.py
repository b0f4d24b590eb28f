"""`sources discover URL` against sites served on loopback."""

from __future__ import annotations

import tomllib

from tests.newsroom import PAIRS, Story, atom, json_feed, rss20

CONFIG = """
[monitor]
per_host_delay = 0
allow_private_networks = {private}
timeout = "5s"

[storage]
url = "sqlite:///data/monitor.db"
{extra}
"""

SUMMIT = Story.from_file("kishida-summit", PAIRS / "en_original.txt")


def page(*links: str, body: str = "<p>Welcome</p>") -> bytes:
    return (f"<!DOCTYPE html><html><head><title>Site</title>{''.join(links)}</head>"
            f"<body>{body}</body></html>").encode()


def discover(project, url: str, *, private: bool = True, extra: str = ""):
    project.write(CONFIG.format(private=str(private).lower(), extra=extra))
    return project.cli("sources", "discover", url)


def test_advertised_feeds_are_confirmed_and_printed_as_toml(project, http_server):
    s = http_server
    s.route("/rss.xml", rss20([(SUMMIT, s.url("/a"))], title="Asia Wire").encode(),
            headers={"Content-Type": "application/rss+xml"})
    s.route("/atom.xml", atom([(SUMMIT, s.url("/a"))], title="Asia Wire (Atom)").encode(),
            headers={"Content-Type": "application/atom+xml"})
    s.route("/feed.json", json_feed([(SUMMIT, s.url("/a"))], title="Asia Wire JSON").encode(),
            headers={"Content-Type": "application/feed+json"})
    # WordPress announces its REST API as application/json: looked at, refused.
    s.route("/wp-json/wp/v2/pages/2", b'{"id": 2}', headers={"Content-Type": "application/json"})
    home = s.route("/", page(
        '<link rel="alternate" type="application/rss+xml" title="RSS" href="/rss.xml">',
        '<link rel="alternate" type="application/atom+xml" href="atom.xml">',
        '<link rel="alternate" type="application/feed+json" href="/feed.json">',
        '<link rel="alternate" type="application/json" href="/wp-json/wp/v2/pages/2">',
        '<link rel="stylesheet" type="text/css" href="/style.css">'),
        headers={"Content-Type": "text/html; charset=utf-8"})

    result = discover(project, home)

    assert result.code == 0, result.err
    assert tomllib.loads(result.out)["sources"] == [
        {"name": "asia-wire", "kind": "feed", "url": s.url("/rss.xml")},
        {"name": "asia-wire-atom", "kind": "feed", "url": s.url("/atom.xml")},
        {"name": "asia-wire-json", "kind": "feed", "url": s.url("/feed.json")},
    ]
    assert "# 1 entry, advertised by the page" in result.out
    assert f"not a feed: {s.url('/wp-json/wp/v2/pages/2')}: not a feed: JSON, but not a JSON Feed" \
        in result.err
    assert not s.requests_for("/feed")            # advertised feeds found: no guessing


def test_without_advertised_feeds_the_usual_places_are_tried(project, http_server):
    s = http_server
    s.redirect("/blog/feed", "/blog/feed/")          # WordPress style
    s.route("/blog/feed/", rss20([(SUMMIT, s.url("/blog/a"))], title="The Blog").encode(),
            headers={"Content-Type": "application/rss+xml"})
    s.route("/index.xml", b"<html><body>soft 404</body></html>",
            headers={"Content-Type": "text/xml"})
    blog = s.route("/blog/", page(body="<p>No feed links here</p>"),
                   headers={"Content-Type": "text/html"})

    result = discover(project, blog)

    assert result.code == 0, result.err
    assert tomllib.loads(result.out)["sources"] == [
        {"name": "the-blog", "kind": "feed", "url": s.url("/blog/feed/")}]
    tried = {r.path for r in s.requests}
    assert {"/blog/feed", "/blog/rss", "/blog/rss.xml", "/blog/atom.xml", "/blog/feed.xml",
            "/blog/index.xml", "/feed", "/rss", "/rss.xml", "/atom.xml", "/feed.xml",
            "/index.xml"} <= tried
    assert f"not a feed: {s.url('/index.xml')}: not a feed: looks like an HTML page" in result.err


def test_a_url_that_is_a_feed_is_its_own_answer(project, http_server):
    feed = http_server.route("/news.rss",
                             rss20([(SUMMIT, http_server.url("/a"))], title="Wire").encode(),
                             headers={"Content-Type": "application/rss+xml"})
    result = discover(project, feed)
    assert result.code == 0, result.err
    assert tomllib.loads(result.out)["sources"] == [{"name": "wire", "kind": "feed", "url": feed}]
    assert len(http_server.requests) == 1


def test_a_configured_feed_is_reported_not_proposed(project, http_server):
    feed = http_server.route("/news.rss",
                             rss20([(SUMMIT, http_server.url("/a"))], title="Wire").encode(),
                             headers={"Content-Type": "application/rss+xml"})
    result = discover(project, feed + "?utm_source=x", extra=f"""
[[sources]]
name = "wire"
url = "{feed}"
""")
    assert result.code == 0
    assert "sources" not in tomllib.loads(result.out)
    assert "already configured as 'wire'" in result.err


def test_nothing_found_exits_1(project, http_server):
    home = http_server.route("/", page(), headers={"Content-Type": "text/html"})
    result = discover(project, home)
    assert result.code == 1
    assert f"no feed found at or advertised by {home}" in result.err
    assert result.out == ""


def test_discovery_goes_through_the_address_checks(project, http_server):
    """With private networks refused (the default), a loopback site is not contacted."""
    http_server.route("/", page('<link rel="alternate" type="application/rss+xml" href="/r">'),
                      headers={"Content-Type": "text/html"})
    result = discover(project, http_server.url("/"), private=False)
    assert result.code == 1
    assert "blocked: loopback address 127.0.0.1" in result.err
    assert not http_server.requests


def test_a_hostile_page_costs_nothing_but_its_own_answer(project, http_server):
    links = "".join(f'<link rel="alternate" type="application/rss+xml" href="/f{i}">'
                    for i in range(500))
    home = http_server.route("/", page(links, body="<p>" + "x" * 100_000 + "</p>"),
                             headers={"Content-Type": "text/html"})
    result = discover(project, home)
    assert result.code == 1
    # At most 20 advertised links are followed, then the 12 usual places.
    assert len(http_server.requests) <= 1 + 20 + 12


def test_bad_url_is_a_usage_error(project):
    result = discover(project, "ftp://example.org/")
    assert result.code == 2
    assert "is not an http(s) URL" in result.err
