"""A loopback stand-in for Slack that speaks its wire format.

    POST /services/T000/B000/XXX   incoming webhook: 200 "ok" (text/html), or
                                   400 "invalid_payload" / "no_text", 404 "no_service",
                                   or whatever ``webhook_error`` says
    POST /api/chat.postMessage     Web API: always HTTP 200 with {"ok": true, "channel",
                                   "ts", "message"} or {"ok": false, "error"}, except
                                   rate limiting: HTTP 429 with Retry-After

Everything received is recorded (with its arrival time on time.monotonic()).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

WEBHOOK_PATH = "/services/T000/B000/XXX"
TOKEN = "xoxb-000000000000-fake-token-do-not-leak"
CHANNELS = {"#korea-desk": "C123", "korea-desk": "C123", "C123": "C123"}


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float                      # time.monotonic() on arrival
    json: object = None


@dataclass
class FakeSlack:
    requests: list[Received] = field(default_factory=list)
    rate_limit_next: int = 0       # answer this many requests with 429
    retry_after: int = 30
    api_error: str | None = None   # every chat.postMessage answers {"ok": false, "error": ...}
    webhook_error: tuple[int, str] | None = None
    _ts: int = 100

    def __enter__(self) -> FakeSlack:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                fake._handle(self)

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def webhook_url(self) -> str:
        return self.base_url + WEBHOOK_PATH

    @property
    def api_base(self) -> str:
        return self.base_url + "/api"

    # --- handling -------------------------------------------------------------

    def _handle(self, req: BaseHTTPRequestHandler) -> None:
        arrived = time.monotonic()
        length = int(req.headers.get("Content-Length") or 0)
        body = req.rfile.read(length)
        try:
            payload = json.loads(body)
        except ValueError:
            payload = None
        self.requests.append(Received(req.path, dict(req.headers.items()), body, arrived, payload))
        if self.rate_limit_next > 0:
            self.rate_limit_next -= 1
            answer = ({"ok": False, "error": "ratelimited"} if req.path.startswith("/api/")
                      else "rate_limited")
            return self._reply(req, 429, answer, {"Retry-After": str(self.retry_after)})
        if req.path == "/api/chat.postMessage":
            return self._reply(req, 200, self._post_message(req, payload))
        if req.path.startswith("/services/"):
            status, text = self._webhook(req.path, payload)
            return self._reply(req, status, text)
        self._reply(req, 404, "not found")

    def _post_message(self, req: BaseHTTPRequestHandler, payload: object) -> dict:
        auth = req.headers.get("Authorization", "")
        if not auth:
            return {"ok": False, "error": "not_authed"}
        if auth != f"Bearer {TOKEN}":
            return {"ok": False, "error": "invalid_auth"}
        if not isinstance(payload, dict):
            return {"ok": False, "error": "invalid_json"}
        if self.api_error:
            return {"ok": False, "error": self.api_error}
        channel = CHANNELS.get(str(payload.get("channel")))
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        if not payload.get("text") and not payload.get("blocks"):
            return {"ok": False, "error": "no_text"}
        if not _valid_blocks(payload.get("blocks", [])):
            return {"ok": False, "error": "invalid_blocks"}
        self._ts += 100
        ts = f"1700000000.{self._ts:06d}"
        message = {"type": "message", "text": payload.get("text", ""), "ts": ts,
                   "blocks": payload.get("blocks", []), "bot_id": "B0FAKE"}
        if payload.get("thread_ts"):
            message["thread_ts"] = payload["thread_ts"]
        return {"ok": True, "channel": channel, "ts": ts, "message": message}

    def _webhook(self, path: str, payload: object) -> tuple[int, str]:
        if path != WEBHOOK_PATH:
            return 404, "no_service"
        if self.webhook_error:
            return self.webhook_error
        if not isinstance(payload, dict):
            return 400, "invalid_payload"
        if not payload.get("text") and not payload.get("blocks"):
            return 400, "no_text"
        if not _valid_blocks(payload.get("blocks", [])):
            return 400, "invalid_blocks"
        return 200, "ok"

    @staticmethod
    def _reply(req: BaseHTTPRequestHandler, status: int, answer: object,
               headers: dict[str, str] | None = None) -> None:
        if isinstance(answer, str):
            body, ctype = answer.encode(), "text/html"
        else:
            body, ctype = json.dumps(answer).encode(), "application/json; charset=utf-8"
        req.send_response(status)
        req.send_header("Content-Type", ctype)
        req.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            req.send_header(name, value)
        req.end_headers()
        req.wfile.write(body)


def _valid_blocks(blocks: object) -> bool:
    """The limits Slack enforces that a notifier could plausibly break."""
    if not isinstance(blocks, list) or len(blocks) > 50:
        return False
    for block in blocks:
        if not isinstance(block, dict) or "type" not in block:
            return False
        texts = [block.get("text")] + list(block.get("elements", []))
        for text in filter(None, texts):
            if text.get("type") not in ("mrkdwn", "plain_text") or not text.get("text"):
                return False
            if block["type"] == "section" and len(text["text"]) > 3000:
                return False
    return True
