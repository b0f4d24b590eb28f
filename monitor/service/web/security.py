"""Who may read the page, and which POSTs are the page's own.

- Token: when ``[web] token`` is set, every path but ``/healthz``, ``/login`` and
  ``/static/`` needs it, as ``Authorization: Bearer TOKEN`` (scripts), as the
  password of HTTP Basic authentication (feed readers, which seldom send bearer
  headers), or as a cookie that the login form sets: signed with the token
  (itsdangerous), HttpOnly, SameSite=Lax, valid for 30 days. Changing the token
  signs everyone out.
- CSRF: every POST carries a form field whose value is an HMAC of a random
  per-browser cookie under a per-process key (so a page on another site, or
  another port of this host, which could plant a cookie, still cannot forge the
  field); a POST whose Origin names another host is refused outright.
- Headers: a Content-Security-Policy without any script, no framing, a referrer
  for the page's own requests only (article links do not tell the article's site
  where the reader came from).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from urllib.parse import urlsplit

from itsdangerous import BadSignature, URLSafeTimedSerializer

SESSION_COOKIE = "monitor_session"
CSRF_COOKIE = "monitor_csrf"
CSRF_FIELD = "csrf"
SESSION_MAX_AGE = 30 * 86400
OPEN_PATHS = ("/healthz", "/login", "/static/")

CSP = ("default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # Not "no-referrer": with it, browsers send "Origin: null" on the page's own POSTs.
    "Referrer-Policy": "same-origin",
}


class Guard:
    """The token check and the CSRF tokens of one running web app."""

    def __init__(self, token: str | None):
        self.token = token or None
        self._sessions = (URLSafeTimedSerializer(self.token, salt="monitor-session")
                          if self.token else None)
        self._csrf_key = secrets.token_bytes(32)

    # the token -------------------------------------------------------------------
    def needs_token(self, path: str) -> bool:
        return self.token is not None and not any(
            path == p or (p.endswith("/") and path.startswith(p)) for p in OPEN_PATHS)

    def authorised(self, headers, cookies) -> bool:
        if self.token is None:
            return True
        scheme, _, value = headers.get("authorization", "").partition(" ")
        value = value.strip()
        if scheme.lower() == "bearer" and value:
            return self.token_matches(value)
        if scheme.lower() == "basic" and value:
            try:
                _, _, password = base64.b64decode(value, validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return False
            return self.token_matches(password)
        return self.session_valid(cookies.get(SESSION_COOKIE))

    def bearer(self, headers) -> bool:
        """Whether the request carries a credential that browsers never add by
        themselves (so it cannot be a forged cross-site POST)."""
        scheme = headers.get("authorization", "").partition(" ")[0].lower()
        return scheme in ("bearer", "basic") and self.authorised(headers, {})

    def token_matches(self, given: str) -> bool:
        return self.token is not None and hmac.compare_digest(
            given.encode("utf-8", "surrogateescape"), self.token.encode())

    def new_session(self) -> str:
        assert self._sessions is not None
        return self._sessions.dumps({"v": 1})

    def session_valid(self, cookie: str | None) -> bool:
        if not cookie or self._sessions is None:
            return False
        try:
            self._sessions.loads(cookie, max_age=SESSION_MAX_AGE)
        except BadSignature:
            return False
        return True

    # CSRF ----------------------------------------------------------------------
    @staticmethod
    def new_browser_id() -> str:
        return secrets.token_urlsafe(24)

    def csrf_token(self, browser_id: str) -> str:
        return hmac.new(self._csrf_key, browser_id.encode(), hashlib.sha256).hexdigest()

    def csrf_valid(self, browser_id: str | None, field: str | None) -> bool:
        if not browser_id or not field:
            return False
        return hmac.compare_digest(self.csrf_token(browser_id), field)


def same_origin(origin: str | None, host: str | None) -> bool:
    """False when the browser says the request comes from a page on another host
    and port; True when it says nothing (older browsers, scripts)."""
    if not origin:
        return True
    if origin == "null":
        return False
    return urlsplit(origin).netloc.lower() == (host or "").lower()
