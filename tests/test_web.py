"""The web page, feeds and API over plain HTTP: `serve` in its own process over a
store that `check-now` filled from loopback news sites."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time

import feedparser
import httpx
import pytest
from markupsafe import escape

from tests.conftest import ROOT
from tests.newsroom import Story, rss20
from tests.test_notify_email import free_port
from tests.webhelp import Newsroom, serving, web_config

HOSTILE_TITLE = ('Kishida seeks summit with Kim <script>alert(1)</script>'
                 '<img src=x onerror=alert(2)>')


@pytest.fixture
def newsroom(http_server):
    return Newsroom(http_server)


@pytest.fixture
def filled(project, newsroom):
    """A store after two passes: an alert, its follow-up, a copy, a broken source."""
    project.write(web_config(newsroom.sources()))
    newsroom.first_pass()
    assert project.cli("check-now").code == 1        # the broken source fails
    newsroom.second_pass()
    assert project.cli("check-now").code == 1
    return project


def csrf_of(page: str) -> str:
    return re.search(r'name="csrf" value="([0-9a-f]+)"', page).group(1)


def test_alerts_page_shows_alerts_threaded_with_highlighted_words(filled, newsroom):
    alerts = [a for a in filled.alerts() if a["rule"] == "summit"]
    assert [a["followup"] for a in alerts] == [False, True]
    with serving(filled) as base:
        page = httpx.get(base + "/")
    assert page.status_code == 200
    html = page.text
    assert escape(newsroom.original.title) in html and escape(newsroom.rewrite.title) in html
    # The follow-up sits under its story's first alert, in the same thread.
    thread = html.split(f'data-story="{alerts[0]["story_id"]}" data-rule="summit"',
                        1)[1].split("</section>")[0]
    assert thread.index(escape(newsroom.original.title)) < thread.index('class="followups"')
    assert escape(newsroom.rewrite.title) in thread and 'class="followups"' in thread
    # Marked where the query engine found the words, as the text writes them.
    marks = re.findall(r"<mark>(.*?)</mark>", html)
    assert "Kishida" in marks and any(m.lower().startswith("kim") for m in marks)
    assert "state-sent" in html
    assert "JST" in html                       # [web] timezone = "Asia/Tokyo"


def test_every_page_answers_with_a_csp_and_no_inline_script(filled):
    alert = filled.alerts()[0]
    with serving(filled) as base:
        for path in ("/", "/sources", "/rules", f"/stories/{alert['story_id']}",
                     "/?rule=summit&period=7d", "/?q=Kishida+AND+summit"):
            r = httpx.get(base + path)
            assert r.status_code == 200, path
            assert "script-src" not in r.headers["content-security-policy"]
            assert "default-src 'none'" in r.headers["content-security-policy"]
            assert "<script" not in r.text and not re.search(r"<[^>]+\son\w+\s*=", r.text)
            assert r.headers["x-frame-options"] == "DENY"
        assert httpx.get(base + "/stories/no-such-story").status_code == 404
        assert httpx.get(base + "/?period=forever").status_code == 400
        assert httpx.get(base + "/?before=garbage").status_code == 400
        bad = httpx.get(base + "/?q=Kishida+AND+(")       # shown on the page, with the form
        assert bad.status_code == 200 and "query error" in bad.text
        assert httpx.get(base + "/feeds/rules/nope.atom").status_code == 404
        assert httpx.get(base + "/metrics").status_code == 404      # only the daemon has them


def test_filters_by_rule_source_period_and_query(filled, newsroom):
    with serving(filled) as base:
        only_daily = httpx.get(base + "/", params={"source": "daily"}).text
        by_rule = httpx.get(base + "/", params={"rule": "abductions"}).text
        recent = httpx.get(base + "/", params={"period": "24h"}).text
        found = httpx.get(base + "/", params={"q": '"emotional gathering"'}).text
        not_found = httpx.get(base + "/", params={"q": "Obama"}).text
    assert "No alerts match these filters" in only_daily      # the copy raised none
    assert 'class="rule">abductions' in by_rule and 'class="rule">summit' not in by_rule
    assert escape(newsroom.rewrite.title) in found and escape(newsroom.original.title) not in found
    assert escape(newsroom.rewrite.title) in recent
    assert "No alerts match" in not_found


def test_hostile_titles_are_escaped_on_the_page_in_the_feed_and_the_api(project, newsroom):
    # On the article page the title is text (escaped HTML), so it survives
    # extraction as written: "<script>..." reaches the store.
    hostile = Story(slug="hostile", title=HOSTILE_TITLE,
                    body="Prime Minister Kishida said a summit with Kim Jong Un was near. "
                         "<b>bold</b> & <iframe src=javascript:alert(3)>\n\n" * 3)
    newsroom.wire.feed("/rss.xml", rss20([(hostile, newsroom.wire.publish(hostile))]),
                       "application/rss+xml")
    project.write(web_config([("wire", newsroom.wire.url("/rss.xml"))]))
    project.cli("check-now")
    stored = [a for a in project.alerts() if a["rule"] == "summit"]
    assert stored and "<script>" in stored[0]["title"], stored
    with serving(project) as base:
        page = httpx.get(base + "/").text
        story = httpx.get(base + f"/stories/{stored[0]['story_id']}").text
        feed = httpx.get(base + "/feeds/alerts.atom")
        api = httpx.get(base + "/api/alerts").json()
    for html in (page, story):
        assert "<script" not in html and "<img" not in html and "<iframe" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
        assert "&lt;img src=x onerror=alert(2)&gt;" in html
    parsed = feedparser.parse(feed.content)
    assert not parsed.bozo
    assert b"<script>" not in feed.content and b"&lt;script&gt;" in feed.content
    assert api["alerts"][0]["title"] == stored[0]["title"]     # JSON carries the text as it is


def test_atom_feeds_are_valid_and_carry_id_link_snippet_words_and_rule(filled, newsroom):
    alerts = filled.alerts()
    with serving(filled) as base:
        feed = httpx.get(base + "/feeds/alerts.atom")
        rule_feed = httpx.get(base + "/feeds/rules/summit.atom")
        empty = httpx.get(base + "/feeds/rules/source-health.atom")
    assert feed.headers["content-type"].startswith("application/atom+xml")
    parsed = feedparser.parse(feed.content)
    assert parsed.version == "atom10" and not parsed.bozo
    assert feed.text.count("&lt;mark&gt;") >= len(alerts)     # matched words marked
    assert parsed.feed.id and parsed.feed.updated and parsed.feed.author
    by_id = {e.id: e for e in parsed.entries}
    for alert in alerts:
        h = alert["alert_id"]
        entry = by_id[f"urn:uuid:{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"]
        assert entry.link == alert["url"]
        assert entry.title == alert["title"]
        assert entry.tags[0].term == alert["rule"]
        content = entry.content[0].value
        assert f"Rule: {alert['rule']}" in content
        assert all(word in content for word in alert["matched"])
        assert entry.updated
    assert {e.tags[0].term for e in feedparser.parse(rule_feed.content).entries} == {"summit"}
    assert len(feedparser.parse(rule_feed.content).entries) == 2
    assert (feedparser.parse(empty.content).entries == []
            and not feedparser.parse(empty.content).bozo)


def test_api_alerts_filters_and_pages(filled):
    alerts = filled.alerts()
    with serving(filled) as base:
        first = httpx.get(base + "/api/alerts", params={"limit": 3}).json()
        second = httpx.get(base + first["next"]).json()
        by_rule = httpx.get(base + "/api/alerts", params={"rule": "abductions"}).json()
        by_source = httpx.get(base + "/api/alerts", params={"source": "wire"}).json()
        future = httpx.get(base + "/api/alerts", params={"since": "2999-01-01"}).json()
        bad = [httpx.get(base + "/api/alerts", params=p).status_code
               for p in ({"limit": "lots"}, {"limit": 0}, {"since": "yesterday"},
                         {"before": "x"})]
    paged = first["alerts"] + second["alerts"]
    assert len(first["alerts"]) == 3 and second["next"] is None
    assert sorted(a["alert_id"] for a in paged) == sorted(a["alert_id"] for a in alerts)
    assert [a["created_at"] for a in paged] == sorted((a["created_at"] for a in paged),
                                                      reverse=True)
    record = next(a for a in paged if a["alert_id"] == alerts[0]["alert_id"])
    assert {k: record[k] for k in alerts[0]} == alerts[0]       # the alert record, as delivered
    assert record["deliveries"][0]["state"] == "sent" and record["muted"] is False
    assert {a["rule"] for a in by_rule["alerts"]} == {"abductions"}
    assert len(by_rule["alerts"]) == 2 and len(by_source["alerts"]) == 4
    assert future["alerts"] == []
    assert bad == [400, 400, 400, 400]


def test_api_story_lists_articles_copies_with_similarity_and_alerts(filled, newsroom):
    story_id = filled.alerts()[0]["story_id"]
    with serving(filled) as base:
        story = httpx.get(base + f"/api/stories/{story_id}").json()
        page = httpx.get(base + f"/stories/{story_id}").text
        sources = httpx.get(base + "/api/sources").json()
        missing = httpx.get(base + "/api/stories/nope")
    titles = {a["title"]: a for a in story["articles"]}
    copy = titles[newsroom.copy.title]
    assert copy["duplicate_of"] == titles[newsroom.original.title]["id"]
    assert 0.5 <= copy["similarity"] <= 1.0
    assert len(story["alerts"]) == 4 and story["muted"] is False
    assert 'class="copies"' in page and "similarity" in page
    assert missing.status_code == 404
    by_name = {s["name"]: s for s in sources}
    assert by_name["broken"]["consecutive_failures"] == 2 and by_name["broken"]["last_error"]
    assert by_name["wire"]["last_success"] and sum(d["ok"] for d in by_name["wire"]["days"]) == 2
    assert sum(d["alerts"] for d in by_name["wire"]["days"]) == 4


def test_sources_page_shows_health_and_a_chart(filled):
    with serving(filled) as base:
        html = httpx.get(base + "/sources").text
    broken = html.split('id="source-broken"', 1)[1].split("</tr>")[0]
    assert "500" in broken and 'class="num">2<' in broken
    wire = html.split('id="source-wire"', 1)[1].split("</tr>")[0]
    assert "<svg" in wire and 'class="bar"' in wire and "strip-good" in wire
    assert "4 alerts" in wire


def test_mute_needs_the_pages_csrf_token_and_hides_follow_ups(filled, newsroom):
    story_id = filled.alerts()[0]["story_id"]
    with serving(filled) as base, httpx.Client(base_url=base) as browser:
        page = browser.get(f"/stories/{story_id}").text
        token = csrf_of(page)
        assert httpx.post(base + f"/stories/{story_id}/mute").status_code == 403
        assert browser.post(f"/stories/{story_id}/mute", data={"csrf": "0" * 64}).status_code == 403
        other = browser.post(f"/stories/{story_id}/mute", data={"csrf": token},
                             headers={"Origin": "http://evil.example"})
        assert other.status_code == 403
        # A token from another browser (another cookie) does not pass either.
        stranger = httpx.Client(base_url=base)
        stranger.get("/")
        assert stranger.post(f"/stories/{story_id}/mute",
                             data={"csrf": token}).status_code == 403
        assert browser.get(f"/api/stories/{story_id}").json()["muted"] is False

        done = browser.post(f"/stories/{story_id}/mute", data={"csrf": token})
        assert done.status_code == 303 and done.headers["location"] == f"/stories/{story_id}"
        assert browser.get(f"/api/stories/{story_id}").json()["muted"] is True
        alerts_page = browser.get("/").text
        assert escape(newsroom.rewrite.title) not in alerts_page
        assert "1 follow-up hidden" in alerts_page

        assert browser.post(f"/stories/{story_id}/unmute",
                            data={"csrf": token}).status_code == 303
        assert escape(newsroom.rewrite.title) in browser.get("/").text


def test_rule_test_form_explains_a_match_and_a_miss(filled):
    with serving(filled) as base, httpx.Client(base_url=base) as browser:
        token = csrf_of(browser.get("/rules").text)
        hit = browser.post("/rules/test", data={
            "csrf": token, "rule": "summit",
            "text": "Kishida eyes summit\nThe prime minister wants talks with Kim Jong-un."})
        miss = browser.post("/rules/test", data={
            "csrf": token, "rule": "summit",
            "text": "Kishida eyes summit\nThe prime minister spoke about the economy."})
        empty = browser.post("/rules/test", data={"csrf": token, "rule": "summit"})
        unknown = browser.post("/rules/test", data={"csrf": token, "rule": "nope", "text": "x"})
        forged = httpx.post(base + "/rules/test", data={"rule": "summit", "text": "x"})
    assert "Match: rule summit" in hit.text
    assert "<mark>Kim Jong-un</mark>" in hit.text and "<mark>prime minister</mark>" in hit.text
    assert "No match: rule summit" in miss.text
    failed = re.findall(r'class="clause-failed">(.*?)</li>', miss.text)
    assert len(failed) == 1 and "Kim" in failed[0] and "Kishida" not in failed[0]
    assert "give a URL or paste a text" in empty.text and unknown.status_code == 404
    assert forged.status_code == 403


def test_rule_test_on_a_url_goes_through_the_fetcher(filled, newsroom):
    url = newsroom.wire.url(f"/news/{newsroom.original.slug}")
    with serving(filled) as base, httpx.Client(base_url=base) as browser:
        token = csrf_of(browser.get("/rules").text)
        hit = browser.post("/rules/test", data={"csrf": token, "rule": "summit", "url": url})
        gone = browser.post("/rules/test", data={"csrf": token, "rule": "summit",
                                                 "url": newsroom.server.url("/gone/rss.xml")})
    assert "Match: rule summit" in hit.text
    assert "cannot read the article" in gone.text and "500" in gone.text


def test_a_token_guards_everything_but_healthz(project, newsroom):
    secret = "s3cret-web-token-value"
    project.write(web_config([("wire", newsroom.wire.url("/rss.xml"))],
                             web='listen = "0.0.0.0:8080"\ntoken = "${WEB_TOKEN}"'))
    newsroom.first_pass()
    env = {"WEB_TOKEN": secret}
    with serving(project, env=env) as base:
        assert httpx.get(base + "/healthz").status_code == 200
        for path in ("/api/alerts", "/feeds/alerts.atom", "/api/sources"):
            r = httpx.get(base + path)
            assert r.status_code == 401 and "Bearer" in r.headers["www-authenticate"]
        page = httpx.get(base + "/sources", headers={"Accept": "text/html"})
        assert page.status_code == 303 and page.headers["location"] == "/login?next=%2Fsources"
        wrong = httpx.get(base + "/api/alerts", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        assert httpx.get(base + "/api/alerts",
                         headers={"Authorization": f"Bearer {secret}"}).status_code == 200
        assert httpx.get(base + "/feeds/alerts.atom", auth=("reader", secret)).status_code == 200

        with httpx.Client(base_url=base) as browser:
            login = browser.get("/login")
            assert login.status_code == 200 and secret not in login.text
            token = csrf_of(login.text)
            bad = browser.post("/login", data={"csrf": token, "token": "guess"})
            assert "wrong token" in bad.text
            assert "monitor_session" not in bad.headers.get("set-cookie", "")
            assert browser.post("/login", data={"token": secret}).status_code == 403   # no CSRF
            ok = browser.post("/login?next=/sources", data={"csrf": token, "token": secret})
            assert ok.status_code == 303 and ok.headers["location"] == "/sources"
            cookie = ok.headers["set-cookie"]
            assert "HttpOnly" in cookie and "SameSite=lax" in cookie and secret not in cookie
            for path in ("/", "/sources", "/rules", "/api/sources", "/feeds/alerts.atom"):
                r = browser.get(path)
                assert r.status_code == 200 and secret not in r.text, path
            browser.post("/logout", data={"csrf": token})
            assert browser.get("/api/alerts").status_code == 401
        # A forged cookie is not a session.
        assert httpx.get(base + "/api/alerts",
                         cookies={"monitor_session": "eyJ2IjoxfQ.forged.sig"}).status_code == 401
        # An open redirect through ?next= is not possible.
        with httpx.Client(base_url=base) as browser:
            token = csrf_of(browser.get("/login").text)
            away = browser.post("/login?next=//evil.example/", data={"csrf": token,
                                                                      "token": secret})
            assert away.headers["location"] == "/"


def test_secrets_in_source_urls_never_reach_a_page(project, newsroom):
    secret = "feed-key-8c1f0d2e"
    url = newsroom.wire.url("/rss.xml") + "?key=${FEED_KEY}"
    newsroom.wire.feed("/rss.xml", rss20([(newsroom.original, newsroom.wire.publish(
        newsroom.original))]), "application/rss+xml")
    project.write(web_config([("wire", url),
                              ("broken", newsroom.server.url("/gone?k=${FEED_KEY}"))]))
    newsroom.server.status("/gone", 500)
    env = {"FEED_KEY": secret}
    assert project.process("check-now", env=env).returncode == 1
    with serving(project, env=env) as base:
        bodies = [httpx.get(base + p).text for p in
                  ("/", "/sources", "/rules", "/api/sources", "/api/alerts",
                   "/feeds/alerts.atom")]
    assert all(secret not in body for body in bodies)
    assert "[redacted]" in bodies[1] or "***" in bodies[1]


def test_non_loopback_listen_without_token_is_a_configuration_error(project):
    project.write(web_config([], web='listen = "0.0.0.0:8080"'))
    result = project.cli("validate")
    assert result.code == 2
    text = project.config.read_text().splitlines()
    line = next(i for i, t in enumerate(text, 1) if t.startswith("listen"))
    assert f"{project.config}:{line}: [web]: listen:" in result.err
    assert "token" in result.err

    project.write(web_config([]))
    result = project.cli("serve", "--http", "0.0.0.0:9999")
    assert result.code == 2 and "--http" in result.err and "token" in result.err
    assert project.cli("serve", "--http", "nowhere").code == 2


def test_serve_reports_a_port_in_use(project):
    project.write(web_config([]))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = project.process("serve", "--http", f"127.0.0.1:{port}", timeout=30)
    assert result.returncode == 1 and "cannot listen" in result.stderr


def test_stories_mute_from_the_command_line(project, newsroom):
    project.write(web_config(newsroom.sources()))
    newsroom.first_pass()
    project.cli("check-now")
    story_id = project.alerts()[0]["story_id"]
    result = project.cli("stories", "mute", story_id)
    assert result.code == 0 and "muted" in result.out
    assert "already" in project.cli("stories", "mute", story_id).out
    assert project.cli("stories", "mute", "no-such-story").code == 2

    newsroom.second_pass()                  # the follow-up of the muted story
    summary = project.cli("check-now", "--json").json()
    assert summary["alerts"] == 2           # one per rule
    assert len(project.alerts()) == 2       # recorded, not delivered: the first pass's only
    listed = project.cli("alerts", "list", "--json").json()
    followup = next(a for a in listed if a["followup"])
    assert followup["muted"] is True
    assert [d["state"] for d in followup["deliveries"]] == ["muted"]
    assert "muted" in project.cli("alerts", "list").out
    assert project.cli("alerts", "list", "--pending").out.strip() == "no pending alerts"

    assert project.cli("stories", "unmute", story_id).code == 0
    assert "was not muted" in project.cli("stories", "unmute", story_id).out


def test_serve_listens_on_web_listen_by_default(project):
    port = free_port()
    project.write(web_config([], web=f'listen = "127.0.0.1:{port}"'))
    proc = subprocess.Popen([sys.executable, str(ROOT / "run_monitor.py"), "--config",
                             str(project.config), "serve"], cwd=project.path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                status = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code
                break
            except httpx.HTTPError:
                assert proc.poll() is None, "serve exited before answering"
                if time.monotonic() > deadline:     # a wait limit, not a speed target
                    pytest.fail("serve did not answer within 30 s")
                time.sleep(0.1)
        assert status == 200
        assert httpx.get(f"http://127.0.0.1:{port}/").status_code == 200
    finally:
        proc.terminate()
        assert proc.wait(10) == 0             # SIGTERM stops it cleanly
