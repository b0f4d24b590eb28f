"""Slack notifier: Block Kit messages by incoming webhook or by bot token.

With a token (``chat.postMessage``) follow-ups go into the first alert's thread
and the receipt is ``{"ts": ..., "channel": ...}``; an incoming webhook cannot
thread and its receipt is ``{}``.

Web text is escaped by Slack's own rules (``&``, ``<``, ``>``), which is what
stops "<!channel>", "<@U123>" and "<https://evil|click>" from being mentions or
links; mrkdwn objects are ``verbatim`` so nothing else in them is auto-linked.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from monitor.delivery.notifiers import render
from monitor.delivery.notifiers.base import Notifier
from monitor.delivery.notifiers.render import Options, one_line
from monitor.delivery.notifiers.webhook import post_once
from monitor.errors import ConfigError, DeliveryError
from monitor.models import AlertRecord
from monitor.redaction import redact_error

DEFAULT_API_BASE = "https://slack.com/api"
_MAX_BLOCKS = 50           # Slack's limit per message
_MAX_SECTION = 3000        # characters in a section's text
_MAX_LINK = 1500           # longer URLs are shown as text, not linked
# chat.postMessage errors worth retrying; any other "ok": false is a refusal
# (bad token, unknown channel, bad payload) that retrying will not fix.
_TRANSIENT_ERRORS = {"ratelimited", "rate_limited", "message_limit_exceeded",
                     "internal_error", "fatal_error", "service_unavailable",
                     "request_timeout"}


def escape(text: str) -> str:
    """Slack's mrkdwn escaping of untrusted text."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_link(url: Any) -> str | None:
    """A URL fit to go inside <...|...>, or None (non-http(s), too long)."""
    link = render.safe_link(url)
    if link is None:
        return None
    link = link.replace("|", "%7C").replace("<", "%3C").replace(">", "%3E")
    link = escape(link)
    return link if len(link) <= _MAX_LINK else None


def _mrkdwn(text: str) -> dict:
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def _alert_lines(alert: AlertRecord, zone: str = "UTC") -> tuple[str, str, str]:
    """(headline, details, snippet) as escaped mrkdwn."""
    title = escape(render.headline(alert))
    link = slack_link(alert.url)
    head = f"*<{link}|{title}>*" if link else f"*{title}*"
    details = [("Source", one_line(alert.source, 120)),
               ("Published", render.published_text(alert.published, zone)),
               ("Rule", one_line(alert.rule, 80)),
               ("Matched", render.matched_text(alert))]
    context = " · ".join(f"{label}: {escape(value)}" for label, value in details if value)
    if alert.followup:
        context += " · follow-up"
    # Matches start and end on word characters, so *bold* renders around them.
    snippet = "".join(f"*{escape(piece)}*" if hit else escape(piece)
                      for piece, hit in render.snippet_pieces(alert, limit=450))
    return head, context, snippet


def alert_message(alert: AlertRecord, zone: str = "UTC") -> dict:
    head, context, snippet = _alert_lines(alert, zone)
    blocks: list[dict] = [{"type": "section", "text": _mrkdwn(head)},
                          {"type": "context", "elements": [_mrkdwn(context or " ")]}]
    if snippet:
        blocks.append({"type": "section", "text": _mrkdwn(snippet)})
    text = f"[{escape(one_line(alert.rule, 80))}] {escape(render.headline(alert))}"
    link = slack_link(alert.url)
    if link:
        text += f" <{link}>"
    return {"text": text, "blocks": blocks}


def digest_message(alerts: list[AlertRecord], zone: str = "UTC") -> dict:
    stories = render.group_by_story(alerts)
    title = (f"News monitor digest: {len(alerts)} alert{'s' * (len(alerts) != 1)} on "
             f"{len(stories)} stor{'ies' if len(stories) != 1 else 'y'}")
    blocks: list[dict] = [{"type": "section", "text": _mrkdwn(f"*{title}*")}]
    shown = 0
    for story in stories:
        # Each story costs a divider plus one block per alert; keep room for the tail note.
        if len(blocks) + 2 > _MAX_BLOCKS - 1:
            break
        blocks.append({"type": "divider"})
        for alert in story:
            if len(blocks) + 1 > _MAX_BLOCKS - 1:
                break
            parts = [part for part in _alert_lines(alert, zone) if part]
            while len("\n".join(parts)) > _MAX_SECTION and len(parts) > 1:
                parts.pop()     # drop the snippet, then the details, never cut inside markup
            blocks.append({"type": "section", "text": _mrkdwn("\n".join(parts))})
            shown += 1
    if shown < len(alerts):
        blocks.append({"type": "context",
                       "elements": [_mrkdwn(f"…and {len(alerts) - shown} more")]})
    return {"text": title, "blocks": blocks}


class SlackNotifier(Notifier):
    """Posts to Slack, at most one message per second per channel."""

    kind = "slack"
    threads = True

    def __init__(self, name: str, *, http: Any, webhook_url: str | None = None,
                 token: str | None = None, channel: str | None = None,
                 api_base: str = DEFAULT_API_BASE, timeout: float = 30.0,
                 min_interval: float = 1.0):
        super().__init__(name)
        if bool(webhook_url) == bool(token and channel):
            raise ValueError("either webhook_url, or token and channel")
        self._http = http
        self._webhook_url = webhook_url
        self._token = token
        self.channel = channel
        self.api_base = api_base.rstrip("/")
        self.timeout = timeout
        self.min_interval = min_interval
        self._locks: dict[str, asyncio.Lock] = {}
        self._last_sent: dict[str, float] = {}

    def __repr__(self) -> str:
        target = f"channel={self.channel!r}" if self._token else "webhook"
        return f"<SlackNotifier {self.name!r} {target}>"

    @classmethod
    def from_config(cls, name: str, options: dict[str, Any], *, http: Any = None) -> SlackNotifier:
        opts = Options(name, options, {"webhook_url", "token", "channel", "api_base", "timeout"})
        timeout = opts.duration("timeout", 30.0)
        if opts.has("webhook_url"):
            for key in ("token", "channel", "api_base"):
                if opts.has(key):
                    raise opts.error(key, "does not go with webhook_url "
                                          "(use either webhook_url, or token and channel)")
            return cls(name, http=http, webhook_url=opts.url("webhook_url"), timeout=timeout)
        if not opts.has("token"):
            raise ConfigError(f"notifier {name!r}: set either webhook_url, or token and channel")
        token = opts.string("token", required=True)  # present: checked just above
        if any(c.isspace() for c in token):
            raise opts.error("token", "must not contain whitespace")
        channel = opts.string("channel", required=True)
        api_base = opts.url("api_base", required=False) or DEFAULT_API_BASE
        return cls(name, http=http, token=token, channel=channel, api_base=api_base,
                   timeout=timeout)

    async def send(self, alert: AlertRecord, *, thread: dict | None = None) -> dict:
        payload = alert_message(alert, self.timezone)
        thread_ts = (thread or {}).get("ts")
        if self._token and isinstance(thread_ts, str) and thread_ts:
            payload["thread_ts"] = thread_ts
        return await self._post(payload)

    async def send_digest(self, alerts: list[AlertRecord]) -> dict:
        if not alerts:
            return {}
        return await self._post(digest_message(alerts, self.timezone))

    async def _post(self, payload: dict) -> dict:
        key = self.channel or "webhook"
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            wait = self._last_sent.get(key, float("-inf")) + self.min_interval - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            try:
                if self._token:
                    return await self._post_api(payload)
                return await self._post_webhook(payload)
            finally:
                self._last_sent[key] = time.monotonic()

    async def _post_webhook(self, payload: dict) -> dict:
        assert self._webhook_url is not None  # __init__ wants one when there is no token
        await post_once(self._http, self._webhook_url, _json(payload),
                        {"Content-Type": "application/json; charset=utf-8"},
                        where=self._where, timeout=self.timeout, secrets=[self._webhook_url])
        return {}

    async def _post_api(self, payload: dict) -> dict:
        payload = {"channel": self.channel, "parse": "none", "link_names": False, **payload}
        response = await post_once(
            self._http, f"{self.api_base}/chat.postMessage", _json(payload),
            {"Content-Type": "application/json; charset=utf-8",
             "Authorization": f"Bearer {self._token}"},
            where=self._where, timeout=self.timeout, secrets=[self._token])
        try:
            answer = json.loads(response.body)
        except ValueError:
            raise DeliveryError(f"{self._where}: Slack's answer is not JSON",
                                permanent=False) from None
        if not isinstance(answer, dict):
            raise DeliveryError(f"{self._where}: Slack's answer is not a JSON object",
                                permanent=False)
        if not answer.get("ok"):
            error = redact_error(answer.get("error") or "unknown_error", [self._token])[:100]
            transient = error in _TRANSIENT_ERRORS
            retry_after = getattr(response, "retry_after", None) if transient else None
            raise DeliveryError(f"{self._where}: Slack refused the message: {error}",
                                permanent=not transient, retry_after=retry_after)
        return {"ts": str(answer.get("ts", "")),
                "channel": str(answer.get("channel", self.channel))}

    @property
    def _where(self) -> str:
        return f"slack {self.name!r}"


def _json(payload: dict) -> bytes:
    return json.dumps(payload, ensure_ascii=False).encode("utf-8")
