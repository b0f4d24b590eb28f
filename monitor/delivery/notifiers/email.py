"""Email notifier: one multipart/alternative message per alert, over SMTP.

smtplib is blocking, so each delivery runs in a worker thread. One call is one
attempt: connect, (STARTTLS), (AUTH), send, quit. SMTP replies decide whether
a failure is permanent: 5xx is, 4xx and lost connections are not.
"""

from __future__ import annotations

import asyncio
import base64
import html
import ipaddress
import re
import smtplib
import ssl
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime, formataddr, getaddresses, make_msgid
from typing import Any

from monitor.delivery.notifiers import render
from monitor.delivery.notifiers.base import Notifier
from monitor.delivery.notifiers.render import Options, one_line
from monitor.errors import DeliveryError
from monitor.models import AlertRecord
from monitor.redaction import redact_error
from monitor.text.safe import UNSAFE_CHARS

_ADDR_SPEC = re.compile(r"^[^@\s<>()\[\],;:\\\"]+@[^@\s<>()\[\],;:\\\"]+\.[^@\s<>()\[\],;:\\\"]+$")
_MESSAGE_ID = re.compile(r"^<[^<>\s]{1,250}>$")
_DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "none": 25}


class EmailNotifier(Notifier):
    """Sends alerts by SMTP. Receipt: ``{"message_id": "<...>"}``."""

    kind = "email"
    threads = True

    def __init__(self, name: str, *, host: str, port: int, security: str,
                 sender: tuple[str, str], to: list[tuple[str, str]],
                 username: str | None = None, password: str | None = None,
                 timeout: float = 30.0, ssl_context: ssl.SSLContext | None = None):
        super().__init__(name)
        self.host = host
        self.port = port
        self.security = security
        self.sender = sender            # (display name, address)
        self.to = to
        self.username = username
        self._password = password
        self.timeout = timeout
        self.ssl_context = ssl_context    # None: the system trust store
        domain = sender[1].rpartition("@")[2]
        try:
            self._msgid_domain = domain.encode("idna").decode("ascii")
        except UnicodeError:
            self._msgid_domain = "news-monitor.invalid"

    def __repr__(self) -> str:
        return f"<EmailNotifier {self.name!r} {self.host}:{self.port} {self.security}>"

    @classmethod
    def from_config(cls, name: str, options: dict[str, Any], *, http: Any = None) -> EmailNotifier:
        opts = Options(name, options, {"host", "port", "security", "username", "password",
                                       "from", "to", "timeout"})
        host = opts.string("host", required=True)
        security = opts.string("security", "starttls")
        if security not in _DEFAULT_PORTS:
            raise opts.error("security", 'must be "starttls", "ssl" or "none"')
        port = opts.values.get("port", _DEFAULT_PORTS[security])
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise opts.error("port", "must be a port number (1-65535)")
        username = opts.string("username")
        password = opts.string("password")
        if bool(username) != bool(password):
            raise opts.error("username" if password else "password",
                             "is required when the other of username/password is set")
        if password and security == "none" and not _is_loopback(host):
            raise opts.error("password", 'would be sent in clear text with security = "none"; '
                                         'use "starttls" or "ssl"')
        sender = _address(opts, "from", opts.values.get("from"))
        to_value = opts.values.get("to")
        if isinstance(to_value, str):
            to_value = [to_value]
        if not isinstance(to_value, list) or not to_value:
            raise opts.error("to", "must be a non-empty list of email addresses")
        to = [_address(opts, "to", value) for value in to_value]
        return cls(name, host=host, port=port, security=security, sender=sender, to=to,
                   username=username, password=password,
                   timeout=opts.duration("timeout", 30.0))

    # --- delivery -------------------------------------------------------------

    async def send(self, alert: AlertRecord, *, thread: dict | None = None) -> dict:
        return await self._send(self.build_message(alert, thread=thread))

    async def send_digest(self, alerts: list[AlertRecord]) -> dict:
        if not alerts:
            return {}
        return await self._send(self.build_digest(alerts))

    async def _send(self, msg: EmailMessage) -> dict:
        error: DeliveryError | None = None
        try:
            refused = await asyncio.to_thread(self._deliver, msg)
        except (smtplib.SMTPException, OSError) as exc:
            error = self._failure(exc)
        if error is not None:
            # Raised out here, with no __context__: smtplib's exception may echo
            # what we sent (AUTH included) and would show in a logged traceback.
            raise error
        receipt: dict = {"message_id": msg["Message-ID"]}
        if refused:
            receipt["refused"] = sorted(refused)
        return receipt

    def _deliver(self, msg: EmailMessage) -> dict:
        """One SMTP session (blocking). Returns the recipients refused, if some were
        accepted; raises when none were."""
        if self.security == "ssl":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout,
                                                  context=self._context())
        else:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        try:
            smtp.ehlo()
            if self.security == "starttls":
                smtp.starttls(context=self._context())
                smtp.ehlo()
            if self.username and self._password:
                smtp.login(self.username, self._password)
            refused = smtp.send_message(msg, from_addr=self.sender[1],
                                        to_addrs=[addr for _, addr in self.to])
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                pass  # the message was accepted; a rude goodbye changes nothing
            return refused
        finally:
            smtp.close()

    def _context(self) -> ssl.SSLContext:
        return self.ssl_context or ssl.create_default_context()

    def _failure(self, exc: BaseException) -> DeliveryError:
        where = f"email {self.name!r}"
        if isinstance(exc, smtplib.SMTPRecipientsRefused):
            codes = [code for code, _ in exc.recipients.values()]
            detail = "; ".join(f"{addr}: {code} {self._clean(reply)}"
                               for addr, (code, reply) in exc.recipients.items())
            return DeliveryError(f"{where}: every recipient refused ({detail})",
                                 permanent=bool(codes) and all(c >= 500 for c in codes))
        if isinstance(exc, smtplib.SMTPResponseException):
            # Auth failures, refused sender, refused data, refused greeting.
            code = exc.smtp_code
            return DeliveryError(f"{where}: server answered {code} {self._clean(exc.smtp_error)}",
                                 permanent=500 <= code < 600)
        if isinstance(exc, smtplib.SMTPNotSupportedError):
            return DeliveryError(f"{where}: {self._clean(exc)}", permanent=True)
        if isinstance(exc, ssl.SSLCertVerificationError):
            # Not permanent: a renewed certificate fixes it, and the alert must survive.
            return DeliveryError(f"{where}: TLS certificate not trusted: "
                                 f"{self._clean(exc.verify_message)}", permanent=False)
        if isinstance(exc, smtplib.SMTPServerDisconnected):
            return DeliveryError(f"{where}: connection closed by the server", permanent=False)
        if isinstance(exc, (TimeoutError, ConnectionError)):
            problem = "timed out" if isinstance(exc, TimeoutError) else "connection failed"
            return DeliveryError(f"{where}: {problem} ({self.host}:{self.port}): "
                                 f"{self._clean(exc)}", permanent=False)
        return DeliveryError(f"{where}: {type(exc).__name__}: {self._clean(exc)}",
                             permanent=False)

    def _clean(self, text: Any) -> str:
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        return redact_error(text, self._secrets())

    def _secrets(self) -> list[str]:
        """The password as it could come back in a server's echo of AUTH."""
        if not self._password:
            return []
        user = self.username or ""
        encoded = [
            f"\0{user}\0{self._password}", self._password,
        ]
        return [self._password] + [base64.b64encode(s.encode()).decode() for s in encoded]

    # --- messages -------------------------------------------------------------

    def _new_message(self, subject: str) -> EmailMessage:
        msg = EmailMessage(policy=SMTP_POLICY)
        msg["Subject"] = subject
        msg["From"] = formataddr(self.sender)
        msg["To"] = ", ".join(formataddr(pair) for pair in self.to)
        msg["Date"] = format_datetime(datetime.now(UTC))
        msg["Message-ID"] = make_msgid(domain=self._msgid_domain)
        msg["Auto-Submitted"] = "auto-generated"   # RFC 3834: no auto-replies, please
        return msg

    def build_message(self, alert: AlertRecord, *, thread: dict | None = None) -> EmailMessage:
        """Subject ``[rule] headline``; a text and an HTML part."""
        msg = self._new_message(f"[{one_line(alert.rule, 80)}] {render.headline(alert)}")
        parent = (thread or {}).get("message_id")
        if isinstance(parent, str) and _MESSAGE_ID.match(parent):
            msg["In-Reply-To"] = parent
            msg["References"] = parent
        msg.set_content(_alert_text(alert, self.timezone))
        msg.add_alternative(_html_page(_alert_html(alert, self.timezone, heading="h2")),
                            subtype="html")
        return msg

    def build_digest(self, alerts: list[AlertRecord]) -> EmailMessage:
        stories = render.group_by_story(alerts)
        title = (f"News monitor digest: {_count(len(alerts), 'alert')} "
                 f"on {_count(len(stories), 'story', 'stories')}")
        msg = self._new_message(title)
        text = [title, ""]
        page = [f"<h1>{html.escape(title)}</h1>"]
        for number, story in enumerate(stories, 1):
            story_title = f"Story {number}: {render.headline(story[0])}"
            text += ["=" * 8 + " " + story_title, ""]
            page.append(f"<h2>{html.escape(story_title)}</h2>")
            for alert in story:
                text += ["  " + line if line else ""
                         for line in _alert_text(alert, self.timezone).splitlines()]
                text.append("")
                page.append(_alert_html(alert, self.timezone, heading="h3"))
        msg.set_content("\n".join(text))
        msg.add_alternative(_html_page("\n".join(page)), subtype="html")
        return msg


# --- rendering ------------------------------------------------------------------

def _details(alert: AlertRecord, zone: str) -> list[tuple[str, str]]:
    rows = [("Source", one_line(alert.source, 120)),
            ("Published", render.published_text(alert.published, zone)),
            ("Rule", one_line(alert.rule, 80)),
            ("Matched", render.matched_text(alert))]
    return [(label, value) for label, value in rows if value]


def _alert_text(alert: AlertRecord, zone: str = "UTC") -> str:
    lines = [render.headline(alert), ""]
    lines += [f"{label}: {value}" for label, value in _details(alert, zone)]
    if alert.followup:
        lines.append("Follow-up on a story already alerted.")
    snippet = "".join(piece for piece, _ in render.snippet_pieces(alert))
    if snippet:
        lines += ["", snippet]
    link = render.safe_link(alert.url)
    if link:
        lines += ["", link]
    return "\n".join(lines) + "\n"


def _alert_html(alert: AlertRecord, zone: str = "UTC", *, heading: str) -> str:
    link = render.safe_link(alert.url)
    title = html.escape(render.headline(alert))
    if link:
        title = f'<a href="{html.escape(link, quote=True)}">{title}</a>'
    parts = [f"<{heading}>{title}</{heading}>"]
    details = " &middot; ".join(f"{label}: {html.escape(value)}"
                                for label, value in _details(alert, zone))
    parts.append(f'<p style="color:#555">{details}</p>')
    if alert.followup:
        parts.append("<p><em>Follow-up on a story already alerted.</em></p>")
    snippet = "".join(f"<mark>{html.escape(piece)}</mark>" if hit else html.escape(piece)
                      for piece, hit in render.snippet_pieces(alert))
    if snippet:
        parts.append(f"<p>{snippet}</p>")
    if link:
        escaped = html.escape(link, quote=True)
        parts.append(f'<p><a href="{escaped}">{escaped}</a></p>')
    return "\n".join(parts)


def _html_page(body: str) -> str:
    return ('<!DOCTYPE html>\n<html><head><meta charset="utf-8"></head><body>\n'
            f"{body}\n</body></html>\n")


def _count(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


def _address(opts: Options, key: str, value: Any) -> tuple[str, str]:
    """("Display Name", "addr@example.org") from one configured address."""
    if not isinstance(value, str) or not value.strip():
        raise opts.error(key, "must be an email address")
    if UNSAFE_CHARS.search(value):
        raise opts.error(key, "must not contain control characters or line breaks")
    pairs = getaddresses([value])
    if len(pairs) != 1 or not _ADDR_SPEC.match(pairs[0][1]):
        raise opts.error(key, f"is not a single valid email address: {value!r}")
    return pairs[0]


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
