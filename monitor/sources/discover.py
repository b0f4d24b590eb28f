"""``sources discover URL``: the feeds a site offers.

1. The URL itself, when it is a feed, is the answer.
2. Else the page's ``<link rel="alternate">`` feeds (RSS, Atom, JSON Feed, and the
   ambiguous ``application/json`` and XML types, since every candidate is
   confirmed anyway).
3. When the page advertises none, or none of them is a feed, the usual places:
   :data:`USUAL_PATHS` at the site's root, and under the page's own folder when
   the page is not at the root (``/blog/`` -> ``/blog/feed``).

Every request goes through the fetcher (its size, time and redirect limits and its
address checks), and a candidate counts only when :func:`monitor.sources.feeds.parse_feed`
reads it as a feed. Found feeds are named by their final URL (after redirects).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

from monitor.errors import FetchError, ParseError
from monitor.sources.feeds import parse_feed
from monitor.sources.fetch import Fetcher
from monitor.sources.links import advertised_feeds
from monitor.sources.subscriptions import Found

USUAL_PATHS = ("feed", "rss", "rss.xml", "atom.xml", "feed.xml", "index.xml")
ACCEPT_PAGE = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
ACCEPT_FEED = ("application/rss+xml,application/atom+xml,application/feed+json,"
               "application/xml;q=0.9,*/*;q=0.8")


@dataclass
class Discovery:
    feeds: list[Found] = field(default_factory=list)
    tried: list[tuple[str, str]] = field(default_factory=list)   # (URL, why it is not a feed)


def usual_places(page_url: str) -> list[str]:
    """The usual feed addresses for a page: under its folder, then at the site root."""
    parts = urlsplit(page_url)
    root = f"{parts.scheme}://{parts.netloc}/"
    folder = urljoin(page_url, ".")
    bases = [folder, root] if folder != root else [root]
    places: list[str] = []
    for base in bases:
        for path in USUAL_PATHS:
            url = urljoin(base, path)
            if url not in places:
                places.append(url)
    return places


async def discover(url: str, fetcher: Fetcher) -> Discovery:
    """The feeds ``url`` is or offers. A failure to fetch ``url`` itself raises
    FetchError; a candidate that fails is noted in ``tried``."""
    response = await fetcher.get(url, accept=ACCEPT_PAGE)
    content_type = response.headers.get("content-type")
    try:
        parsed = parse_feed(response.body, url=response.url, content_type=content_type)
    except ParseError:
        pass
    else:
        return Discovery([_found(response.url, parsed, "the address given is a feed")])

    result = Discovery()
    links = advertised_feeds(response.body, url=response.url, charset=response.charset,
                             loose=True)
    if links:
        await _confirm(fetcher, [(link.url, link.title) for link in links],
                       "advertised by the page", result)
    if not result.feeds:
        await _confirm(fetcher, [(u, "") for u in usual_places(response.url)],
                       "found at a usual place", result)
    return result


async def _confirm(fetcher: Fetcher, candidates: list[tuple[str, str]], how: str,
                   result: Discovery) -> None:
    async def one(url: str, title: str) -> Found | str:
        try:
            response = await fetcher.get(url, accept=ACCEPT_FEED)
            parsed = parse_feed(response.body, url=response.url,
                                content_type=response.headers.get("content-type"))
        except (FetchError, ParseError) as exc:
            return str(exc)
        return _found(response.url, parsed, how, fallback_title=title)

    outcomes = await asyncio.gather(*(one(u, t) for u, t in candidates))
    seen = {f.url for f in result.feeds}
    for (url, _), outcome in zip(candidates, outcomes, strict=True):
        if isinstance(outcome, str):
            result.tried.append((url, outcome))
        elif outcome.url not in seen:
            seen.add(outcome.url)
            result.feeds.append(outcome)


def _found(url: str, parsed, how: str, *, fallback_title: str = "") -> Found:
    title = parsed.title or fallback_title
    count = len(parsed.entries)
    summary = f"{count} entr{'y' if count == 1 else 'ies'}, {how}"
    return Found(url=url, title=title, notes=tuple(n for n in (title, summary) if n))
