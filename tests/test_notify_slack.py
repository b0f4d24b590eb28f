"""Slack notifier against a loopback fake that speaks Slack's wire format."""

from __future__ import annotations

import asyncio
import json
import socket

import pytest

from monitor.delivery.notifiers.slack import SlackNotifier
from monitor.errors import ConfigError, DeliveryError
from monitor.models import AlertRecord
from monitor.sources.fetch import Fetcher, FetchPolicy
from tests.conftest import make_alert
from tests.fake_slack import TOKEN, FakeSlack

HOSTILE_TITLE = "<!channel> <@U1> <https://evil.example|x> & co"


def alert(**changes) -> AlertRecord:
    return make_alert(**changes)


def run(options: dict, scenario):
    """Build the notifier on a real Fetcher and run ``scenario(notifier)``."""
    async def main():
        fetcher = Fetcher(FetchPolicy(allow_private_networks=True))
        try:
            return await scenario(SlackNotifier.from_config("desk", options, http=fetcher))
        finally:
            close = getattr(fetcher, "aclose", None)
            if close:
                await close()
    return asyncio.run(main())


def send(options: dict, record: AlertRecord, thread: dict | None = None):
    return run(options, lambda n: n.send(record, thread=thread))


def failure(options: dict, record: AlertRecord | None = None) -> DeliveryError:
    with pytest.raises(DeliveryError) as info:
        send(options, record or alert())
    return info.value


@pytest.fixture
def slack():
    with FakeSlack() as fake:
        yield fake


def webhook(slack: FakeSlack) -> dict:
    return {"webhook_url": slack.webhook_url}


def bot(slack: FakeSlack, **extra) -> dict:
    return {"token": TOKEN, "channel": "#korea-desk", "api_base": slack.api_base, **extra}


# --- configuration ------------------------------------------------------------

@pytest.mark.parametrize("options, problem", [
    ({}, "either webhook_url, or token and channel"),
    ({"webhook_url": "https://hooks.example/x", "token": "xoxb-1"}, "'token'"),
    ({"webhook_url": "https://hooks.example/x", "channel": "#a"}, "'channel'"),
    ({"token": "xoxb-1"}, "'channel'"),
    ({"channel": "#a"}, "either webhook_url"),
    ({"webhook_url": "javascript:alert(1)"}, "'webhook_url'"),
    ({"webhook_url": "https://hooks.example/x", "colour": "red"}, "unknown key 'colour'"),
    ({"token": "xoxb-1", "channel": "#a", "api_base": "ftp://x"}, "'api_base'"),
])
def test_config_errors(options, problem):
    with pytest.raises(ConfigError, match="notifier 'desk'") as info:
        SlackNotifier.from_config("desk", options)
    assert problem in str(info.value)


def test_config_never_echoes_the_webhook_url():
    secret_url = "ftp://hooks.example/services/T9/B9/SECRET"
    with pytest.raises(ConfigError) as info:
        SlackNotifier.from_config("desk", {"webhook_url": secret_url})
    assert "SECRET" not in str(info.value)


def test_scheduling_keys_are_accepted():
    SlackNotifier.from_config("desk", {"webhook_url": "https://hooks.example/x", "mode": "digest",
                                       "schedule": "0 8 * * *", "timezone": "Asia/Tokyo"})


# --- messages -----------------------------------------------------------------

def test_webhook_message_has_blocks_and_fallback_text(slack):
    assert send(webhook(slack), alert()) == {}
    [received] = slack.requests
    assert received.path == "/services/T000/B000/XXX"
    assert received.headers["Content-Type"].startswith("application/json")
    payload = received.json
    assert "Kishida seeks summit with Kim Jong Un" in payload["text"]
    blocks = payload["blocks"]
    assert [b["type"] for b in blocks] == ["section", "context", "section"]
    assert blocks[0]["text"]["text"] == ("*<https://news.example/2024/05/summit?id=1&amp;lang=en"
                                         "|Kishida seeks summit with Kim Jong Un>*")
    context = blocks[1]["elements"][0]["text"]
    for part in ("Source: Wire", "Published: 2024-05-01 00:30 UTC", "Rule: kishida-kim",
                 "Matched: Kishida, Kim Jong Un, summit"):
        assert part in context
    assert blocks[2]["text"]["text"] == ("Prime Minister *Kishida* said a *summit* with "
                                         "*Kim Jong-un* was possible.")


def test_hostile_text_cannot_mention_or_link(slack):
    hostile = alert(title=HOSTILE_TITLE, source="<!here|here>",
                    snippet="Click <https://evil.example|here> <!subteam^S1> & win")
    send(webhook(slack), hostile)
    body = slack.requests[0].body.decode()
    payload = slack.requests[0].json
    everything = json.dumps(payload)
    for raw in ("<!channel>", "<@U1>", "<https://evil.example", "<!here", "<!subteam"):
        assert raw not in everything
    assert "&lt;!channel&gt; &lt;@U1&gt; &lt;https://evil.example|x&gt; &amp; co" in \
        payload["blocks"][0]["text"]["text"]
    assert "&lt;!channel&gt;" in payload["text"]
    assert "&lt;!here|here&gt;" in payload["blocks"][1]["elements"][0]["text"]
    assert "<!" not in body


@pytest.mark.parametrize("url, expected_link", [
    ("javascript:alert(1)", None),
    ("data:text/html,hi", None),
    ("/relative/path", None),
    ("https://news.example/a|b>c", "https://news.example/a%7Cb%3Ec"),
])
def test_only_http_urls_become_links(slack, url, expected_link):
    send(webhook(slack), alert(url=url, title="T"))
    head = slack.requests[0].json["blocks"][0]["text"]["text"]
    if expected_link is None:
        assert head == "*T*"
        assert url not in json.dumps(slack.requests[0].json)
    else:
        assert head == f"*<{expected_link}|T>*"


def test_digest_groups_by_story(slack):
    alerts = [alert(alert_id="1", story_id="s1", title="First"),
              alert(alert_id="2", story_id="s2", title="Other"),
              alert(alert_id="3", story_id="s1", title="Follow-up", followup=True)]
    run(webhook(slack), lambda n: n.send_digest(alerts))
    payload = slack.requests[0].json
    assert payload["text"] == "News monitor digest: 3 alerts on 2 stories"
    sections = [b["text"]["text"] for b in payload["blocks"] if b["type"] == "section"]
    order = [next(t for t in ("First", "Other", "Follow-up") if f"|{t}>" in s)
             for s in sections[1:]]
    assert order == ["First", "Follow-up", "Other"]


def test_big_digest_stays_within_slack_limits(slack):
    alerts = [alert(alert_id=str(i), story_id=f"s{i % 30}", snippet="x & y " * 200)
              for i in range(120)]
    run(webhook(slack), lambda n: n.send_digest(alerts))
    assert len(slack.requests) == 1 and len(slack.requests[0].json["blocks"]) <= 50
    assert "more" in slack.requests[0].json["blocks"][-1]["elements"][0]["text"]


# --- bot token: threading and receipts -----------------------------------------

def test_token_mode_threads_follow_ups(slack):
    async def scenario(n: SlackNotifier):
        first = await n.send(alert())
        second = await n.send(alert(alert_id="a2", followup=True), thread=first)
        return first, second

    first, second = run(bot(slack, ), scenario)
    assert first == {"ts": "1700000000.000200", "channel": "C123"}
    assert second["ts"] != first["ts"]
    one, two = slack.requests
    assert one.path == "/api/chat.postMessage"
    assert one.headers["Authorization"] == f"Bearer {TOKEN}"
    assert one.json["channel"] == "#korea-desk" and "thread_ts" not in one.json
    assert two.json["thread_ts"] == first["ts"]
    assert two.json["blocks"] and two.json["text"]


def test_webhook_mode_ignores_thread(slack):
    send(webhook(slack), alert(), thread={"ts": "1.2", "channel": "C1"})
    assert "thread_ts" not in slack.requests[0].json


# --- failures -----------------------------------------------------------------

@pytest.mark.parametrize("mode", ["webhook", "token"])
def test_429_is_transient_with_retry_after(slack, mode):
    slack.rate_limit_next, slack.retry_after = 1, 7
    error = failure(webhook(slack) if mode == "webhook" else bot(slack))
    assert not error.permanent
    assert error.retry_after == 7


@pytest.mark.parametrize("error_code, permanent", [
    ("channel_not_found", True),
    ("not_in_channel", True),
    ("invalid_auth", True),
    ("is_archived", True),
    ("ratelimited", False),
    ("internal_error", False),
])
def test_api_ok_false_is_a_failure(slack, error_code, permanent):
    slack.api_error = error_code
    error = failure(bot(slack))
    assert error.permanent is permanent
    assert error_code in str(error)


@pytest.mark.parametrize("status, body, permanent", [
    (400, "invalid_payload", True),
    (403, "action_prohibited", True),
    (404, "channel_not_found", True),
    (410, "channel_is_archived", True),
    (500, "rollup_error", False),
    (503, "service_unavailable", False),
])
def test_webhook_error_statuses(slack, status, body, permanent):
    slack.webhook_error = (status, body)
    error = failure(webhook(slack))
    assert error.permanent is permanent
    assert str(status) in str(error)


def test_unknown_channel_is_permanent(slack):
    error = failure(bot(slack, channel="#nowhere"))
    assert error.permanent and "channel_not_found" in str(error)


def test_token_never_appears_in_errors_or_repr(slack):
    error = failure(bot(slack, token=TOKEN + "-wrong"))
    assert error.permanent and "invalid_auth" in str(error)
    notifier = SlackNotifier.from_config("desk", bot(slack))
    for text in (str(error), repr(error), repr(notifier), repr(vars(error))):
        assert "xoxb" not in text


def test_webhook_url_never_appears_in_errors(slack):
    options = {"webhook_url": slack.base_url + "/services/T000/B000/WRONG"}
    error = failure(options)                      # 404 no_service
    assert error.permanent
    with socket.socket() as s:                   # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    down = failure({"webhook_url": f"http://127.0.0.1:{closed}/services/T000/B000/SECRET"})
    assert not down.permanent
    notifier = SlackNotifier.from_config("desk", options)
    for text in (str(error), str(down), repr(notifier)):
        assert "/services/" not in text and "WRONG" not in text and "SECRET" not in text


# --- pacing -------------------------------------------------------------------

def test_at_most_one_message_per_second_per_channel(slack):
    async def scenario(n: SlackNotifier):
        await asyncio.gather(n.send(alert(alert_id="1")), n.send(alert(alert_id="2")))

    run(bot(slack), scenario)
    first, second = slack.requests
    assert second.at - first.at >= 0.95
