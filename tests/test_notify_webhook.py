"""Webhook notifier against a real HTTP server on loopback."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from monitor.delivery.notifiers.webhook import WebhookNotifier
from monitor.errors import ConfigError, DeliveryError
from monitor.models import AlertRecord
from monitor.sources.fetch import Fetcher, FetchPolicy
from tests.conftest import make_alert

SECRET = "whsec-do-not-leak-42"


def alert(**changes) -> AlertRecord:
    values = dict(url="https://news.example/summit", title="岸田首相、日朝首脳会談に意欲 & more",
                  matched=["Kishida", "summit"], snippet="Kishida wants a summit.")
    return make_alert(**{**values, **changes})


class Receiver:
    """Records each POST; answers with ``status`` (and ``headers``) after ``delay`` s."""

    def __init__(self):
        self.requests: list[tuple[str, dict, bytes]] = []
        self.status, self.headers, self.delay = 204, {}, 0.0

    def __enter__(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.requests.append((self.path, dict(self.headers.items()), body))
                time.sleep(receiver.delay)
                self.send_response(receiver.status)
                for name, value in receiver.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]:d}/hooks/monitor-secret-path"


@pytest.fixture
def receiver():
    with Receiver() as r:
        yield r


def run(options: dict, scenario):
    async def main():
        async with Fetcher(FetchPolicy(allow_private_networks=True)) as fetcher:
            return await scenario(WebhookNotifier.from_config("hook", options, http=fetcher))
    return asyncio.run(main())


def failure(options: dict) -> DeliveryError:
    with pytest.raises(DeliveryError) as info:
        run(options, lambda n: n.send(alert()))
    return info.value


def verify(secret: str, body: bytes, header: str) -> bool:
    """What a receiver does (the README's snippet)."""
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header)


def test_posts_signed_alert_record(receiver):
    before = int(time.time())
    receipt = run({"url": receiver.url, "secret": SECRET}, lambda n: n.send(alert()))
    assert receipt == {"status": 204}
    [(path, headers, body)] = receiver.requests
    assert path == "/hooks/monitor-secret-path"
    assert headers["Content-Type"] == "application/json; charset=utf-8"
    assert json.loads(body.decode("utf-8")) == alert().to_dict()
    assert "岸田首相" in body.decode("utf-8")        # UTF-8, not \u escapes
    assert verify(SECRET, body, headers["X-Monitor-Signature"])
    assert not verify("another secret", body, headers["X-Monitor-Signature"])
    assert headers["X-Monitor-Delivery"] == "a1"
    assert before <= int(headers["X-Monitor-Timestamp"]) <= time.time() + 1


def test_without_secret_there_is_no_signature(receiver):
    run({"url": receiver.url}, lambda n: n.send(alert()))
    assert "X-Monitor-Signature" not in receiver.requests[0][1]


def test_custom_headers_are_sent(receiver):
    run({"url": receiver.url, "headers": {"Authorization": "Bearer abc"}},
        lambda n: n.send(alert()))
    assert receiver.requests[0][1]["Authorization"] == "Bearer abc"


def test_digest(receiver):
    alerts = [alert(alert_id="1"), alert(alert_id="2", story_id="s2")]
    run({"url": receiver.url, "secret": SECRET}, lambda n: n.send_digest(alerts))
    [(_, headers, body)] = receiver.requests
    assert json.loads(body) == {"digest": True, "alerts": [a.to_dict() for a in alerts]}
    assert verify(SECRET, body, headers["X-Monitor-Signature"])
    assert headers["X-Monitor-Delivery"].startswith("digest-")


@pytest.mark.parametrize("status", [200, 201, 202, 204])
def test_2xx_is_delivered(receiver, status):
    receiver.status = status
    assert run({"url": receiver.url}, lambda n: n.send(alert())) == {"status": status}


@pytest.mark.parametrize("status, headers, permanent, retry_after", [
    (429, {"Retry-After": "17"}, False, 17),
    (500, {}, False, None),
    (503, {"Retry-After": "5"}, False, 5),
    (408, {}, False, None),
    (400, {}, True, None),
    (401, {}, True, None),
    (404, {}, True, None),
    (410, {}, True, None),
    (301, {"Location": "https://elsewhere.example/"}, True, None),
    (302, {}, True, None),
])
def test_error_statuses(receiver, status, headers, permanent, retry_after):
    receiver.status, receiver.headers = status, headers
    error = failure({"url": receiver.url, "secret": SECRET})
    assert error.permanent is permanent
    assert error.retry_after == retry_after
    assert f"HTTP {status}" in str(error)
    assert len(receiver.requests) == 1           # one attempt per call


def test_timeout_is_transient(receiver):
    receiver.delay = 2
    error = failure({"url": receiver.url, "timeout": "0.3s"})
    assert not error.permanent


def test_url_and_secret_never_appear_in_errors(receiver):
    receiver.status = 404
    not_found = failure({"url": receiver.url, "secret": SECRET})
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    down = failure({"url": f"http://127.0.0.1:{closed}/hooks/monitor-secret-path",
                    "secret": SECRET})
    assert not down.permanent
    notifier = WebhookNotifier.from_config("hook", {"url": receiver.url, "secret": SECRET})
    for text in (str(not_found), str(down), repr(down), repr(notifier)):
        assert "monitor-secret-path" not in text and SECRET not in text
    for error in (not_found, down):
        assert error.__cause__ is None and error.__context__ is None


@pytest.mark.parametrize("options, problem", [
    ({}, "'url'"),
    ({"url": "javascript:alert(1)"}, "'url'"),
    ({"url": "https://x.example", "secret": 42}, "'secret'"),
    ({"url": "https://x.example", "headers": {"X-Monitor-Signature": "x"}}, "set by the notifier"),
    ({"url": "https://x.example", "headers": {"Bad Name": "x"}}, "header name"),
    ({"url": "https://x.example", "headers": {"X-Token": "a\r\nX-Evil: 1"}}, "control characters"),
    ({"url": "https://x.example", "timeout": "soon"}, "'timeout'"),
    ({"url": "https://x.example", "retries": 3}, "unknown key 'retries'"),
])
def test_config_errors(options, problem):
    with pytest.raises(ConfigError, match="notifier 'hook'") as info:
        WebhookNotifier.from_config("hook", options)
    assert problem in str(info.value)
