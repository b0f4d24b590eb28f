"""A source's bytes into its entries, whatever its kind: one entry point,
``parse_source``, and one parser per kind in ``PARSERS``. Pure; runs in a worker."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from monitor.models import Entry
from monitor.sources import feeds, links, sitemaps


@dataclass
class ParsedSource:
    entries: list[Entry]
    ttl: float | None = None                      # RSS <ttl>, seconds
    children: list[str] = field(default_factory=list)   # a sitemap index's sitemaps


@dataclass(frozen=True)
class Body:
    """A fetched source body and what the parsers may need to read it."""

    data: bytes
    url: str
    content_type: str | None = None
    charset: str | None = None
    link_pattern: str | None = None               # page sources: which links are articles


def _feed(body: Body) -> ParsedSource:
    parsed = feeds.parse_feed(body.data, url=body.url, content_type=body.content_type)
    return ParsedSource(parsed.entries, ttl=parsed.ttl_seconds)


def _page(body: Body) -> ParsedSource:
    return ParsedSource(links.discover_links(body.data, url=body.url,
                                             link_pattern=body.link_pattern,
                                             charset=body.charset))


def _sitemap(body: Body) -> ParsedSource:
    parsed = sitemaps.parse_sitemap(body.data, url=body.url)
    return ParsedSource(parsed.entries, children=parsed.sitemaps)


#: The parser of each source kind (SourceConfig.kind).
PARSERS: dict[str, Callable[[Body], ParsedSource]] = {
    "feed": _feed,
    "page": _page,
    "sitemap": _sitemap,
}


def parse_source(kind: str, body: Body) -> ParsedSource:
    """A source's entries from its bytes. Runs in a worker process."""
    return PARSERS[kind](body)
