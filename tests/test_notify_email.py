"""Email notifier against a real SMTP server (aiosmtpd) on loopback."""

from __future__ import annotations

import asyncio
import base64
import email
import email.policy
import shutil
import socket
import socketserver
import ssl
import subprocess
import threading

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from monitor.delivery.notifiers.email import EmailNotifier
from monitor.errors import ConfigError, DeliveryError
from monitor.models import AlertRecord
from tests.conftest import make_alert

PASSWORD = "s3cret-Pa55word"


def alert(**changes) -> AlertRecord:
    return make_alert(**changes)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Inbox:
    """aiosmtpd handler: keeps what it accepts; can be told to refuse."""

    def __init__(self):
        self.received: list[tuple[str, list[str], email.message.EmailMessage]] = []
        self.rcpt_reply: str | None = None
        self.data_reply: str | None = None

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.data_reply:
            return self.data_reply
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        self.received.append((envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and auth_data.password == PASSWORD.encode()
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def smtp():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port(),
                            authenticator=authenticator, auth_require_tls=False)
    controller.start()
    inbox.port = controller.port
    yield inbox
    controller.stop()


def options(port: int, **extra) -> dict:
    return {"host": "127.0.0.1", "port": port, "security": "none",
            "from": "News Monitor <monitor@example.org>",
            "to": ["desk@example.org", "Night Desk <night@example.org>"], "timeout": 5, **extra}


def deliver(notifier: EmailNotifier, record: AlertRecord | None = None, thread=None) -> dict:
    return asyncio.run(notifier.send(record or alert(), thread=thread))


def send(opts: dict, record: AlertRecord | None = None, thread=None) -> dict:
    return deliver(EmailNotifier.from_config("desk", opts), record, thread)


def failure(opts: dict, record: AlertRecord | None = None) -> DeliveryError:
    with pytest.raises(DeliveryError) as info:
        send(opts, record)
    return info.value


# --- the message ----------------------------------------------------------------

def test_alert_message(smtp):
    receipt = send(options(smtp.port))
    [(mail_from, rcpt_tos, msg)] = smtp.received
    assert mail_from == "monitor@example.org"
    assert rcpt_tos == ["desk@example.org", "night@example.org"]
    assert msg["Subject"] == "[kishida-kim] Kishida seeks summit with Kim Jong Un"
    assert msg["From"] == "News Monitor <monitor@example.org>"
    assert receipt == {"message_id": msg["Message-ID"]}
    assert msg["Message-ID"].endswith("@example.org>")
    assert msg["In-Reply-To"] is None
    assert msg.get_content_type() == "multipart/alternative"
    text = msg.get_body(("plain",)).get_content()
    page = msg.get_body(("html",)).get_content()
    for part in (text, page):
        for expected in ("Kishida seeks summit with Kim Jong Un", "Wire", "2024-05-01 00:30 UTC",
                         "kishida-kim", "Kishida, Kim Jong Un, summit"):
            assert expected in part
    assert "https://news.example/2024/05/summit?id=1&lang=en" in text
    assert "Prime Minister Kishida said a summit with Kim Jong-un was possible." in text
    assert ("Prime Minister <mark>Kishida</mark> said a <mark>summit</mark> with "
            "<mark>Kim Jong-un</mark> was possible.") in page
    assert '<a href="https://news.example/2024/05/summit?id=1&amp;lang=en">' in page


def test_follow_up_is_threaded(smtp):
    notifier = EmailNotifier.from_config("desk", options(smtp.port))
    first = deliver(notifier)
    second = deliver(notifier, alert(alert_id="a2", followup=True), thread=first)
    one, two = (msg for _, _, msg in smtp.received)
    assert second["message_id"] != first["message_id"]
    assert two["In-Reply-To"] == first["message_id"] == one["Message-ID"]
    assert two["References"] == first["message_id"]


def test_hostile_title_cannot_add_headers(smtp):
    hostile = alert(title="Summit\r\nBcc: spy@evil.example\r\nX-Injected: 1",
                    source="Wire\nCc: spy2@evil.example", rule="kishida-kim")
    send(options(smtp.port), hostile)
    [(_, rcpt_tos, msg)] = smtp.received
    assert msg["Bcc"] is None and msg["Cc"] is None and msg["X-Injected"] is None
    assert rcpt_tos == ["desk@example.org", "night@example.org"]
    assert msg["Subject"] == "[kishida-kim] Summit Bcc: spy@evil.example X-Injected: 1"
    assert set(msg.keys()) == {"Subject", "From", "To", "Date", "Message-ID", "Auto-Submitted",
                               "MIME-Version", "Content-Type"}


@pytest.mark.parametrize("title", ["Summit\u2028Bcc: a@evil.example",
                                   "Summit\x85Bcc: a@evil.example",
                                   "Summit\rBcc: a@evil.example", "Summit\x0bBcc: a@evil.example"])
def test_other_line_breaks_cannot_add_headers(smtp, title):
    send(options(smtp.port), alert(title=title))
    [(_, _, msg)] = smtp.received
    assert msg["Bcc"] is None


def test_html_is_escaped_and_javascript_is_not_a_link(smtp):
    hostile = alert(title='<script>alert(1)</script> "quoted" & co', url="javascript:alert(1)",
                    snippet="<img src=x onerror=alert(1)> Kishida")
    send(options(smtp.port), hostile)
    [(_, _, msg)] = smtp.received
    page = msg.get_body(("html",)).get_content()
    text = msg.get_body(("plain",)).get_content()
    assert "<script>" not in page and "<img" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &quot;quoted&quot; &amp; co" in page
    assert "&lt;img src=x onerror=alert(1)&gt; <mark>Kishida</mark>" in page
    assert "javascript:" not in page and "javascript:" not in text
    assert "<a " not in page


def test_digest_groups_by_story(smtp):
    alerts = [alert(alert_id="1", story_id="s1", title="First on summit"),
              alert(alert_id="2", story_id="s2", title="Abductees' families speak"),
              alert(alert_id="3", story_id="s1", title="Summit follow-up", followup=True)]
    notifier = EmailNotifier.from_config("desk", options(smtp.port))
    receipt = asyncio.run(notifier.send_digest(alerts))
    [(_, _, msg)] = smtp.received
    assert receipt == {"message_id": msg["Message-ID"]}
    assert msg["Subject"] == "News monitor digest: 3 alerts on 2 stories"
    text = msg.get_body(("plain",)).get_content()
    page = msg.get_body(("html",)).get_content()
    positions = [text.index(t) for t in ("Story 1: First on summit", "Summit follow-up",
                                         "Story 2: Abductees' families speak")]
    assert positions == sorted(positions)
    assert page.count("<mark>Kishida</mark>") == 3
    assert "Abductees&#x27; families speak" in page


# --- failures -----------------------------------------------------------------

def test_server_down_is_transient():
    error = failure(options(free_port()))
    assert not error.permanent


def test_451_is_transient(smtp):
    smtp.data_reply = "451 4.3.0 try later"
    error = failure(options(smtp.port))
    assert not error.permanent and "451" in str(error)


def test_550_is_permanent(smtp):
    smtp.rcpt_reply = "550 5.1.1 no such user"
    error = failure(options(smtp.port))
    assert error.permanent and "550" in str(error)


def test_auth(smtp):
    send(options(smtp.port, username="monitor", password=PASSWORD))
    assert len(smtp.received) == 1
    error = failure(options(smtp.port, username="monitor", password=PASSWORD + "-wrong"))
    assert error.permanent and "535" in str(error)
    assert PASSWORD not in str(error) and PASSWORD not in repr(error)


class Scripted(socketserver.StreamRequestHandler):
    """A raw SMTP server misbehaving in ways aiosmtpd will not: it hangs up in the
    middle of DATA, and its AUTH refusals echo the credentials back."""

    auth = "PLAIN"

    def handle(self):
        def say(line: str) -> None:
            self.wfile.write(line.encode() + b"\r\n")

        say("220 scripted ESMTP")
        while line := self.rfile.readline().decode("ascii", "replace").strip():
            verb = line.split(" ", 1)[0].upper()
            if verb == "EHLO":
                say("250-scripted")
                say(f"250 AUTH {self.auth}")
            elif verb == "AUTH" and self.auth == "LOGIN":
                say("334 VXNlcm5hbWU6")
                user = self.rfile.readline().decode().strip()
                say("334 UGFzc3dvcmQ6")
                secret = self.rfile.readline().decode().strip()
                decoded = base64.b64decode(secret).decode()
                say(f"535 5.7.8 bad credentials {user} {secret} ({decoded})")
            elif verb == "AUTH":
                payload = line.split(" ")[-1]
                say(f"535 5.7.8 bad credentials {payload} ({base64.b64decode(payload)!r})")
            elif verb == "DATA":
                say("354 go ahead")
                self.rfile.readline()
                return                      # hang up mid-message
            elif verb == "QUIT":
                say("221 bye")
                return
            else:
                say("250 OK")


@pytest.fixture
def scripted():
    def start(auth: str = "PLAIN") -> int:
        handler = type("Handler", (Scripted,), {"auth": auth})
        server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        servers.append(server)
        return server.server_address[1]

    servers: list[socketserver.TCPServer] = []
    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_connection_dropped_mid_data_is_transient(scripted):
    error = failure(options(scripted()))
    assert not error.permanent


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_password_is_scrubbed_from_echoed_replies(scripted, mechanism):
    error = failure(options(scripted(mechanism), username="monitor", password=PASSWORD))
    assert error.permanent and "535" in str(error)
    plain = base64.b64encode(f"\0monitor\0{PASSWORD}".encode()).decode()
    login = base64.b64encode(PASSWORD.encode()).decode()
    for text in (str(error), repr(error)):
        assert PASSWORD not in text and plain not in text and login not in text
    assert error.__cause__ is None and error.__context__ is None   # not even in a traceback


# --- TLS ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    if not shutil.which("openssl"):
        pytest.skip("openssl is not installed: cannot make a self-signed certificate")
    where = tmp_path_factory.mktemp("tls")
    cert, key = where / "cert.pem", where / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


@pytest.fixture
def tls_smtp(certificate):
    cert, key = certificate
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port(),
                            tls_context=server_context, require_starttls=True,
                            authenticator=authenticator)
    controller.start()
    inbox.port = controller.port
    yield inbox
    controller.stop()


def test_starttls_with_auth(tls_smtp, certificate):
    notifier = EmailNotifier.from_config(
        "desk", options(tls_smtp.port, security="starttls", username="monitor", password=PASSWORD))
    notifier.ssl_context = ssl.create_default_context(cafile=str(certificate[0]))
    deliver(notifier)
    assert len(tls_smtp.received) == 1


def test_untrusted_certificate_is_refused(tls_smtp):
    error = failure(options(tls_smtp.port, security="starttls"))
    assert not error.permanent and "certificate" in str(error)
    assert tls_smtp.received == []


# --- configuration ------------------------------------------------------------

@pytest.mark.parametrize("change, problem", [
    ({"colour": "red"}, "unknown key 'colour'"),
    ({"host": None}, "'host'"),
    ({"from": "not an address"}, "'from'"),
    ({"from": "a@example.org, b@example.org"}, "'from'"),
    ({"to": []}, "'to'"),
    ({"to": ["desk@example.org", "nobody"]}, "'to'"),
    ({"to": ["desk@example.org\r\nBcc: x@evil.example"]}, "'to'"),
    ({"security": "tls"}, "'security'"),
    ({"port": "25"}, "'port'"),
    ({"username": "monitor"}, "'password'"),
    ({"host": "smtp.example.org", "username": "u", "password": "p"}, "clear text"),
    ({"timeout": "forever"}, "'timeout'"),
])
def test_config_errors(change, problem):
    opts = {k: v for k, v in {**options(25), **change}.items() if v is not None}
    with pytest.raises(ConfigError, match="notifier 'desk'") as info:
        EmailNotifier.from_config("desk", opts)
    assert problem in str(info.value)


def test_config_defaults():
    notifier = EmailNotifier.from_config("desk", {
        "host": "smtp.example.org", "from": "monitor@example.org", "to": "desk@example.org",
        "mode": "digest", "schedule": "0 8 * * *", "timezone": "Asia/Tokyo"})
    assert (notifier.port, notifier.security, notifier.timeout) == (587, "starttls", 30.0)
    assert "password" not in repr(notifier)


def test_implicit_tls(certificate):
    cert, key = certificate
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port(),
                            ssl_context=server_context)
    controller.start()
    try:
        notifier = EmailNotifier.from_config("desk", options(controller.port, security="ssl"))
        notifier.ssl_context = ssl.create_default_context(cafile=str(cert))
        deliver(notifier)
    finally:
        controller.stop()
    assert len(inbox.received) == 1
