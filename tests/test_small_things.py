"""What a user notices: dates in the channel's zone, a progress bar that counts
articles, sources with their URL and interval, test alerts marked as such."""

from __future__ import annotations

import re

from monitor.delivery.notifiers import render
from monitor.delivery.notifiers.apprise import message
from monitor.delivery.notifiers.email import EmailNotifier
from monitor.delivery.notifiers.slack import alert_message
from tests.conftest import make_alert
from tests.newsroom import PAIRS, Site, Story, rss20
from tests.test_check_now import config
from tests.test_logs import _run_on_a_terminal

ALERT = make_alert(published="2024-05-01T00:30:00+00:00")


def test_dates_in_messages_are_in_the_channels_zone():
    assert render.published_text(ALERT.published) == "2024-05-01 00:30 UTC"
    assert render.published_text(ALERT.published, "Asia/Tokyo") == "2024-05-01 09:30 JST"
    assert render.published_text(ALERT.published, "Asia/Seoul") == "2024-05-01 09:30 KST"
    assert "Published: 2024-05-01 09:30 JST" in alert_message(ALERT, "Asia/Tokyo")["blocks"][1][
        "elements"][0]["text"]
    assert "2024-05-01 09:30 KST" in message(ALERT, "Asia/Seoul")[1]
    email = EmailNotifier.from_config("desk", {"host": "127.0.0.1", "port": 25,
                                               "security": "none", "from": "m@example.org",
                                               "to": ["d@example.org"]})
    email.timezone = "Asia/Tokyo"
    text = email.build_message(ALERT).get_body(("plain",)).get_content()
    assert "Published: 2024-05-01 09:30 JST" in text


def test_a_channels_timezone_reaches_its_messages(project):
    """Through the configuration: the console channel prints dates in its zone."""
    project.write(config([("wire", "feed", "https://example.org/rss")]) + """
[[notifiers]]
name = "screen"
kind = "console"
timezone = "Asia/Tokyo"
""")
    result = project.cli("notify", "test", "screen")
    assert result.code == 0, result.err
    assert re.search(r"news-monitor · \d{4}-\d\d-\d\d \d\d:\d\d JST", result.err + result.out)


def test_notify_test_marks_its_jsonl_record(project, http_server):
    project.write(config([("wire", "feed", "https://example.org/rss")]))
    assert project.cli("notify", "test", "archive").code == 0
    [record] = project.alerts()
    assert record["test"] is True and record["rule"] == "notify-test"


def test_real_alerts_carry_no_test_mark(project, http_server):
    wire = Site(http_server, "Asia Wire", "/wire")
    story = Story.from_file("kishida-summit", PAIRS / "en_original.txt")
    feed = wire.feed("/rss.xml", rss20([(story, wire.publish(story))]), "application/rss+xml")
    project.write(config([("wire", "feed", feed)]))
    assert project.cli("check-now").code == 0
    [record] = project.alerts()
    assert "test" not in record


def test_sources_list_shows_url_without_secrets_and_the_interval_in_force(project, http_server,
                                                                          monkeypatch):
    monkeypatch.setenv("FEED_KEY", "k3y-that-is-secret")
    wire = Site(http_server, "Asia Wire", "/wire")
    story = Story.from_file("kishida-summit", PAIRS / "en_original.txt")
    wire.feed("/rss.xml", rss20([(story, wire.publish(story))]), "application/rss+xml")
    feed = wire.url("/rss.xml") + "?key=${FEED_KEY}"
    project.write(config([("wire", "feed", feed)]).replace(
        'url = "' + feed + '"', 'url = "' + feed + '"\ninterval = "20m"'))
    project.cli("check-now")

    [row] = project.cli("sources", "list", "--json").json()
    assert row["url"] == wire.url("/rss.xml") + "?key=***"
    assert row["interval"] == 1200
    assert row["interval_in_force"] > 0
    table = project.cli("sources", "list").out
    assert "k3y-that-is-secret" not in table and "?key=***" in table
    assert "(set: 20m)" in table


def test_the_progress_bar_counts_entries_and_articles(project, http_server):
    wire = Site(http_server, "Asia Wire", "/wire")
    stories = [Story.from_file(f"s{i}", PAIRS / name) for i, name in
               enumerate(["en_original.txt", "en_missile.txt"])]
    wire.feed("/rss.xml", rss20([(s, wire.publish(s)) for s in stories]), "application/rss+xml")
    project.write(config([("wire", "feed", wire.url("/rss.xml"))]))
    code, err = _run_on_a_terminal(project, "check-now")
    assert code == 0
    assert re.search(r"[0-2]/2 new entries done", err), err[-2000:]
