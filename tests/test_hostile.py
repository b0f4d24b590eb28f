"""Hostile, broken, huge and slow sources, end to end through `check-now --json`.

Each test runs a configuration with the bad source next to a good feed whose
summit article must still alert: the bad source costs itself only, with a clear
error in the summary and in `sources list`.
"""

from __future__ import annotations

import asyncio
import html
import random
import re
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from tests.newsroom import PAIRS, RULE_TEXTS, Site, Story, rss20
from tests.servers import LoopbackServer, closed_port
from tests.test_check_now import SUMMIT_QUERY

FEEDS = Path(__file__).parent / "testdata" / "feeds"
MAX_BODY = 200_000  # "200KB" below


def config(sources: list[tuple[str, str, str]], *, timeout: str = "2s",
           max_body: str = "200KB", private: bool | None = True, extra: str = "") -> str:
    """A project configuration; ``private=None`` leaves allow_private_networks unset."""
    blocks = "\n".join(f"""
[[sources]]
name = "{name}"
kind = "{kind}"
url = "{url}"
""" for name, kind, url in sources)
    allow = "" if private is None else f"allow_private_networks = {str(private).lower()}"
    return f"""
[monitor]
timeout = "{timeout}"
max_body = "{max_body}"
per_host_delay = 0
workers = 1
default_interval = "10m"
{allow}
{extra}

[storage]
url = "sqlite:///data/monitor.db"
{blocks}

[[rules]]
name = "summit"
query = '{SUMMIT_QUERY}'
notify = ["archive"]

[[notifiers]]
name = "archive"
kind = "jsonl"
path = "data/alerts.jsonl"
"""


@pytest.fixture
def wire(http_server):
    return Site(http_server, "Asia Wire", "/wire")


@pytest.fixture
def summit() -> Story:
    return Story.from_file("kishida-summit", PAIRS / "en_original.txt")


@pytest.fixture
def good_feed(wire, summit) -> str:
    """A healthy feed with one summit article: it must alert whatever else breaks."""
    return wire.feed("/rss.xml", rss20([(summit, wire.publish(summit))]), "application/rss+xml")


def check_now(project, bad_url: str, good_feed: str, *, kind: str = "feed", **kw):
    project.write(config([("bad", kind, bad_url), ("wire", "feed", good_feed)], **kw))
    return project.cli("check-now", "--json")


def assert_only_bad_failed(project, result, summit: Story, *fragments: str) -> str:
    """The bad source failed with a message holding ``fragments``; the good one alerted."""
    assert result.code == 1, (result.out, result.err)
    by_name = {s["name"]: s for s in result.json()["sources"]}
    bad, good = by_name["bad"], by_name["wire"]
    assert bad["status"] == "error", bad
    error = bad["error"]
    for fragment in fragments:
        assert fragment.lower() in error.lower(), error
    assert "internal error" not in error, error
    assert (good["status"], good["error"], good["new_articles"]) == ("ok", None, 1), good
    assert [a["title"] for a in project.alerts()] == [summit.title]

    listing = {s["name"]: s for s in project.cli("sources", "list", "--json").json()}
    assert listing["bad"]["last_error"] == error
    assert listing["bad"]["consecutive_failures"] == 1
    assert listing["bad"]["last_success"] is None
    assert listing["wire"]["consecutive_failures"] == 0 and listing["wire"]["last_success"]
    return error


def item(title: str, *, link: str | None = None, guid: str | None = None,
         description: str = "", published: datetime | None = None, extra: str = "") -> str:
    parts = [f"<title>{html.escape(title)}</title>" if title else ""]
    if link:
        parts.append(f"<link>{html.escape(link)}</link>")
    if guid:
        parts.append(f'<guid isPermaLink="false">{html.escape(guid)}</guid>')
    if description:
        parts.append(f"<description>{html.escape(description)}</description>")
    when = published or datetime.now(UTC) - timedelta(hours=1)
    parts.append(f"<pubDate>{format_datetime(when)}</pubDate>")
    return "<item>" + "".join(parts) + extra + "</item>"


def rss(items: list[str], *, encoding: str = "utf-8") -> str:
    return (f'<?xml version="1.0" encoding="{encoding}"?>\n<rss version="2.0"><channel>'
            f"<title>Odd desk</title><link>https://odd.example/</link>"
            f"<description>News</description>{''.join(items)}</channel></rss>")


# --------------------------------------------------------------------------- network


def test_connection_refused(project, good_feed, summit):
    result = check_now(project, f"http://127.0.0.1:{closed_port()}/rss.xml", good_feed)

    error = assert_only_bad_failed(project, result, summit, "connection refused")
    assert "127.0.0.1" in error     # which address refused


def test_dns_failure(project, good_feed, summit):
    result = check_now(project, "http://no-such-newsroom.invalid/rss.xml", good_feed)

    assert_only_bad_failed(project, result, summit, "DNS lookup failed",
                           "no-such-newsroom.invalid")


def test_self_signed_tls_certificate_is_refused_once_and_never_retried_unverified(
        project, good_feed, summit):
    with LoopbackServer(tls=True) as tls:
        tls.route("/rss.xml", rss20([(summit, tls.url("/news/x"))]).encode(),
                  headers={"Content-Type": "application/rss+xml"})
        connections = []
        accept = tls._httpd.get_request

        def counting_accept():  # the handshake happens in accept(): count it there
            connections.append(time.monotonic())
            return accept()

        tls._httpd.get_request = counting_accept
        result = check_now(project, tls.url("/rss.xml"), good_feed)

        assert_only_bad_failed(project, result, summit, "certificate verify failed")
        assert len(connections) == 1
        assert tls.requests == []      # no request was ever sent over an unverified channel


def test_default_policy_refuses_private_addresses_without_sending_anything(
        project, http_server, good_feed):
    # Without allow_private_networks the good feed on loopback is refused too:
    # both fail, nothing reaches the server, and the message says why.
    project.write(config([("bad", "feed", good_feed)], private=None))

    result = project.cli("check-now", "--json")

    assert result.code == 1
    [source] = result.json()["sources"]
    assert source["status"] == "error"
    assert "blocked" in source["error"] and "loopback address 127.0.0.1" in source["error"]
    assert http_server.requests == []
    [listed] = project.cli("sources", "list", "--json").json()
    assert listed["last_error"] == source["error"] and listed["consecutive_failures"] == 1


# --------------------------------------------------------------------------- HTTP


@pytest.mark.parametrize("status, fragment", [
    (404, "HTTP 404 Not Found"),
    (410, "HTTP 410 Gone"),
    (500, "HTTP 500 Internal Server Error"),
])
def test_http_error_status(project, http_server, good_feed, summit, status, fragment):
    url = http_server.status("/bad.xml", status, body=b"<html>oops</html>")

    result = check_now(project, url, good_feed)

    error = assert_only_bad_failed(project, result, summit, fragment)
    assert "/bad.xml" in error        # the user can tell which URL answered that


def test_503_with_retry_after_delays_the_next_poll(project, http_server, good_feed, summit):
    url = http_server.status("/busy.xml", 503, retry_after="7200")

    result = check_now(project, url, good_feed)

    assert_only_bad_failed(project, result, summit, "HTTP 503")
    listing = {s["name"]: s for s in project.cli("sources", "list", "--json").json()}
    next_poll = datetime.fromisoformat(listing["bad"]["next_poll"])
    # The server asked for two hours; the source's own interval is ten minutes.
    assert next_poll >= datetime.now(UTC) + timedelta(hours=1, minutes=55)


def test_redirect_loop(project, http_server, good_feed, summit):
    http_server.redirect("/loop/a", "/loop/b")
    http_server.redirect("/loop/b", "/loop/a")

    result = check_now(project, http_server.url("/loop/a"), good_feed)

    assert_only_bad_failed(project, result, summit, "redirect loop")
    assert len(http_server.requests_for("/loop/a")) == 1


def test_six_redirects_are_too_many(project, http_server, good_feed, summit):
    url = http_server.redirect_chain("/hops", 6, body=rss20([]).encode())

    result = check_now(project, url, good_feed)

    assert_only_bad_failed(project, result, summit, "more than 5 redirects")
    # five redirects followed (to /hops/5), the sixth refused
    assert len(http_server.requests_for("/hops/5")) == 1
    assert http_server.requests_for("/hops/end") == []


def test_five_redirects_are_followed(project, http_server, good_feed, wire, summit):
    # The limit is five hops: a feed behind exactly five still works.
    url = http_server.redirect_chain("/hops", 5, body=rss20([(summit, wire.url(
        "/news/kishida-summit"))]).encode())
    project.write(config([("moved", "feed", url)]))

    result = project.cli("check-now", "--json")

    assert result.code == 0, result.out
    assert result.json()["sources"][0]["status"] == "ok"
    assert len(project.alerts()) == 1


def test_trickling_server_hits_the_total_deadline(project, http_server, good_feed, summit):
    # 60 bytes, one every half second: every read is quick, the whole takes 30 s.
    url = http_server.slow("/slow.xml", chunks=60, delay=0.5)

    result = check_now(project, url, good_feed, timeout="2s")

    assert_only_bad_failed(project, result, summit, "timed out after 2s")


@pytest.mark.parametrize("content_length", [True, False], ids=["content-length", "chunked"])
def test_body_over_max_body(project, http_server, good_feed, summit, content_length):
    url = http_server.huge("/huge.xml", 5 * MAX_BODY, content_length=content_length)

    result = check_now(project, url, good_feed)

    assert_only_bad_failed(project, result, summit, "body larger than 200 KB")


@pytest.mark.parametrize("encoding", ["gzip", "br"])
def test_compression_bomb(project, http_server, good_feed, summit, encoding):
    # 16 MB of zeros: about 70 KB (gzip) or 100 bytes (br) on the wire, under max_body
    url = http_server.bomb("/bomb.xml", 16 * 1024 * 1024, encoding)

    result = check_now(project, url, good_feed)

    assert_only_bad_failed(project, result, summit, "decoded body larger than 200 KB")


def test_connection_dropped_mid_body(project, http_server, good_feed, summit):
    url = http_server.drop_mid_body("/cut.xml", declared=10_000, sent=100)

    result = check_now(project, url, good_feed)

    assert_only_bad_failed(project, result, summit, "connection closed before the response "
                                                    "was complete")


# --------------------------------------------------------------------------- bytes


NOT_A_FEED = [
    ("empty", b"", "text/xml", "empty body"),
    ("whitespace", b"  \r\n\t ", "application/rss+xml", "empty body"),
    ("binary", bytes(range(256)) * 8, "application/rss+xml", "binary data"),
    ("gzip-without-header", __import__("gzip").compress(b"<rss/>"), "application/rss+xml",
     "gzip data"),
    ("html", (FEEDS / "html_page.html").read_bytes(), "text/html", "looks like an HTML page"),
    ("html-as-rss", b"<html><head><title>Home</title></head><body><p>Welcome</p></body></html>",
     "application/rss+xml", "looks like an HTML page"),
    ("xml-not-a-feed", b'<?xml version="1.0"?><catalog><book id="1"><title>XML</title></book>'
                       b"</catalog>", "application/xml", "no RSS or Atom root element"),
    ("broken-xml", b'<?xml version="1.0"?><catalog><book id="1"><title>XML</book>>>',
     "application/xml", "no RSS or Atom root element"),
    ("json-not-a-feed", b'{"status": "ok", "items": [{"id": 1}]}',
     "application/json", "JSON, but not a JSON Feed"),
    ("json-nested", b"[" * 50_000 + b"]" * 50_000, "application/feed+json",
     "JSON nested too deeply"),
    ("billion-laughs", (FEEDS / "billion_laughs.xml").read_bytes(), "application/rss+xml",
     "entity expansion"),
    ("xxe", (FEEDS / "xxe.xml").read_bytes(), "application/rss+xml", "external"),
]


@pytest.mark.parametrize("body, content_type, fragment",
                         [case[1:] for case in NOT_A_FEED], ids=[case[0] for case in NOT_A_FEED])
def test_not_a_feed(project, http_server, good_feed, summit, body, content_type, fragment):
    url = http_server.route("/feed.xml", body, headers={"Content-Type": content_type})

    result = check_now(project, url, good_feed)

    error = assert_only_bad_failed(project, result, summit, "feed", fragment)
    assert "\x00" not in error and len(error) <= 300


PASSWD = Path("/etc/passwd").read_text(encoding="utf-8", errors="replace") \
    if Path("/etc/passwd").exists() else "root:x:0:0:"


@pytest.mark.parametrize("doctype, refused", [
    ('<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>', "external"),
    ('<!DOCTYPE rss [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]>', "parameter entities"),
    # RSS 0.91 feeds name an external DTD: accepted, and never loaded
    ('<!DOCTYPE rss SYSTEM "file:///etc/passwd">', None),
    # a "]>" inside the internal subset must not let the entity slip past the check
    ('<!DOCTYPE rss [<!-- ]> --><!ENTITY xxe SYSTEM "file:///etc/passwd">]>', "not a feed"),
], ids=["general", "parameter", "external-dtd", "bracket-in-comment"])
def test_external_entities_never_read_local_files(project, http_server, wire, good_feed,
                                                  doctype, refused):
    story = Story.from_file("xxe-summit", PAIRS / "en_rewrite.txt")
    feed = rss20([(story, wire.url("/news/gone"))]).replace(
        "<title>World news</title>", "<title>&xxe;</title>").replace(
        html.escape(story.title), html.escape(story.title) + " &xxe;", 1)
    feed = feed.replace('<?xml version="1.0" encoding="utf-8"?>',
                        f'<?xml version="1.0" encoding="utf-8"?>\n{doctype}')
    url = http_server.route("/xxe.xml", feed.encode(), headers={"Content-Type": "application/xml"})

    result = check_now(project, url, good_feed)

    bad, good = result.json()["sources"]
    assert good["status"] == "ok"
    if refused:
        assert bad["status"] == "error" and refused in bad["error"]
    else:
        assert bad["status"] == "ok" and bad["new_articles"] == 1
    everything = result.out + result.err + project.cli("alerts", "list", "--json").out
    everything += project.cli("sources", "list", "--json").out
    for line in [ln for ln in PASSWD.splitlines() if ln.strip()][:3]:
        assert line not in everything
    for alert in project.alerts():
        assert "root:" not in alert["title"] + alert["snippet"]
    assert project.cli("search", "root", "--json").code == 1
    assert "root:" not in (project.path / "data" / "monitor.db").read_bytes().decode(
        "utf-8", "replace")


# --------------------------------------------------------------------------- encodings


def ja_story() -> Story:
    return Story.from_file("nicchou", RULE_TEXTS / "summit_ja_1.txt")


@pytest.mark.parametrize("actual, header, declaration", [
    ("shift_jis", "utf-8", "shift_jis"),   # the header lies, the XML declaration is right
    ("shift_jis", "utf-8", "utf-8"),       # both lie: only the bytes tell
    ("utf-8", "shift_jis", "shift_jis"),   # UTF-8 bytes, labelled Shift_JIS everywhere
], ids=["sjis-header-says-utf8", "sjis-all-say-utf8", "utf8-all-say-sjis"])
def test_feed_with_wrong_charset_is_still_read(project, http_server, good_feed, summit,
                                               actual, header, declaration):
    story = ja_story()
    # The article page is gone: the feed's own (mis-labelled) text is all there is.
    body = rss([item(story.title, link=http_server.url("/toto/news/gone"), guid="ja-1",
                     description=story.body[:400])], encoding=declaration)
    url = http_server.route("/toto/rss.xml", body.encode(actual),
                            headers={"Content-Type": f"application/rss+xml; charset={header}"})
    project.write(config([("toto", "feed", url), ("wire", "feed", good_feed)]))

    result = project.cli("check-now", "--json")

    assert result.code == 0, result.out
    by_name = {s["name"]: s for s in result.json()["sources"]}
    assert by_name["toto"]["status"] == "ok" and by_name["toto"]["new_articles"] == 1
    titles = {a["title"] for a in project.alerts()}
    assert titles == {summit.title, story.title}   # read right, and the rule matched


# --------------------------------------------------------------------------- odd entries


def odd_feed(project, http_server, good_feed, items: list[str], **kw):
    url = http_server.route("/odd/rss.xml", rss(items).encode(),
                            headers={"Content-Type": "application/rss+xml"})
    project.write(config([("odd", "feed", url), ("wire", "feed", good_feed)], **kw))
    result = project.cli("check-now", "--json")
    assert result.code == 0, (result.out, result.err)
    by_name = {s["name"]: s for s in result.json()["sources"]}
    assert by_name["wire"]["status"] == "ok"
    assert by_name["odd"]["status"] == "ok"
    return by_name["odd"], [a for a in project.alerts() if a["source"] == "odd"]


def test_entries_without_links_alert_on_the_feeds_own_content(project, http_server, good_feed):
    story = Story.from_file("linkless", PAIRS / "en_rewrite.txt")
    content = "".join(f"<p>{html.escape(p)}</p>" for p in story.body.split("\n\n"))
    items = [item(story.title, guid="urn:odd:linkless-1",
                  extra=f"<content:encoded><![CDATA[{content}]]></content:encoded>"),
             item("Neither link nor guid", description="cannot be told apart from others")]
    text = rss(items).replace('<rss version="2.0">', '<rss version="2.0" '
                              'xmlns:content="http://purl.org/rss/1.0/modules/content/">')
    url = http_server.route("/odd/rss.xml", text.encode(),
                            headers={"Content-Type": "application/rss+xml"})
    project.write(config([("odd", "feed", url), ("wire", "feed", good_feed)]))

    result = project.cli("check-now", "--json")

    assert result.code == 0, result.out
    odd = next(s for s in result.json()["sources"] if s["name"] == "odd")
    assert (odd["status"], odd["entries"], odd["new_articles"]) == ("ok", 1, 1)
    [alert] = [a for a in project.alerts() if a["source"] == "odd"]
    assert alert["title"] == story.title
    assert alert["snippet"]
    # Nothing to fetch: the only requests are the two feeds and the good article.
    assert {r.path for r in http_server.requests} - {"/robots.txt"} == {
        "/odd/rss.xml", "/wire/rss.xml", "/wire/news/kishida-summit"}


def test_entry_without_title_takes_the_pages_headline(project, http_server, good_feed, wire):
    story = Story.from_file("untitled", PAIRS / "en_rewrite.txt")
    page_url = wire.publish(story)

    odd, alerts = odd_feed(project, http_server, good_feed, [
        item("", link=page_url, guid="t-1", description=story.body[:200])])

    assert odd["new_articles"] == 1
    assert [a["title"] for a in alerts] == [story.title]


def test_entry_without_title_or_page_still_has_a_headline(project, http_server, good_feed,
                                                           wire):
    story = Story.from_file("untitled-gone", PAIRS / "en_rewrite.txt")

    odd, alerts = odd_feed(project, http_server, good_feed, [
        item("", link=wire.url("/news/gone"), guid="t-2", description=story.body[:600])])

    assert odd["new_articles"] == 1
    [alert] = alerts
    assert alert["title"].strip() and len(alert["title"]) <= 300


def test_duplicate_guids_make_one_article(project, http_server, good_feed, wire):
    story = Story.from_file("dupe", PAIRS / "en_rewrite.txt")
    url = wire.publish(story)
    items = [item(story.title, link=url, guid="same-guid", description=story.body[:300]),
             item(story.title + " (updated)", link=url + "?v=2", guid="same-guid",
                  description=story.body[:300]),
             item(story.title, link=url, guid="same-guid", description=story.body[:300])]

    odd, alerts = odd_feed(project, http_server, good_feed, items)

    assert (odd["entries"], odd["new_articles"]) == (1, 1)
    assert [a["url"] for a in alerts] == [url]
    assert len(http_server.requests_for(f"/wire/news/{story.slug}")) == 1


def test_dates_in_the_future_are_not_old_and_not_trusted(project, http_server, good_feed, wire):
    story = Story.from_file("future", PAIRS / "en_rewrite.txt")
    items = [item(story.title, link=wire.url("/news/future-gone"), guid="f-1",
                  description=story.body[:600],
                  published=datetime(2100, 1, 1, tzinfo=UTC))]

    odd, alerts = odd_feed(project, http_server, good_feed, items)

    assert odd["new_articles"] == 1
    [alert] = alerts                                   # alerted: not mistaken for old news
    assert alert["published"] is None or alert["published"] <= (
        datetime.now(UTC) + timedelta(days=1)).isoformat()
    found = project.cli("search", "url:future", "--json").json()
    assert found and all(h["published"] is None or not h["published"].startswith("2100")
                         for h in found)


CONTROL_OR_BIDI = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200e\u200f\u202a-\u202e"
                             r"\u2066-\u2069]")


def test_hostile_title_is_made_sane(project, http_server, good_feed, wire):
    story = Story.from_file("hostile", PAIRS / "en_rewrite.txt")
    headline = story.title
    nasty = ("\u202eTROPER\u202c " + headline + "\x1b[31m\x07\x08 \u2066x\u2069\u200f\r\n"
             "Bcc: everyone@example.org\n" + "A" * 100_000)
    # XML 1.0 cannot carry C0 controls even as references: they go in as the raw
    # bytes a broken CMS emits (feedparser's lenient mode reads them).
    items = [item("PLACEHOLDER", link=wire.url("/news/hostile-gone"), guid="h-1",
                  description=story.body[:600])]
    body = rss(items).replace("PLACEHOLDER", html.escape(nasty)).encode("utf-8")
    url = http_server.route("/odd/rss.xml", body, headers={"Content-Type": "application/rss+xml"})
    project.write(config([("odd", "feed", url), ("wire", "feed", good_feed)]))

    result = project.cli("check-now", "--json")

    assert result.code == 0, result.out
    [alert] = [a for a in project.alerts() if a["source"] == "odd"]
    title = alert["title"]
    assert headline in title
    assert not CONTROL_OR_BIDI.search(title), repr(title[:200])
    assert "\n" not in title and "\r" not in title
    assert len(title) <= 1000


# --------------------------------------------------------------------------- article pages


@pytest.mark.parametrize("page", ["huge", "gzip-bomb", "br-bomb", "slow", "binary"])
def test_bad_article_page_falls_back_to_the_feeds_text(project, http_server, good_feed, wire,
                                                       page):
    story = Story.from_file("kishida-talks", PAIRS / "en_rewrite.txt",
                            summary="Prime Minister Fumio Kishida said he wants a summit with "
                                    "Kim Jong Un without preconditions.")
    path = "/odd/news/article"
    if page == "huge":
        http_server.huge(path, 5 * MAX_BODY, content_length=False)
    elif page.endswith("bomb"):
        http_server.bomb(path, 16 * 1024 * 1024, page.split("-")[0])
    elif page == "slow":
        http_server.slow(path, chunks=60, delay=0.5, content_length=False)
    else:
        http_server.route(path, bytes(range(256)) * 64, headers={"Content-Type": "text/html"})
    items = [item(story.title, link=http_server.url(path), guid="p-1",
                  description=story.summary)]

    odd, alerts = odd_feed(project, http_server, good_feed, items)

    assert odd["new_articles"] == 1
    [alert] = alerts
    assert alert["title"] == story.title and alert["url"] == http_server.url(path)
    assert "Kishida" in alert["matched"]


def test_article_link_to_a_private_address_is_blocked(tmp_path, http_server, wire):
    """An entry (or its page's redirect) pointing into the private network is never fetched.

    With allow_private_networks = false nothing on loopback could be fetched, so here
    the one loopback address of the test server counts as "the internet" and every
    other non-global address keeps the default policy. The pipeline is the real one.
    """
    from monitor.config import load_config
    from monitor.pipeline.orchestrator import Pipeline
    from monitor.sources.fetch import Fetcher, FetchPolicy, guarded_transport
    from monitor.sources.netguard import is_public_address
    from storage import open_store

    story = Story.from_file("kishida-talks", PAIRS / "en_rewrite.txt",
                            summary="Prime Minister Fumio Kishida said he wants a summit with "
                                    "Kim Jong Un without preconditions.")
    second = Story.from_file("kishida-again", PAIRS / "en_syndicated.txt")
    # one link straight to a private address, one page that redirects to another
    inside = f"http://10.1.2.3:{http_server.port}/admin"
    http_server.redirect("/wire/news/redirected", f"http://[::1]:{http_server.port}/secret")
    http_server.route("/admin", b"internal", headers={"Content-Type": "text/html"})
    http_server.route("/secret", b"internal", headers={"Content-Type": "text/html"})
    feed = wire.feed("/rss.xml", rss20([(story, inside),
                                        (second, wire.url("/news/redirected"))]),
                     "application/rss+xml")
    (tmp_path / "monitor.toml").write_text(
        config([("wire", "feed", feed)], private=False).replace(
            'sqlite:///data/monitor.db', f"sqlite:///{tmp_path}/monitor.db"), encoding="utf-8")
    cfg = load_config(str(tmp_path / "monitor.toml"))
    policy = FetchPolicy(timeout=2, allow_private_networks=False, per_host_delay=0)
    server_ip = http_server.host

    async def run():
        transport = guarded_transport(
            policy, permit=lambda ip: str(ip) == server_ip or is_public_address(ip))
        async with Fetcher(policy, transport=transport) as fetcher:
            store = open_store(cfg.storage_url)
            try:
                return await Pipeline(cfg, store, fetcher).run(cfg.sources), store
            finally:
                store.close()

    [result], _ = asyncio.run(run())

    assert (result.status, result.new_articles) == ("ok", 2)
    assert http_server.requests_for("/admin") == [] and http_server.requests_for("/secret") == []
    assert len(http_server.requests_for("/wire/news/redirected")) == 1


def distinct_text(i: int, words: int = 40) -> str:
    """Text unlike any other item's (so that no two are near-duplicates)."""
    rng = random.Random(i)
    return " ".join("".join(rng.choice("bcdfghjklmnprstvwz") + rng.choice("aeiou")
                            for _ in range(rng.randint(2, 4))) for _ in range(words))


def test_five_thousand_entries_are_capped(project, http_server, summit, wire):
    items = [item(summit.title, link=wire.url("/news/kishida-summit"), guid="s-0",
                  description=summit.body[:300])]
    items += [item(f"Local report {i}", link=f"https://odd.example/a/{i}", guid=f"n-{i}",
                   description=distinct_text(i, 12)) for i in range(1, 5000)]
    url = http_server.route("/odd/rss.xml", rss(items).encode(),
                            headers={"Content-Type": "application/rss+xml"})
    # fetch_articles = false: the 5,000 links are on a host that does not exist
    project.write(config([("odd", "feed", url)], max_body="5MB").replace(
        'kind = "feed"', 'kind = "feed"\nfetch_articles = false'))

    result = project.cli("check-now", "--json")

    assert result.code == 0, (result.out, result.err)
    [odd] = result.json()["sources"]
    assert odd["status"] == "ok"
    assert odd["entries"] == 1000          # parsed: the first thousand
    assert odd["new_articles"] == 200      # taken this pass: the rest wait for the next
    assert [a["title"] for a in project.alerts()] == [summit.title]


@pytest.mark.parametrize("validators", [
    False,
    True,
], ids=["no-validators", "etag"])
def test_entries_left_over_by_the_cap_are_taken_next_pass(project, http_server, validators):
    items = [item(f"Report {i}", link=f"https://odd.example/a/{i}", guid=f"n-{i}",
                  description=distinct_text(i)) for i in range(300)]
    body = rss(items).encode()
    if validators:
        url = http_server.conditional("/odd/rss.xml", body, etag='"v1"')
    else:
        url = http_server.route("/odd/rss.xml", body,
                                headers={"Content-Type": "application/rss+xml"})
    project.write(config([("odd", "feed", url)], max_body="5MB").replace(
        'kind = "feed"', 'kind = "feed"\nfetch_articles = false'))

    first = project.cli("check-now", "--json").json()
    second = project.cli("check-now", "--json").json()
    third = project.cli("check-now", "--json").json()

    assert first["new_articles"] == 200
    assert second["sources"][0]["status"] == "ok" and second["new_articles"] == 100
    assert third["new_articles"] == 0
