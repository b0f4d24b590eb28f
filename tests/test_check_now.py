"""`check-now` end to end, through the command line, against invented news sites
served on loopback: feeds in several formats and encodings, article pages with
boilerplate, syndicated copies, tracking URLs, follow-ups."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from tests.newsroom import PAIRS, RULE_TEXTS, Site, Story, article_page, atom, rdf, rss20

SUMMIT_QUERY = ('(Kishida OR 岸田 OR "prime minister") AND ("Kim Jong Un" OR Kim OR 金正恩 '
                'OR Pyongyang) AND (summit OR 首脳会談 OR talks)')


def config(feeds: list[tuple[str, str, str]], *, extra: str = "", rules: str | None = None) -> str:
    sources = "\n".join(f"""
[[sources]]
name = "{name}"
kind = "{kind}"
url = "{url}"
""" for name, kind, url in feeds)
    rules = rules if rules is not None else f"""
[[rules]]
name = "summit"
query = '{SUMMIT_QUERY}'
notify = ["archive"]
"""
    return f"""
[monitor]
timeout = "10s"
per_host_delay = 0
allow_private_networks = true

[storage]
url = "sqlite:///data/monitor.db"
{sources}
{rules}
[[notifiers]]
name = "archive"
kind = "jsonl"
path = "data/alerts.jsonl"
{extra}
"""


@pytest.fixture
def wire(http_server):
    return Site(http_server, "Asia Wire", "/wire")


@pytest.fixture
def daily(http_server):
    return Site(http_server, "The Daily Courier", "/daily")


def test_first_run_alerts_on_matching_article_with_headline_and_reason(project, wire):
    summit = Story.from_file("kishida-summit", PAIRS / "en_original.txt")
    missile = Story.from_file("missile", PAIRS / "en_missile.txt")
    feed = wire.feed("/rss.xml", rss20([(summit, wire.publish(summit)),
                                        (missile, wire.publish(missile))]),
                     "application/rss+xml")
    project.write(config([("wire", "feed", feed)]))

    result = project.cli("check-now", "--json")

    assert result.code == 0, result.err
    summary = result.json()
    assert summary["sources"] == [{"name": "wire", "status": "ok", "error": None,
                                   "entries": 2, "new_articles": 2}]
    assert (summary["new_articles"], summary["alerts"], summary["delivered"]) == (2, 1, 1)
    [alert] = project.alerts()
    assert alert["rule"] == "summit"
    assert alert["title"] == summit.title             # the headline, not "… | Asia Wire"
    assert alert["url"] == wire.url("/news/kishida-summit")
    assert alert["source"] == "wire"
    assert alert["followup"] is False
    assert {"Kishida", "summit"} <= set(alert["matched"])
    # The words as the article wrote them, not the query's patterns.
    assert "Prime Minister" in alert["matched"] and "prime minister" not in alert["matched"]
    assert alert["published"] and alert["published"].startswith(str(summit.published.year))
    assert "Kishida" in alert["snippet"] or "summit" in alert["snippet"]
    assert set(alert) == {"alert_id", "rule", "story_id", "followup", "url", "title",
                          "source", "published", "matched", "snippet"}


def test_rerun_sends_conditional_requests_and_alerts_nothing_new(project, wire, http_server):
    summit = Story.from_file("kishida-summit", PAIRS / "en_original.txt")
    feed = wire.feed("/rss.xml", rss20([(summit, wire.publish(summit))]),
                     "application/rss+xml", etag='"feed-v1"')
    project.write(config([("wire", "feed", feed)]))

    assert project.cli("check-now", "--json").code == 0
    pages_before = len(http_server.requests_for("/wire/news/kishida-summit"))
    second = project.cli("check-now", "--json")

    assert second.code == 0
    assert second.json()["sources"][0]["status"] == "not_modified"
    assert second.json()["alerts"] == 0
    assert http_server.requests_for("/wire/rss.xml")[-1].headers["If-None-Match"] == '"feed-v1"'
    assert len(http_server.requests_for("/wire/news/kishida-summit")) == pages_before
    assert len(project.alerts()) == 1


def test_seen_entries_are_not_fetched_again_when_the_feed_changes(project, wire, http_server):
    first = Story.from_file("kishida-summit", PAIRS / "en_original.txt")
    first_url = wire.publish(first)
    wire.feed("/rss.xml", rss20([(first, first_url)]), "application/rss+xml")
    project.write(config([("wire", "feed", wire.url("/rss.xml"))]))
    assert project.cli("check-now").code == 0

    other = Story.from_file("missile", PAIRS / "en_missile.txt")
    wire.feed("/rss.xml", rss20([(other, wire.publish(other)), (first, first_url)]),
              "application/rss+xml")
    result = project.cli("check-now", "--json")

    assert result.json()["new_articles"] == 1
    assert len(http_server.requests_for("/wire/news/kishida-summit")) == 1


def test_syndicated_copy_and_tracking_variant_raise_no_second_alert(project, wire, daily):
    original = Story.from_file("kishida-summit", PAIRS / "en_original.txt")
    copy = Story.from_file("japan-pm-seeks-kim-meeting", PAIRS / "en_syndicated.txt")
    original_url = wire.publish(original)
    wire.feed("/rss.xml", rss20([(original, original_url)]), "application/rss+xml")
    # The same report, syndicated on another site, and the original again behind a
    # tracking URL in a third feed.
    daily.feed("/atom.xml", atom([(copy, daily.publish(copy))]), "application/atom+xml")
    tracked = original_url + "?utm_source=twitter&utm_medium=social#comments"
    wire.feed("/social.xml", rss20([(Story(original.slug, original.title, original.body,
                                            guid="social-1"), tracked)]),
              "application/rss+xml")
    project.write(config([("wire", "feed", wire.url("/rss.xml"))]))
    assert project.cli("check-now").code == 0
    assert len(project.alerts()) == 1

    project.write(config([("wire", "feed", wire.url("/rss.xml")),
                          ("daily", "feed", daily.url("/atom.xml")),
                          ("social", "feed", wire.url("/social.xml"))]))
    result = project.cli("check-now", "--json")

    assert result.code == 0, result.err
    summary = result.json()
    assert summary["alerts"] == 0
    assert summary["duplicates"] == 2
    assert len(project.alerts()) == 1


def test_follow_up_on_the_same_story_alerts_as_followup(project, wire, daily):
    original = Story.from_file("kishida-summit", PAIRS / "en_original.txt")
    wire.feed("/rss.xml", rss20([(original, wire.publish(original))]), "application/rss+xml")
    project.write(config([("wire", "feed", wire.url("/rss.xml"))]))
    assert project.cli("check-now").code == 0

    rewrite = Story.from_file("tokyo-renews-offer", PAIRS / "en_rewrite.txt")
    daily.feed("/rss.xml", rss20([(rewrite, daily.publish(rewrite))]), "application/rss+xml")
    project.write(config([("wire", "feed", wire.url("/rss.xml")),
                          ("daily", "feed", daily.url("/rss.xml"))]))
    result = project.cli("check-now", "--json")

    assert result.json()["alerts"] == 1
    first, second = project.alerts()
    assert second["title"] == rewrite.title
    assert second["followup"] is True
    assert second["story_id"] == first["story_id"]


def test_rdf_feed_in_shift_jis_with_japanese_article(project, http_server):
    site = Site(http_server, "東都新聞", "/toto")
    story = Story.from_file("nicchou", RULE_TEXTS / "summit_ja_1.txt")
    url = site.publish(story, lang="ja", encoding="shift_jis")
    site.feed("/rss.rdf", rdf([(story, url)], encoding="shift_jis"),
              "application/rdf+xml")      # the charset is only in the XML declaration
    project.write(config([("toto", "feed", site.url("/rss.rdf"))]))

    result = project.cli("check-now", "--json")

    assert result.code == 0, result.err
    assert result.json()["alerts"] == 1
    [alert] = project.alerts()
    assert alert["title"] == story.title
    assert any(t in alert["matched"] for t in ("岸田", "金正恩", "首脳会談"))


def test_page_source_discovers_article_links(project, http_server):
    site = Site(http_server, "Korea Analyst", "/ka")
    summit = Story.from_file("kishida-kim-summit-prospects", PAIRS / "en_original.txt")
    url = site.publish(summit)
    listing = f"""<html><body><nav><a href="/ka/about">About</a> <a
    href="/ka/tag/japan">Japan</a></nav>
    <h2><a href="{url}">{summit.title}</a></h2>
    <a href="https://elsewhere.example.com/news/other">Elsewhere</a>
    <footer><a href="/ka/privacy">Privacy</a></footer></body></html>"""
    http_server.route("/ka/latest", listing.encode(), headers={"Content-Type": "text/html"})
    project.write(config([("ka", "page", site.url("/latest"))]).replace(
        'kind = "page"', 'kind = "page"\nlink_pattern = "/news/"'))

    result = project.cli("check-now", "--json")

    assert result.code == 0, result.err
    assert result.json()["sources"][0]["entries"] == 1
    assert [a["url"] for a in project.alerts()] == [url]


def test_unreachable_article_page_falls_back_to_feed_text(project, wire):
    story = Story.from_file("kishida-summit", PAIRS / "en_original.txt",
                            summary="Prime Minister Fumio Kishida said he wants a summit with "
                                    "Kim Jong Un without preconditions.")
    feed = wire.feed("/rss.xml", rss20([(story, wire.url("/news/gone"))]), "application/rss+xml")
    project.write(config([("wire", "feed", feed)]))

    result = project.cli("check-now", "--json")

    assert result.code == 0
    [alert] = project.alerts()
    assert alert["title"] == story.title
    assert alert["url"] == wire.url("/news/gone")


def test_broken_source_costs_only_itself(project, wire, http_server):
    summit = Story.from_file("kishida-summit", PAIRS / "en_original.txt")
    good = wire.feed("/rss.xml", rss20([(summit, wire.publish(summit))]), "application/rss+xml")
    http_server.status("/broken.xml", 500)
    http_server.route("/html.xml", b"<html><body>Not a feed</body></html>",
                      headers={"Content-Type": "text/html"})
    project.write(config([("broken", "feed", http_server.url("/broken.xml")),
                          ("htmlfeed", "feed", http_server.url("/html.xml")),
                          ("wire", "feed", good)]))

    result = project.cli("check-now", "--json")

    assert result.code == 1
    by_name = {s["name"]: s for s in result.json()["sources"]}
    assert by_name["broken"]["status"] == "error" and "500" in by_name["broken"]["error"]
    assert by_name["htmlfeed"]["status"] == "error" and by_name["htmlfeed"]["error"]
    assert by_name["wire"]["status"] == "ok"
    assert len(project.alerts()) == 1

    listing = project.cli("sources", "list", "--json").json()
    broken = next(s for s in listing if s["name"] == "broken")
    assert broken["consecutive_failures"] == 1 and "500" in broken["last_error"]
    assert next(s for s in listing if s["name"] == "wire")["last_success"]


def test_dry_run_stores_and_sends_nothing(project, wire):
    summit = Story.from_file("kishida-summit", PAIRS / "en_original.txt")
    wire.feed("/rss.xml", rss20([(summit, wire.publish(summit))]), "application/rss+xml")
    project.write(config([("wire", "feed", wire.url("/rss.xml"))]))

    dry = project.cli("check-now", "--dry-run", "--json")

    assert dry.code == 0
    assert dry.json()["alerts"] == 1
    assert dry.json()["would_alert"][0]["title"] == summit.title
    assert project.alerts() == []
    real = project.cli("check-now", "--json")
    assert real.json()["alerts"] == 1 and len(project.alerts()) == 1


def test_old_entries_are_stored_but_raise_no_alert(project, wire):
    old = Story.from_file("kishida-summit", PAIRS / "en_original.txt",
                          published=datetime.now(UTC) - timedelta(days=60))
    wire.feed("/rss.xml", rss20([(old, wire.publish(old))]), "application/rss+xml")
    project.write(config([("wire", "feed", wire.url("/rss.xml"))]))

    result = project.cli("check-now", "--json")

    assert result.json()["new_articles"] == 1
    assert result.json()["alerts"] == 0
    assert project.cli("search", "Kishida AND summit", "--json").code == 0


def test_search_and_alerts_list_over_the_stored_corpus(project, wire):
    summit = Story.from_file("kishida-summit", PAIRS / "en_original.txt")
    missile = Story.from_file("missile", PAIRS / "en_missile.txt")
    wire.feed("/rss.xml", rss20([(summit, wire.publish(summit)), (missile, wire.publish(missile))]),
              "application/rss+xml")
    project.write(config([("wire", "feed", wire.url("/rss.xml"))]))
    project.cli("check-now")

    found = project.cli("search", "missile* NOT summit", "--json")
    assert found.code == 0
    assert [h["title"] for h in found.json()] == [missile.title]
    assert project.cli("search", "Kimura", "--json").code == 1
    bad = project.cli("search", "Kishida AND (summit")
    assert bad.code == 2 and "position" in bad.err

    alerts = project.cli("alerts", "list", "--json").json()
    assert [a["title"] for a in alerts] == [summit.title]
    assert alerts[0]["deliveries"] == [{"notifier": "archive", "state": "sent", "attempts": 1,
                                        "last_error": None, "next_attempt": None,
                                        "waiting": None}]
    assert project.cli("alerts", "list", "--pending", "--json").json() == []


def test_rule_without_notify_alerts_to_console(project, wire):
    summit = Story.from_file("kishida-summit", PAIRS / "en_original.txt")
    wire.feed("/rss.xml", rss20([(summit, wire.publish(summit))]), "application/rss+xml")
    project.write(config([("wire", "feed", wire.url("/rss.xml"))], rules=f"""
[[rules]]
name = "summit"
query = '{SUMMIT_QUERY}'
"""))
    result = project.cli("check-now")

    assert result.code == 0
    assert summit.title in result.out and "[summit]" in result.out


def test_two_processes_at_once_never_alert_twice(project, wire):
    stories = [Story.from_file(f"s{i}", RULE_TEXTS / name) for i, name in enumerate(
        ["summit_en_1.txt", "summit_en_2.txt", "summit_en_3.txt", "summit_ja_1.txt"])]
    wire.feed("/rss.xml", rss20([(s, wire.publish(s)) for s in stories]), "application/rss+xml")
    project.write(config([("wire", "feed", wire.url("/rss.xml"))]))
    import subprocess
    import sys

    from tests.conftest import ROOT
    procs = [subprocess.Popen([sys.executable, str(ROOT / "run_monitor.py"), "--config",
                               str(project.config), "check-now", "--json"], cwd=project.path,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outputs = [p.communicate(timeout=120) for p in procs]

    assert all(p.returncode == 0 for p in procs), outputs
    total = sum(json.loads(out)["alerts"] for out, _ in outputs)
    alerts = project.alerts()
    assert total == len(alerts) == len({a["url"] for a in alerts})
    assert len(alerts) >= 3


def test_unchanged_feed_without_validators_is_not_processed_again(project, wire, http_server):
    summit = Story.from_file("kishida-summit", PAIRS / "en_original.txt")
    wire.feed("/rss.xml", rss20([(summit, wire.publish(summit))]), "application/rss+xml")
    project.write(config([("wire", "feed", wire.url("/rss.xml"))]))
    assert project.cli("check-now").code == 0

    again = project.cli("check-now", "--json")

    assert again.json()["sources"][0]["status"] == "not_modified"
    assert "If-None-Match" not in http_server.requests_for("/wire/rss.xml")[-1].headers
    assert len(http_server.requests_for("/wire/news/kishida-summit")) == 1


def test_source_broken_and_recovered_notices_reach_the_health_channel(project, wire, http_server):
    summit = Story.from_file("kishida-summit", PAIRS / "en_original.txt")
    http_server.status("/wire/rss.xml", 503)
    project.write(config([("wire", "feed", wire.url("/rss.xml"))]).replace(
        "allow_private_networks = true",
        'allow_private_networks = true\nbroken_after = 2\nhealth_notify = ["archive"]'))
    for _ in range(3):
        assert project.cli("check-now").code == 1
    notices = project.alerts()
    assert [n["title"] for n in notices] == ["Source 'wire' is broken: 2 failures in a row"]
    assert notices[0]["rule"] == "source-health" and "503" in notices[0]["snippet"]

    wire.feed("/rss.xml", rss20([(summit, wire.publish(summit))]), "application/rss+xml")
    assert project.cli("check-now").code == 0
    titles = [a["title"] for a in project.alerts()]
    assert "Source 'wire' has recovered after 3 failures" in titles
    assert summit.title in titles


def test_robots_txt_is_honoured_for_article_pages(project, wire, http_server):
    summit = Story.from_file("kishida-summit", PAIRS / "en_original.txt",
                             summary="Prime Minister Fumio Kishida said he wants a summit "
                                     "with Kim Jong Un.")
    wire.feed("/rss.xml", rss20([(summit, wire.publish(summit))]), "application/rss+xml")
    http_server.route("/robots.txt", b"User-agent: news-monitor\nDisallow: /wire/news/\n",
                      headers={"Content-Type": "text/plain"})
    project.write(config([("wire", "feed", wire.url("/rss.xml"))]))

    result = project.cli("check-now", "--json")

    assert result.code == 0
    assert http_server.requests_for("/wire/news/kishida-summit") == []
    [alert] = project.alerts()                # from the feed's own text
    assert alert["title"] == summit.title


def test_page_canonical_link_names_the_article(project, wire, http_server):
    summit = Story.from_file("kishida-summit", PAIRS / "en_original.txt")
    canonical = wire.url("/news/kishida-summit")
    # The feed links to an AMP copy whose <link rel="canonical"> names the article.
    amp = Story(summit.slug + "-amp", summit.title, summit.body, published=summit.published)
    amp_url = wire.publish(amp, canonical=canonical + "?utm_source=amp")
    wire.feed("/rss.xml", rss20([(summit, amp_url)]), "application/rss+xml")
    project.write(config([("wire", "feed", wire.url("/rss.xml"))]))
    assert project.cli("check-now").code == 0
    assert [a["url"] for a in project.alerts()] == [canonical]

    # The article itself turning up later under its canonical URL is no news.
    wire.publish(summit, canonical=canonical)
    wire.feed("/other.xml", rss20([(Story(summit.slug, summit.title, summit.body, guid="x"),
                                    canonical)]), "application/rss+xml")
    project.write(config([("wire", "feed", wire.url("/rss.xml")),
                          ("other", "feed", wire.url("/other.xml"))]))
    result = project.cli("check-now", "--json")
    assert result.json()["alerts"] == 0
    assert http_server.requests_for("/wire/news/kishida-summit") == []


def test_news_sitemap_source_and_sitemap_index(project, wire, http_server):
    summit = Story.from_file("kishida-summit", PAIRS / "en_original.txt")
    missile = Story.from_file("missile", PAIRS / "en_missile.txt")
    urls = [wire.publish(summit), wire.publish(missile)]
    news = f"""<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"
        xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">
  <url><loc>{urls[0]}</loc><news:news><news:publication><news:name>Asia Wire</news:name>
    <news:language>en</news:language></news:publication>
    <news:publication_date>{summit.published.isoformat()}</news:publication_date>
    <news:title>{summit.title}</news:title></news:news></url>
  <url><loc>{urls[1]}</loc><lastmod>{missile.published.isoformat()}</lastmod></url>
</urlset>"""
    http_server.route("/wire/news-sitemap.xml", news.encode(),
                      headers={"Content-Type": "application/xml"})
    index = f"""<?xml version="1.0" encoding="UTF-8"?>
<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
  <sitemap><loc>{wire.url("/news-sitemap.xml")}</loc></sitemap>
</sitemapindex>"""
    http_server.route("/wire/sitemap.xml", index.encode(),
                      headers={"Content-Type": "application/xml"})
    project.write(config([("wire-sitemap", "sitemap", wire.url("/sitemap.xml"))]))

    result = project.cli("check-now", "--json")

    assert result.code == 0, result.err
    assert result.json()["sources"][0]["entries"] == 2
    assert result.json()["new_articles"] == 2
    assert [a["title"] for a in project.alerts()] == [summit.title]


def test_a_page_that_is_not_the_article_gives_way_to_the_feed(project, wire, http_server):
    """A consent wall (or a redirect to a home page) is not the article: the entry's
    own headline and summary stand in, and the rule still fires on them."""
    story = Story("consent", "Kishida says he wants a summit with Kim Jong Un soon - Asia Wire",
                  "", summary="Japan's prime minister Fumio Kishida said on Monday he wants an "
                              "early summit with North Korean leader Kim Jong Un.")
    wall = Story("wall", "Before you continue", "We use cookies and data to deliver and "
                 "maintain our services, measure audience engagement and improve quality. "
                 "If you choose to accept all, we will also use cookies for personalised "
                 "content and ads. Select more options to see additional information.")
    http_server.route("/wire/news/consent", article_page(wall, site="Portal").encode(),
                      headers={"Content-Type": "text/html; charset=utf-8"})
    wire.feed("/rss.xml", rss20([(story, wire.url("/news/consent"))]), "application/rss+xml")
    project.write(config([("wire", "feed", wire.url("/rss.xml"))]))

    assert project.cli("check-now").code == 0

    [alert] = project.alerts()
    assert alert["title"] == story.title
    assert "Kishida" in alert["snippet"]
