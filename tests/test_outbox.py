"""The outbox through the command line: an alert reaches every channel at least
once; a channel that is down keeps it pending and a later pass delivers it; a
permanent refusal is recorded, reported, and not retried forever."""

from __future__ import annotations

import json
import threading

import pytest

from tests import test_notify_email
from tests.fake_slack import TOKEN, FakeSlack
from tests.newsroom import PAIRS, Site, Story, rss20
from tests.servers import Reply, closed_port
from tests.test_check_now import SUMMIT_QUERY

# The loopback SMTP server fixture of the email notifier's tests.
smtp = test_notify_email.smtp


def config(feed: str, notifiers: str, notify: list[str], extra_monitor: str = "") -> str:
    return f"""
[monitor]
timeout = "5s"
per_host_delay = 0
allow_private_networks = true
{extra_monitor}

[[sources]]
name = "wire"
url = "{feed}"

[[rules]]
name = "summit"
query = '{SUMMIT_QUERY}'
notify = {json.dumps(notify)}

[[notifiers]]
name = "archive"
kind = "jsonl"
path = "data/alerts.jsonl"
{notifiers}
"""


def webhook(url: str, extra: str = "") -> str:
    """The [[notifiers]] table of a webhook channel named "hook"."""
    return f"""
[[notifiers]]
name = "hook"
kind = "webhook"
url = "{url}"
{extra}"""


class Hook:
    """A webhook receiver whose answer the test can change."""

    def __init__(self, server):
        self.status = 200
        self.received: list[dict] = []
        self.lock = threading.Lock()
        server.route("/hook", handler=self.handle)
        self.url = server.url("/hook")

    def handle(self, request):
        with self.lock:
            if self.status == 200:
                self.received.append(json.loads(request.body))
            return Reply(self.status, {"Content-Type": "text/plain"}, b"status")


@pytest.fixture
def summit_feed(http_server):
    wire = Site(http_server, "Asia Wire", "/wire")
    story = Story.from_file("kishida-summit", PAIRS / "en_original.txt")
    return wire.feed("/rss.xml", rss20([(story, wire.publish(story))]), "application/rss+xml")


def test_channel_down_keeps_alert_pending_and_a_later_pass_delivers_it(project, http_server,
                                                                       summit_feed):
    hook = Hook(http_server)
    hook.status = 503
    project.write(config(summit_feed, webhook(hook.url, 'secret = "topsecret"'),
                         ["archive", "hook"]))

    first = project.cli("check-now", "--json")

    assert first.code == 1                              # a delivery failed
    assert first.json()["alerts"] == 1
    assert (first.json()["delivered"], first.json()["failed_deliveries"]) == (1, 1)
    assert len(project.alerts()) == 1                   # the archive got it
    [pending] = project.cli("alerts", "list", "--pending", "--json").json()
    states = {d["notifier"]: d for d in pending["deliveries"]}
    assert states["archive"]["state"] == "sent"
    assert states["hook"]["state"] == "pending" and "503" in states["hook"]["last_error"]

    # The channel is back before the failure's backoff ends: check-now sends at once.
    hook.status = 200
    second = project.cli("check-now", "--json")

    assert second.code == 0
    assert (second.json()["delivered"], second.json()["alerts"]) == (1, 0)
    assert [r["title"] for r in hook.received] == [pending["title"]]
    assert project.cli("alerts", "list", "--pending", "--json").json() == []
    assert len(project.alerts()) == 1                   # the archive did not get it twice


def test_the_daemon_retries_a_failed_delivery_only_after_its_backoff(project, http_server,
                                                                     summit_feed):
    import asyncio

    from monitor.config import load_config
    from monitor.delivery.outbox import deliver_pending
    from monitor.runtime import Runtime
    from storage import open_store

    hook = Hook(http_server)
    hook.status = 500
    project.write(config(summit_feed, webhook(hook.url), ["hook"]))
    project.cli("check-now")
    attempts = len(http_server.requests_for("/hook"))
    hook.status = 200

    async def daemon_pass(conf, store):          # what `run` does every 30 s
        async with Runtime(conf) as runtime:
            return await deliver_pending(store, runtime.notifiers)

    conf = load_config(project.config)
    store = open_store(f"sqlite:///{project.path}/data/monitor.db")
    try:
        stats = asyncio.run(daemon_pass(conf, store))
    finally:
        store.close()

    assert stats.delivered == 0
    assert len(http_server.requests_for("/hook")) == attempts
    [pending] = project.cli("alerts", "list", "--pending", "--json").json()
    assert pending["deliveries"][0]["next_attempt"] is not None
    # `check-now` delivers everything pending, whatever its backoff.
    assert project.cli("check-now").code == 0
    assert len(hook.received) == 1


def test_permanent_refusal_is_recorded_and_not_retried(project, http_server, summit_feed):
    hook = Hook(http_server)
    hook.status = 410
    project.write(config(summit_feed, webhook(hook.url), ["hook"]))

    assert project.cli("check-now").code == 1
    [alert] = project.cli("alerts", "list", "--json").json()
    assert alert["deliveries"][0]["state"] == "failed"
    assert "410" in alert["deliveries"][0]["last_error"]
    assert project.cli("alerts", "list", "--pending", "--json").json() == []
    requests = len(http_server.requests_for("/hook"))
    project.cli("check-now")
    assert len(http_server.requests_for("/hook")) == requests


def test_email_alerts_thread_follow_ups_on_one_story(project, http_server, smtp):  # noqa: F811
    wire = Site(http_server, "Asia Wire", "/wire")
    daily = Site(http_server, "The Daily Courier", "/daily")
    original = Story.from_file("kishida-summit", PAIRS / "en_original.txt")
    rewrite = Story.from_file("tokyo-renews-offer", PAIRS / "en_rewrite.txt")
    wire.feed("/rss.xml", rss20([(original, wire.publish(original))]), "application/rss+xml")
    emails = f"""
[[notifiers]]
name = "desk-email"
kind = "email"
host = "127.0.0.1"
port = {smtp.port}
security = "none"
from = "monitor@example.org"
to = ["desk@example.org"]
"""
    project.write(config(wire.url("/rss.xml"), emails, ["desk-email"]))
    assert project.cli("check-now").code == 0
    daily.feed("/rss.xml", rss20([(rewrite, daily.publish(rewrite))]), "application/rss+xml")
    project.write(config(wire.url("/rss.xml"), emails, ["desk-email"]).replace(
        "[[rules]]", f'[[sources]]\nname = "daily"\nurl = "{daily.url("/rss.xml")}"\n\n[[rules]]'))
    assert project.cli("check-now").code == 0

    (_, _, first), (_, _, second) = smtp.received
    assert original.title in first["Subject"] and "summit" in first["Subject"]
    assert second["In-Reply-To"] == first["Message-ID"]
    assert first["Message-ID"] in second["References"]
    text = second.get_body(("plain",)).get_content()
    assert rewrite.title in text and daily.url("/news/tokyo-renews-offer") in text


def test_slack_token_mode_threads_follow_ups_and_the_token_stays_secret(project, http_server,
                                                                          monkeypatch):
    with FakeSlack() as slack:
        monkeypatch.setenv("SLACK_BOT_TOKEN", TOKEN)
        wire = Site(http_server, "Asia Wire", "/wire")
        original = Story.from_file("kishida-summit", PAIRS / "en_original.txt")
        rewrite = Story.from_file("tokyo-renews-offer", PAIRS / "en_rewrite.txt",
                                  guid="rewrite")
        wire.feed("/rss.xml", rss20([(original, wire.publish(original))]), "application/rss+xml")
        slack_conf = f"""
[[notifiers]]
name = "desk-slack"
kind = "slack"
token = "${{SLACK_BOT_TOKEN}}"
channel = "#korea-desk"
api_base = "{slack.api_base}"
"""
        project.write(config(wire.url("/rss.xml"), slack_conf, ["desk-slack"]))
        assert project.cli("check-now").code == 0
        wire.feed("/rss.xml", rss20([(rewrite, wire.publish(rewrite)),
                                     (original, wire.url("/news/kishida-summit"))]),
                  "application/rss+xml")
        result = project.cli("-v", "check-now")
        assert result.code == 0

        posts = [r.json for r in slack.requests if r.path.endswith("chat.postMessage")]
        assert len(posts) == 2
        assert "thread_ts" not in posts[0]
        assert posts[1]["thread_ts"]
        assert TOKEN not in result.err and TOKEN not in result.out


def test_notify_test_sends_a_sample_through_one_channel(project, http_server, summit_feed):
    hook = Hook(http_server)
    project.write(config(summit_feed, webhook(hook.url), ["hook"]))

    result = project.cli("notify", "test", "hook")

    assert result.code == 0, result.err
    assert len(hook.received) == 1 and hook.received[0]["rule"] == "notify-test"
    assert project.cli("notify", "test", "nobody").code == 2


def test_notify_test_reports_a_broken_channel_without_its_secrets(project, summit_feed,
                                                                  monkeypatch):
    monkeypatch.setenv("SMTP_PASSWORD", "hunter2-very-secret")
    project.write(config(summit_feed, f"""
[[notifiers]]
name = "desk-email"
kind = "email"
host = "127.0.0.1"
port = {closed_port()}
security = "none"
username = "monitor"
password = "${{SMTP_PASSWORD}}"
from = "monitor@example.org"
to = ["desk@example.org"]
""", ["desk-email"]))

    result = project.cli("notify", "test", "desk-email")

    assert result.code == 1
    assert "desk-email" in result.err
    assert "hunter2-very-secret" not in result.err + result.out


def test_webhook_to_a_private_address_is_refused_by_default(project, http_server, summit_feed):
    hook = Hook(http_server)
    project.write(config(summit_feed, webhook(hook.url), ["hook"]).replace(
        "allow_private_networks = true", "allow_private_networks = false"))

    result = project.cli("notify", "test", "hook")

    assert result.code == 1
    assert "blocked" in result.err and "loopback" in result.err
    assert http_server.requests_for("/hook") == []
