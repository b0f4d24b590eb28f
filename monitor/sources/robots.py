"""robots.txt (RFC 9309) for the pages and articles the monitor fetches.

One ``RobotsCache`` per event loop, next to the ``Fetcher`` it fetches with.
``allowed(url)`` fetches ``{scheme}://{host}[:{port}]/robots.txt`` once per
origin (concurrent callers for one origin share one request), caches the
verdict, and answers with a bool: no error ever escapes it.

What a fetch of robots.txt means (RFC 9309 section 2.3.1):

    2xx                       parse the first 500 KiB (the rest is cut off at
                              the last whole line), decoded as UTF-8 with
                              errors replaced; cached for ``ttl`` (24 h)
    4xx (404, 401, 403, 410)  "unavailable": everything allowed; cached for ``ttl``
    more than 5 redirects     "unavailable", as the RFC allows (the Fetcher follows up to 5)
    5xx, 429, network error,  "unreachable": see below; asked again after
    timeout, too large        ``retry_delay`` (10 min), or after Retry-After if
                              longer (at most ``ttl``)

429 counts as unreachable rather than unavailable: a server that asks us to
slow down has not said "crawl anything". A robots.txt larger than the Fetcher's
``max_body`` is refused by the Fetcher and counts as unreachable too.

While a host is unreachable:

- if the host answered before (a robots.txt, or a 4xx meaning there is none),
  that answer stands (RFC 9309 section 2.4 allows a cached copy to be used
  past 24 h while robots.txt is unreachable);
- otherwise everything on the host is disallowed (complete disallow, as the RFC
  says) until the host has been unreachable for ``unreachable_grace`` (24 h);
  after that, everything is allowed until robots.txt can be read again. The RFC
  allows this after 30 days; a news monitor cannot wait a month for an article
  whose news value lasts a day, and a day of failures is long enough to tell a
  broken robots.txt from a host that is briefly down. We still ask every
  ``retry_delay``, and obey as soon as there is an answer.

Matching is urllib.robotparser's: the group whose User-agent line occurs in our
product token (``news-monitor`` from ``news-monitor/0.1 (+https://...)``, case
ignored), else the ``*`` group; within a group the first matching rule wins.
Limitations of that parser: no ``*``/``$`` wildcards inside paths and no
longest-match precedence (both RFC 9309), and a fractional Crawl-delay is
ignored. A URL whose origin cannot be told (no host, not http or https) is not
allowed.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import urllib.robotparser
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

from monitor.errors import HTTPStatusError, TooManyRedirects
from monitor.sources.fetch import Response

__all__ = ["MAX_ROBOTS_BYTES", "RobotsCache", "product_token"]

log = logging.getLogger("monitor.robots")

#: RFC 9309 section 2.5: crawlers must parse at least the first 500 KiB.
MAX_ROBOTS_BYTES = 500 * 1024
_DEFAULT_PORTS = {"http": 80, "https": 443}
_TOKEN = re.compile(r"[A-Za-z_-]+")


class _Getter(Protocol):
    async def get(self, url: str, *, accept: str | None = None) -> Response: ...


def product_token(user_agent: str) -> str:
    """The product token robots.txt groups are matched against.

    "news-monitor/0.1 (...)" -> "news-monitor".
    """
    match = _TOKEN.match(user_agent.strip())
    return match.group(0).lower() if match else "*"


@dataclass
class _Verdict:
    """What we know about one origin's robots.txt."""

    rules: urllib.robotparser.RobotFileParser | None  # the last robots.txt read, if any
    allow_all: bool            # 4xx, or unreachable past the grace period, with no rules
    expires: float             # clock time after which robots.txt is fetched again
    unreachable_since: float | None = None  # clock time of the first failure in a row
    answered: bool = False     # rules/allow_all come from the host (2xx or 4xx), not a guess


class RobotsCache:
    """Per-origin robots.txt verdicts, fetched through the monitor's one Fetcher."""

    def __init__(self, fetcher: _Getter, user_agent: str, *, ttl: float = 24 * 3600,
                 now: Callable[[], float] = time.monotonic, retry_delay: float = 600.0,
                 unreachable_grace: float = 24 * 3600, max_origins: int = 4096) -> None:
        self._fetcher = fetcher
        self._token = product_token(user_agent)
        self._ttl = ttl
        self._now = now
        self._retry_delay = retry_delay
        self._grace = unreachable_grace
        self._max_origins = max(1, max_origins)
        self._verdicts: dict[str, _Verdict] = {}
        self._pending: dict[str, asyncio.Task[_Verdict]] = {}

    async def allowed(self, url: str) -> bool:
        """May we fetch ``url``? Fetches the origin's robots.txt when not cached."""
        origin = _origin(url)
        if origin is None:
            return False
        try:
            verdict = await self._verdict(origin)
            return self._judge(verdict, url)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - a bug here must cost one article, not the run
            log.warning("robots.txt check failed for %s", origin, exc_info=True)
            return False

    def crawl_delay(self, url: str) -> float | None:
        """The Crawl-delay for our agent in the origin's cached robots.txt, if it has one."""
        origin = _origin(url)
        verdict = self._verdicts.get(origin) if origin else None
        if verdict is None or verdict.rules is None:
            return None
        try:
            delay = verdict.rules.crawl_delay(self._token)
        except Exception:  # noqa: BLE001 - the parser's oddities must not escape
            return None
        return float(delay) if delay is not None else None

    # ---- steps

    async def _verdict(self, origin: str) -> _Verdict:
        verdict = self._verdicts.get(origin)
        if verdict is not None and self._now() < verdict.expires:
            return verdict
        task = self._pending.get(origin)
        if task is None:
            task = asyncio.ensure_future(self._refresh(origin, verdict))
            self._pending[origin] = task
            task.add_done_callback(lambda _: self._pending.pop(origin, None))
        # shield: one caller giving up must not cancel the fetch the others wait for.
        return await asyncio.shield(task)

    async def _refresh(self, origin: str, previous: _Verdict | None) -> _Verdict:
        try:
            response = await self._fetcher.get(origin + "/robots.txt", accept="text/plain")
        except HTTPStatusError as exc:
            if 400 <= exc.status < 500 and exc.status != 429:
                verdict = self._unavailable()
            else:
                verdict = self._unreachable(origin, previous, exc, exc.retry_after)
        except TooManyRedirects:
            verdict = self._unavailable()
        except Exception as exc:  # noqa: BLE001 - FetchError or anything else: allowed() never raises
            verdict = self._unreachable(origin, previous, exc, None)
        else:
            if 200 <= response.status < 300:
                verdict = _Verdict(_parse(response.body), False, self._now() + self._ttl,
                                   answered=True)
            else:  # a final 1xx/3xx the Fetcher let through: nothing we can read
                verdict = self._unavailable()
        self._store(origin, verdict)
        return verdict

    def _unavailable(self) -> _Verdict:
        return _Verdict(None, True, self._now() + self._ttl, answered=True)

    def _unreachable(self, origin: str, previous: _Verdict | None, exc: BaseException,
                     retry_after: float | None) -> _Verdict:
        now = self._now()
        since = now
        if previous is not None and previous.unreachable_since is not None:
            since = previous.unreachable_since
        wait = self._retry_delay
        if retry_after is not None and retry_after == retry_after:  # NaN is no delay
            wait = max(wait, min(retry_after, self._ttl))
        if previous is not None and previous.answered:
            # The host's last word (its rules, or "no robots.txt") still stands.
            verdict = _Verdict(previous.rules, previous.allow_all, now + wait,
                               unreachable_since=since, answered=True)
            what = "keeping its last answer"
        else:
            allow_all = now - since >= self._grace
            verdict = _Verdict(None, allow_all, now + wait, unreachable_since=since)
            what = "allowing all" if allow_all else "disallowing all for now"
        log.info("robots.txt unreachable at %s (%s); %s", origin, exc, what)
        return verdict

    def _store(self, origin: str, verdict: _Verdict) -> None:
        self._verdicts.pop(origin, None)  # re-insert: the dict's order is the age order
        self._verdicts[origin] = verdict
        while len(self._verdicts) > self._max_origins:
            del self._verdicts[next(iter(self._verdicts))]

    def _judge(self, verdict: _Verdict, url: str) -> bool:
        if verdict.rules is not None:
            return verdict.rules.can_fetch(self._token, url)
        return verdict.allow_all


def _origin(url: str) -> str | None:
    """``scheme://host[:port]`` of an http(s) URL, lower-cased, default port left out."""
    try:
        parts = urlsplit(url.strip())
        scheme = parts.scheme.lower()
        host = parts.hostname
        port = parts.port
    except (ValueError, AttributeError):
        return None
    if scheme not in _DEFAULT_PORTS or not host:
        return None
    if ":" in host:
        host = f"[{host}]"
    if port is None or port == _DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def _parse(body: bytes) -> urllib.robotparser.RobotFileParser:
    if len(body) > MAX_ROBOTS_BYTES:
        body = body[:MAX_ROBOTS_BYTES]
        cut = body.rfind(b"\n")
        if cut >= 0:
            body = body[: cut + 1]  # a rule cut in half would mean something else
    text = body.decode("utf-8-sig", errors="replace")
    parser = urllib.robotparser.RobotFileParser()
    parser.parse(text.splitlines())
    return parser
