"""Webhook notifier: the alert record as a signed JSON POST.

Headers sent with every delivery:

    Content-Type: application/json; charset=utf-8
    X-Monitor-Delivery: <alert_id>            (a digest: "digest-<hash of its alert ids>")
    X-Monitor-Timestamp: <unix seconds>
    X-Monitor-Signature: sha256=<hex HMAC-SHA256 of the exact body bytes>   (with a secret)

The signature covers the body alone; receivers that want replay protection
remember X-Monitor-Delivery values (deliveries are at least once anyway).

``post_once`` is the one HTTP attempt shared with the Slack notifier: it maps
the fetcher's errors to DeliveryError without ever quoting the URL (a Slack
webhook URL is a secret) or a credential.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import time
from collections.abc import Iterable
from typing import Any

from monitor.delivery.notifiers import render
from monitor.delivery.notifiers.base import Notifier
from monitor.delivery.notifiers.render import Options
from monitor.errors import (
    BlockedAddress,
    DeliveryError,
    FetchError,
    HTTPStatusError,
    TooManyRedirects,
)
from monitor.models import AlertRecord
from monitor.redaction import redact_error
from monitor.text.safe import UNSAFE_CHARS

SIGNATURE_HEADER = "X-Monitor-Signature"
TIMESTAMP_HEADER = "X-Monitor-Timestamp"
DELIVERY_HEADER = "X-Monitor-Delivery"
_RESERVED_HEADERS = {h.lower() for h in (SIGNATURE_HEADER, TIMESTAMP_HEADER, DELIVERY_HEADER,
                                         "Content-Type", "Content-Length", "Host",
                                         "Transfer-Encoding", "Connection")}
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


def sign(secret: str, body: bytes) -> str:
    """The X-Monitor-Signature value for ``body``."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


async def post_once(http: Any, url: str, body: bytes, headers: dict[str, str], *,
                    where: str, timeout: float, secrets: Iterable[str | None] = ()) -> Any:
    """One POST through the project's fetcher; a 2xx response or DeliveryError.

    429, 408 and 5xx are transient (with the server's Retry-After); other 4xx and
    3xx are permanent; a connection failure or timeout is transient.
    """
    if http is None:
        raise DeliveryError(f"{where}: no HTTP client configured", permanent=True)
    error: DeliveryError | None = None
    try:
        async with asyncio.timeout(timeout):
            response = await http.post(url, content=body, headers=headers)
    except (FetchError, TimeoutError) as exc:
        error = _fetch_failure(exc, where=where, timeout=timeout, secrets=secrets)
    if error is not None:
        raise error         # outside the except: no __context__ to leak into a traceback
    if not 200 <= response.status < 300:
        raise _status_failure(where, response.status, getattr(response, "retry_after", None))
    return response


def _fetch_failure(exc: Exception, *, where: str, timeout: float,
                   secrets: Iterable[str | None]) -> DeliveryError:
    if isinstance(exc, HTTPStatusError):
        return _status_failure(where, exc.status, exc.retry_after)
    if isinstance(exc, TimeoutError):
        return DeliveryError(f"{where}: no answer within {timeout:g} s", permanent=False)
    # A refused address or a redirect loop will not go away by retrying.
    permanent = isinstance(exc, (BlockedAddress, TooManyRedirects))
    return DeliveryError(f"{where}: {type(exc).__name__}: {redact_error(exc, secrets)}",
                         permanent=permanent)


def _status_failure(where: str, status: int, retry_after: float | None) -> DeliveryError:
    # A 3xx on a POST endpoint means the configured URL is wrong: permanent.
    transient = status in (408, 429) or status >= 500
    return DeliveryError(f"{where}: HTTP {status}", permanent=not transient,
                         retry_after=retry_after if transient else None)


class WebhookNotifier(Notifier):
    """POSTs each alert record as JSON. Receipt: ``{"status": <HTTP status>}``."""

    kind = "webhook"

    def __init__(self, name: str, *, http: Any, url: str, secret: str | None = None,
                 headers: dict[str, str] | None = None, timeout: float = 30.0):
        super().__init__(name)
        self._http = http
        self._url = url
        self._secret = secret
        self._headers = dict(headers or {})
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"<WebhookNotifier {self.name!r}>"

    @classmethod
    def from_config(cls, name: str, options: dict[str, Any], *,
                    http: Any = None) -> WebhookNotifier:
        opts = Options(name, options, {"url", "secret", "headers", "timeout"})
        headers = opts.values.get("headers") or {}
        if not isinstance(headers, dict):
            raise opts.error("headers", "must be a table of header names to strings")
        for key, value in headers.items():
            if not _HEADER_NAME.match(str(key)):
                raise opts.error("headers", f"{key!r} is not a valid header name")
            if key.lower() in _RESERVED_HEADERS:
                raise opts.error("headers", f"{key!r} is set by the notifier itself")
            # Values are not echoed: they often carry credentials.
            if not isinstance(value, str) or UNSAFE_CHARS.search(value):
                raise opts.error("headers", f"the value of {key!r} must be a string "
                                            "without control characters")
        return cls(name, http=http, url=opts.url("url"), secret=opts.string("secret"),
                   headers=headers, timeout=opts.duration("timeout", 30.0))

    async def send(self, alert: AlertRecord, *, thread: dict | None = None) -> dict:
        return await self._post(alert.to_dict(), delivery=alert.alert_id)

    async def send_digest(self, alerts: list[AlertRecord]) -> dict:
        if not alerts:
            return {}
        ids = "\n".join(alert.alert_id for alert in alerts)
        delivery = "digest-" + hashlib.sha256(ids.encode()).hexdigest()[:16]
        return await self._post({"digest": True, "alerts": [a.to_dict() for a in alerts]},
                                delivery=delivery)

    async def _post(self, payload: dict, *, delivery: str) -> dict:
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        headers = {**self._headers,
                   "Content-Type": "application/json; charset=utf-8",
                   DELIVERY_HEADER: render.one_line(delivery, 200),
                   TIMESTAMP_HEADER: str(int(time.time()))}
        if self._secret:
            headers[SIGNATURE_HEADER] = sign(self._secret, body)
        response = await post_once(
            self._http, self._url, body, headers, where=f"webhook {self.name!r}",
            timeout=self.timeout, secrets=[self._url, self._secret, *self._headers.values()])
        return {"status": response.status}
