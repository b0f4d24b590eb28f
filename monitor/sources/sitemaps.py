"""Sitemap parsing: ``<urlset>`` (with Google News extensions) and ``<sitemapindex>``.

- A gzip body (by its magic bytes, whatever the headers said) is decompressed,
  at most :data:`MAX_DECOMPRESSED` bytes (the protocol's own 50 MB limit);
  beyond that the sitemap is refused.
- XML goes through defusedxml: no DTD-declared entities, no external
  references, no network. Element names are matched by local name, so a
  sitemap with a wrong or missing namespace still reads.
- ``Entry.title`` / ``published`` come from ``news:title`` /
  ``news:publication_date``, else ``lastmod`` for the date. A date that is not
  plausible (``monitor.text.dates.plausible``: a day in the future, or before
  1990) is unknown (``None``).
- URLs are resolved against the sitemap URL, http(s) only, kept once, at most
  :data:`MAX_URLS` (the protocol's limit).
- Anything else raises :class:`ParseError`.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from xml.etree.ElementTree import Element
from xml.etree.ElementTree import ParseError as XMLParseError

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from monitor.errors import ParseError
from monitor.models import Entry
from monitor.sources.urls import resolve_http_url
from monitor.text.dates import parse_iso, plausible

__all__ = ["SitemapResult", "parse_sitemap", "MAX_DECOMPRESSED", "MAX_URLS"]

MAX_DECOMPRESSED = 50 * 1024 * 1024
MAX_URLS = 50_000


@dataclass
class SitemapResult:
    entries: list[Entry] = field(default_factory=list)
    sitemaps: list[str] = field(default_factory=list)


def parse_sitemap(body: bytes, *, url: str, now: datetime | None = None) -> SitemapResult:
    """Parse sitemap bytes fetched from ``url``."""
    body = bytes(body)
    if body[:2] == b"\x1f\x8b":
        body = _gunzip(body)
    if not body.strip():
        raise ParseError("not a sitemap: empty body")
    try:
        root = SafeET.fromstring(body, forbid_dtd=False, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise ParseError("refused: the sitemap declares entities or external references "
                         f"({exc})") from exc
    except XMLParseError as exc:
        head = body.lstrip()[:200].lower()
        if head.startswith(b"<!doctype html") or b"<html" in head:
            raise ParseError("not a sitemap: looks like an HTML page") from exc
        raise ParseError(f"not a sitemap: malformed XML ({exc})") from exc

    now = now or datetime.now(UTC)
    kind = _local(root.tag)
    result = SitemapResult()
    if kind == "sitemapindex":
        seen: set[str] = set()
        for node in root:
            if _local(node.tag) != "sitemap":
                continue
            loc = resolve_http_url(_child_text(node, "loc"), url)
            if loc and loc not in seen:
                seen.add(loc)
                result.sitemaps.append(loc)
                if len(result.sitemaps) >= MAX_URLS:
                    break
    elif kind == "urlset":
        seen = set()
        for node in root:
            if _local(node.tag) != "url":
                continue
            loc = resolve_http_url(_child_text(node, "loc"), url)
            if not loc or loc in seen:
                continue
            seen.add(loc)
            news = next((c for c in node if _local(c.tag) == "news"), None)
            title = _child_text(news, "title") if news is not None else ""
            published = None
            if news is not None:
                published = plausible(parse_iso(_child_text(news, "publication_date")), now)
            if published is None:
                published = plausible(parse_iso(_child_text(node, "lastmod")), now)
            result.entries.append(Entry(url=loc, title=title[:1000], published=published))
            if len(result.entries) >= MAX_URLS:
                break
    else:
        raise ParseError(f"not a sitemap: root element is <{kind}>, not <urlset> or <sitemapindex>")
    return result


def _gunzip(body: bytes) -> bytes:
    decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        data = decompressor.decompress(body, MAX_DECOMPRESSED)
    except zlib.error as exc:
        raise ParseError(f"not a sitemap: corrupt gzip data ({exc})") from exc
    if decompressor.unconsumed_tail:
        raise ParseError(f"refused: the sitemap decompresses to more than {MAX_DECOMPRESSED} bytes")
    return data


def _local(tag: object) -> str:
    return tag.rsplit("}", 1)[-1].lower() if isinstance(tag, str) else ""


def _child_text(node: Element | None, name: str) -> str:
    if node is None:
        return ""
    for child in node:
        if _local(child.tag) == name:
            return " ".join((child.text or "").split())
    return ""
