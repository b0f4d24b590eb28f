"""The apprise channel, against a loopback sink speaking Apprise's json:// and form://
targets, through the outbox and the command line."""

from __future__ import annotations

import asyncio
import json
from urllib.parse import parse_qs

import pytest

from monitor.delivery.notifiers.apprise import AppriseNotifier
from monitor.errors import DeliveryError
from tests.conftest import make_alert
from tests.newsroom import PAIRS, Site, Story, rss20
from tests.test_check_now import SUMMIT_QUERY

HOSTILE = make_alert(title="Kishida <script>steal()</script> **now** [click](javascript:x)"
                           " @everyone",
                     snippet="<img src=x onerror=alert(1)> @here _emphasis_")


def send(url: str, alert=HOSTILE, *, private: bool = True):
    notifier = AppriseNotifier("phones", urls=[url], allow_private_networks=private, timeout=10)
    return asyncio.run(notifier.send(alert))


def test_json_target_gets_the_alert_as_plain_text(http_server):
    http_server.route("/hook", b"ok")
    assert send(f"json://127.0.0.1:{http_server.port}/hook") == {"services": 1}
    [request] = http_server.requests
    payload = json.loads(request.body)
    assert payload["title"] == ""                 # Apprise leaves titles unescaped: unused
    lines = payload["message"].split("\n")
    assert lines[0] == ("[kishida-kim] Kishida <script>steal()</script> **now** "
                        "[click](javascript:x) @\u2060everyone")
    assert lines[1] == "Wire · 2024-05-01 00:30 UTC"
    assert lines[-1] == "https://news.example/2024/05/summit?id=1&lang=en"
    assert "@\u2060here" in payload["message"] and "@here" not in payload["message"]


def test_html_services_get_escaped_text(http_server):
    http_server.route("/hook", b"ok")
    send(f"json://127.0.0.1:{http_server.port}/hook?format=html")
    message = json.loads(http_server.requests[0].body)["message"]
    assert "<script>" not in message and "<img" not in message
    assert "&lt;script&gt;steal()&lt;/script&gt;" in message


def test_markdown_services_get_escaped_text(http_server):
    http_server.route("/hook", b"ok")
    send(f"form://127.0.0.1:{http_server.port}/hook?format=markdown")
    message = parse_qs(http_server.requests[0].body.decode())["message"][0]
    assert r"\*\*now\*\*" in message
    assert r"\[click\]\(javascript:x\)" in message
    assert r"\_emphasis\_" in message


def test_a_refusing_service_is_a_delivery_error_without_its_url(http_server):
    http_server.status("/hook", 500)
    with pytest.raises(DeliveryError) as caught:
        send(f"json://user:tok3n-in-url@127.0.0.1:{http_server.port}/hook")
    assert not caught.value.permanent
    assert "tok3n-in-url" not in str(caught.value) and "127.0.0.1" not in str(caught.value)
    assert "1 of 1 service(s) failed" in str(caught.value)


def test_a_private_address_is_refused_before_any_connection(http_server):
    http_server.route("/hook", b"ok")
    with pytest.raises(DeliveryError, match=r"URL 1: its address is refused \(loopback address"
                                            r" 127.0.0.1\)") as caught:
        send(f"json://127.0.0.1:{http_server.port}/hook", private=False)
    assert caught.value.permanent
    assert http_server.requests == []


def test_a_host_name_resolving_to_a_private_address_is_refused(http_server):
    with pytest.raises(DeliveryError, match=r"its host is refused \(loopback address"):
        send(f"json://localhost:{http_server.port}/hook", private=False)
    assert http_server.requests == []


# ---------------------------------------------------------------- through the CLI

def _config(sink_url: str, *, extra_notifier: str = "") -> str:
    return f"""
[monitor]
timeout = "10s"
per_host_delay = 0
allow_private_networks = true
workers = 1

[storage]
url = "sqlite:///data/monitor.db"

[[sources]]
name = "wire"
url = "{{feed}}"

[[rules]]
name = "summit"
query = '{SUMMIT_QUERY}'
notify = ["phones"]

[[notifiers]]
name = "phones"
kind = "apprise"
urls = ["{sink_url}"]
timeout = "10s"
{extra_notifier}
"""


def test_check_now_delivers_through_the_outbox_with_retries(project, http_server, monkeypatch):
    monkeypatch.setenv("SINK_TOKEN", "s3cret-sink-token")
    wire = Site(http_server, "Asia Wire", "/wire")
    story = Story.from_file("kishida-summit", PAIRS / "en_original.txt")
    feed = wire.feed("/rss.xml", rss20([(story, wire.publish(story))]), "application/rss+xml")
    http_server.status("/sink/s3cret-sink-token", 503)
    project.write(_config(f"json://127.0.0.1:{http_server.port}/sink/${{SINK_TOKEN}}")
                  .replace("{feed}", feed))

    first = project.cli("check-now", "--json")

    assert first.code == 1
    assert first.json()["failed_deliveries"] == 1
    [pending] = project.cli("alerts", "list", "--pending", "--json").json()
    [delivery] = pending["deliveries"]
    assert (delivery["notifier"], delivery["state"]) == ("phones", "pending")
    assert "1 of 1 service(s) failed" in delivery["last_error"]
    assert "s3cret-sink-token" not in first.out + first.err + json.dumps(pending)

    # The service comes back; the retry is due (backoff elapsed): the next pass delivers.
    http_server.route("/sink/s3cret-sink-token", b"ok")
    with project_store(project) as store:
        store._run(lambda: store._execute_count("UPDATE deliveries SET next_attempt = NULL"))
    second = project.cli("check-now", "--json")
    assert second.code == 0, second.out
    assert second.json()["delivered"] == 1
    # The secret reached the service only.
    sent = http_server.requests_for("/sink/s3cret-sink-token")[-1]
    assert story.title in json.loads(sent.body)["message"]


def test_notify_test_through_apprise(project, http_server):
    http_server.route("/sink", b"ok")
    project.write(_config(f"form://127.0.0.1:{http_server.port}/sink").replace(
        "{feed}", "https://example.org/rss"))
    result = project.cli("notify", "test", "phones")
    assert result.code == 0, result.err
    message = parse_qs(http_server.requests[0].body.decode())["message"][0]
    assert message.startswith("[notify-test] Test alert from news-monitor\n")


@pytest.mark.parametrize("urls, message", [
    ('["nosuchservice://x/y"]', "notifiers[0] 'phones': key 'urls': URL 1 (scheme "
                                "'nosuchservice') is not a URL Apprise knows"),
    ('[]', "key 'urls': must be a list of Apprise URLs"),
    ('["json://example.org/?verify=no"]', "URL 1: verify=no is refused"),
])
def test_bad_urls_are_configuration_errors(project, urls, message):
    project.write(_config("x").replace('urls = ["x"]', f"urls = {urls}").replace(
        "{feed}", "https://example.org/rss"))
    result = project.cli("validate")
    assert result.code == 2
    assert message in result.err


def project_store(project):
    from contextlib import closing

    from storage import open_store
    return closing(open_store(f"sqlite:///{project.path / 'data' / 'monitor.db'}"))
