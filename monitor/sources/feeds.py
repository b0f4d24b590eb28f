"""Feed parsing: RSS 0.9x, RSS 1.0 (RDF), RSS 2.0, Atom and JSON Feed bytes into entries.

feedparser does the parsing of XML feeds; JSON Feed 1.0 and 1.1 are read here with
``json`` (see :func:`_parse_json_feed`), into the same entries under the same
limits. This module decides what counts as a feed, turns every text field into
plain text, picks each entry's URL and date, and bounds
what a hostile feed can make us keep.

Decisions:

- Encoding: the HTTP charset (``content_type``) wins, then the XML declaration,
  as feedparser does it (RFC 3023). One correction: a body that is valid UTF-8
  with non-ASCII characters is read as UTF-8 even when a declaration or header
  claims a legacy charset (a lying declaration produces mojibake otherwise;
  legacy-encoded text of any length is practically never valid UTF-8).
- Entities: feedparser parses with expat, never fetches external entities and
  drops the DOCTYPE before its lenient fallback, so ``&xxe;`` stays literal
  text. We also refuse outright a DOCTYPE that declares external entities or
  entities built from other entities (XXE, billion laughs): no real feed needs them.
- Not a feed (empty, binary, JSON that is not a JSON Feed, an HTML page, XML without a feed root and
  no entries) raises :class:`ParseError` whose message says what it looked like.
  A "bozo" (not well-formed) feed that still yields entries is accepted.
- ``Entry.url`` is the entry link (``rel="alternate"`` first) resolved against
  the feed URL, else the GUID when it is a permalink URL; only http(s). It is
  not canonicalised here: it is the address the publisher gave.
- Entries with neither link nor GUID are skipped; a repeated GUID (else URL)
  is kept once, the first time.
- ``published`` is the published, else updated (``dc:date``) date in UTC. A
  date that is not plausible (``monitor.text.dates.plausible``: more than a day
  ahead of ``now``, a broken clock or a placeholder, or before 1990) becomes
  ``None`` (unknown), so that it cannot sort first forever.
- ``ttl_seconds`` comes from RSS ``<ttl>`` (minutes), else the syndication
  module (``sy:updatePeriod`` / ``sy:updateFrequency``); capped at one day.
- Limits: :data:`MAX_ENTRIES` entries, and field lengths in :data:`MAX_CHARS`.
"""

from __future__ import annotations

import codecs
import html
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import feedparser
import lxml.html
from lxml import etree

from monitor.errors import ParseError
from monitor.models import Entry
from monitor.sources.links import advertised_feeds
from monitor.sources.urls import resolve_http_url
from monitor.text.dates import from_struct_time, parse_iso, plausible
from monitor.text.safe import clean_text

__all__ = ["ParsedFeed", "parse_feed", "html_to_text", "MAX_ENTRIES", "MAX_CHARS"]

MAX_ENTRIES = 1000
MAX_CHARS = {"title": 1_000, "summary": 20_000, "content": 500_000, "author": 300,
             "url": 4_096, "guid": 2_048, "feed_title": 1_000}
MAX_TTL_SECONDS = 86_400.0

_FEED_ROOTS = {"rss", "feed", "rdf", "channel"}
_SY_PERIODS = {"hourly": 3_600, "daily": 86_400, "weekly": 604_800,
               "monthly": 2_592_000, "yearly": 31_536_000}
_UTF_ENCODINGS = ("utf-8", "utf8", "utf-16", "utf-32", "utf_8")


@dataclass
class ParsedFeed:
    title: str
    entries: list[Entry] = field(default_factory=list)
    ttl_seconds: float | None = None


def parse_feed(body: bytes, *, url: str, content_type: str | None = None,
               now: datetime | None = None) -> ParsedFeed:
    """Parse feed bytes fetched from ``url`` (``content_type``: the HTTP header).

    ``now`` (default: the current time) is the reference for rejecting dates in
    the future. Raises :class:`ParseError` when ``body`` is not a feed.
    """
    if not isinstance(body, (bytes, bytearray)):
        raise TypeError("parse_feed() takes the raw bytes of the response")
    body = bytes(body)
    now = now or datetime.now(UTC)
    if _is_json(body, content_type):
        return _parse_json_feed(body, url, now)
    root = _sniff(body, url)
    _refuse_hostile_doctype(body)
    body, ctype = _effective_encoding(body, content_type)
    headers = {"content-location": url, "content-type": ctype}
    try:
        parsed = feedparser.parse(body, response_headers=headers, sanitize_html=False,
                                   resolve_relative_uris=False)
    except Exception as exc:  # feedparser is lenient; anything escaping it is a bug in the input
        raise ParseError(f"not a feed: {type(exc).__name__}: {exc}") from exc

    is_feed_root = bool(parsed.get("version")) or root in _FEED_ROOTS
    if not parsed.entries and not is_feed_root:
        reason = parsed.get("bozo_exception")
        detail = f" ({reason})" if reason else ""
        raise ParseError(f"not a feed: no RSS or Atom root element{detail}")

    entries = _distinct(_entry(raw, url, now) for raw in parsed.entries)
    feed = parsed.feed
    title = _clip(_field_text(feed.get("title_detail"), feed.get("title", "")), "feed_title")
    return ParsedFeed(title=title, entries=entries, ttl_seconds=_ttl(feed))


# ---------------------------------------------------------------- what is it?

_JSON_TYPES = ("application/feed+json", "application/json")


def _is_json(body: bytes, content_type: str | None) -> bool:
    """JSON by its first character, or labelled JSON and not plainly XML."""
    first = _head_bytes(body, 1024).lstrip()[:1]
    if first in (b"{", b"["):
        return True
    mime = (content_type or "").split(";", 1)[0].strip().lower()
    return (mime in _JSON_TYPES or mime.endswith("+json")) and first not in (b"<", b"")


def _html_page(body: bytes, url: str) -> ParseError:
    """The error for an HTML page where a feed was expected, naming the feeds it
    advertises: the usual mistake is the site's address given for its feed's."""
    links = advertised_feeds(body, url=url)
    if not links:
        return ParseError("not a feed: looks like an HTML page")
    shown = ", ".join(link.url for link in links[:5])
    return ParseError(f"not a feed: looks like an HTML page; this page advertises feeds: {shown}")


_TAG_RE = re.compile(rb"\s*<\s*([A-Za-z_][\w.:-]*)")
_SKIP_RE = re.compile(rb"\s*(?:<\?.*?\?>|<!--.*?-->|<!DOCTYPE[^>\[]*(?:\[.*?\])?\s*>)", re.S | re.I)


def _head_bytes(body: bytes, size: int = 65_536) -> bytes:
    """The start of the body as ASCII-compatible bytes (UTF-16/32 transcoded)."""
    head = body[:size]
    for bom, codec in ((b"\xff\xfe\x00\x00", "utf-32-le"), (b"\x00\x00\xfe\xff", "utf-32-be"),
                       (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be")):
        if head.startswith(bom):
            return head[len(bom):].decode(codec, "ignore").encode("utf-8")
    if head[:2] in (b"<\x00", b"\x00<"):
        codec = "utf-16-le" if head[0] == 0x3C else "utf-16-be"
        return head.decode(codec, "ignore").encode("utf-8")
    return head.removeprefix(b"\xef\xbb\xbf")


def _sniff(body: bytes, url: str) -> str:
    """Refuse what is plainly not a feed; return the root element's local name."""
    head = _head_bytes(body)
    stripped = head.strip()
    if not stripped:
        raise ParseError("not a feed: empty body")
    if b"\x00" in head[:1024]:
        kind = "gzip data" if body[:2] == b"\x1f\x8b" else "binary data"
        raise ParseError(f"not a feed: {kind}")
    pos = 0
    while True:
        m = _SKIP_RE.match(stripped, pos)
        if not m or m.end() == pos:
            break
        pos = m.end()
    m = _TAG_RE.match(stripped, pos)
    if m is None:
        if re.match(rb"\s*<!doctype\s+html", stripped, re.I):
            raise _html_page(body, url)
        raise ParseError("not a feed: the body does not start with an XML element")
    name = m.group(1).decode("ascii", "replace").lower().rsplit(":", 1)[-1]
    if name in ("html", "head", "body"):
        raise _html_page(body, url)
    if name in ("urlset", "sitemapindex"):
        raise ParseError("not a feed: this is a sitemap")
    if name == "svg":
        raise ParseError("not a feed: this is an SVG image")
    return name


_DOCTYPE_RE = re.compile(rb"<!DOCTYPE[^\[>]*\[(.*?)\]\s*>", re.S | re.I)
_ENTITY_RE = re.compile(rb"<!ENTITY\s+(%\s*)?[^\s]+\s+(SYSTEM|PUBLIC|\"[^\"]*\"|'[^']*')", re.I)


def _refuse_hostile_doctype(body: bytes) -> None:
    m = _DOCTYPE_RE.search(_head_bytes(body))
    if not m:
        return
    for ent in _ENTITY_RE.finditer(m.group(1)):
        kind = ent.group(2)
        if ent.group(1) or kind.upper() in (b"SYSTEM", b"PUBLIC"):
            raise ParseError("refused: the feed declares external or parameter entities")
        if b"&" in kind or b"%" in kind:
            raise ParseError("refused: the feed declares nested entities (entity expansion attack)")


_DECL_ENC_RE = re.compile(rb"""^<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._:-]+)["']""")


def _effective_content_type(body: bytes, content_type: str | None) -> str:
    ctype = (content_type or "application/xml").strip()
    declared = _charset_label(body, ctype)
    if declared and declared.lower() not in _UTF_ENCODINGS and _is_non_ascii_utf8(body):
        mime = ctype.split(";", 1)[0].strip() or "application/xml"
        return f"{mime}; charset=utf-8"
    return ctype


def _effective_encoding(body: bytes, content_type: str | None) -> tuple[bytes, str]:
    """The body and the Content-Type to parse it with.

    Besides :func:`_effective_content_type`'s correction, the reverse lie: a body
    labelled UTF-8 (or not labelled, which means UTF-8 for XML) that is not valid
    UTF-8. feedparser would then fall back to a Western or Central European code page
    and produce mojibake that no rule matches. We take, in order, a legacy charset
    named in the XML declaration that decodes the body, then one that detection
    (charset_normalizer) finds and that decodes it, else UTF-8 with replacement
    characters: the entries are still read, and what is not text shows as such.
    A body that is UTF-8 but for a few stray bytes stays UTF-8 (with replacements).
    """
    ctype = _effective_content_type(body, content_type)
    label = _charset_label(body, ctype)
    wide = body.startswith((b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")) \
        or body[:2] in (b"<\x00", b"\x00<")
    if (label and label.lower() not in ("utf-8", "utf8", "utf_8")) or wide or body.isascii() \
            or _is_non_ascii_utf8(body):
        return body, ctype
    mime = ctype.split(";", 1)[0].strip() or "application/xml"
    as_utf8 = body.decode("utf-8", "replace")
    broken = as_utf8.count("\ufffd")
    non_ascii = len(as_utf8) - len(as_utf8.encode("ascii", "ignore"))
    if non_ascii - broken >= 10 * broken:
        # UTF-8 with a few stray bytes (a pasted Latin-1 quote): keep the UTF-8
        return as_utf8.encode("utf-8"), f"{mime}; charset=utf-8"
    d = _DECL_ENC_RE.match(body.removeprefix(b"\xef\xbb\xbf")[:200])
    candidates = [d.group(1).decode("ascii")] if d else []
    try:
        from charset_normalizer import from_bytes
        best = from_bytes(body[:65_536]).best()
        if best is not None and best.encoding:
            candidates.append(best.encoding)
    except Exception:  # noqa: BLE001 - detection is best effort, on any bytes
        pass
    for name in candidates:
        try:
            codec = codecs.lookup(name).name
            if codec.startswith(("utf-16", "utf-32")) or codec == "utf-8":
                continue
            body.decode(codec)
        except (LookupError, UnicodeDecodeError):
            continue
        return body, f"{mime}; charset={codec}"
    return body.decode("utf-8", "replace").encode("utf-8"), f"{mime}; charset=utf-8"


def _charset_label(body: bytes, ctype: str) -> str:
    """The charset the HTTP header, else the XML declaration, names ("" for none)."""
    m = re.search(r"charset\s*=\s*[\"']?([^\s;\"']+)", ctype, re.I)
    if m:
        return m.group(1)
    d = _DECL_ENC_RE.match(body.removeprefix(b"\xef\xbb\xbf")[:200])
    return d.group(1).decode("ascii") if d else ""


def _is_non_ascii_utf8(body: bytes) -> bool:
    if body.isascii():
        return False
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


# ---------------------------------------------------------------- entries

def _entry(raw: Any, feed_url: str, now: datetime) -> Entry | None:
    guid = _clip((raw.get("id") or "").strip(), "guid") or None
    link = _entry_link(raw, feed_url)
    if link is None and guid and raw.get("guidislink", True):
        link = resolve_http_url(guid, feed_url, max_length=MAX_CHARS["url"])
    if link is None and guid is None:
        return None
    content = ""
    for part in raw.get("content") or []:
        content = _field_text(part, part.get("value", ""), paragraphs=True)
        if content:
            break
    return Entry(
        url=link,
        guid=guid,
        title=_clip(_field_text(raw.get("title_detail"), raw.get("title", "")), "title"),
        summary=_clip(_field_text(raw.get("summary_detail"), raw.get("summary", "")), "summary"),
        content=_clip(content, "content"),
        published=_published(raw, now),
        author=_clip(_author(raw), "author"),
    )


_EMAIL_NAME_RE = re.compile(r"^\s*\S+@\S+\s*\((.+)\)\s*$")
_NAME_EMAIL_RE = re.compile(r"^\s*(.+?)\s*<\S+@\S+>\s*$")


def _author(raw: Any) -> str:
    # RSS <author> is "email (Name)"; feedparser's own split of it is unreliable
    text = clean_text(html.unescape(raw.get("author") or ""))
    m = _EMAIL_NAME_RE.match(text) or _NAME_EMAIL_RE.match(text)
    if m:
        return m.group(1).strip()
    detail_name = clean_text((raw.get("author_detail") or {}).get("name") or "")
    if detail_name and (not text or detail_name in text):
        return detail_name
    return text


def _entry_link(raw: Any, feed_url: str) -> str | None:
    links = raw.get("links") or []
    ordered = [ln for ln in links if ln.get("rel", "alternate") == "alternate"]
    ordered.sort(key=lambda ln: 0 if "html" in (ln.get("type") or "text/html") else 1)
    candidates = [ln.get("href") for ln in ordered] + [raw.get("link")]
    for href in candidates:
        if href:
            resolved = resolve_http_url(href, feed_url, max_length=MAX_CHARS["url"])
            if resolved:
                return resolved
    return None


def _published(raw: Any, now: datetime) -> datetime | None:
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        # A plain lookup: FeedParserDict maps keys with a warning.
        when = from_struct_time(dict.get(raw, key))
        if when is not None:
            return plausible(when, now)
    return None


def _ttl(feed: Any) -> float | None:
    try:
        minutes = float(feed.get("ttl", ""))
        if minutes > 0:
            return min(minutes * 60.0, MAX_TTL_SECONDS)
    except (TypeError, ValueError):
        pass
    period = _SY_PERIODS.get(str(feed.get("sy_updateperiod", "")).strip().lower())
    if period:
        try:
            frequency = max(1.0, float(feed.get("sy_updatefrequency", 1) or 1))
        except (TypeError, ValueError):
            frequency = 1.0
        return min(period / frequency, MAX_TTL_SECONDS)
    return None


# ---------------------------------------------------------------- text

_BLOCK_TAGS = {"p", "div", "br", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6",
               "blockquote", "pre", "table", "tr", "section", "article", "figure",
               "figcaption", "header", "footer", "dd", "dt", "hr"}
_INVISIBLE_TAGS = {"script", "style", "template", "noscript"}


def _clip(text: str, name: str) -> str:
    limit = MAX_CHARS[name]
    return text if len(text) <= limit else text[:limit].rstrip()


def _field_text(detail: Any, value: str, *, paragraphs: bool = False) -> str:
    """Plain text of a feedparser text construct (HTML or plain)."""
    if not value:
        return ""
    kind = (detail or {}).get("type", "text/html") if isinstance(detail, dict) else "text/html"
    if kind == "text/plain" and "<" not in value and "&" not in value:
        return clean_text(value)
    return html_to_text(value, paragraphs=paragraphs)


def html_to_text(markup: str, *, paragraphs: bool = False) -> str:
    """Strip tags and entities; collapse white space.

    With ``paragraphs`` block elements become paragraph breaks (``"\\n\\n"``),
    otherwise everything is one line.
    """
    if not markup or not markup.strip():
        return ""
    if "<" not in markup:
        return clean_text(html.unescape(markup))
    try:
        root = lxml.html.fragment_fromstring(markup, create_parent="div")
    except (etree.ParserError, ValueError):
        return clean_text(html.unescape(re.sub(r"<[^>]*>", " ", markup)))
    chunks: list[str] = []
    for event, el in etree.iterwalk(root, events=("start", "end")):
        tag = el.tag if isinstance(el.tag, str) else None  # None: comment or PI
        if event == "start":
            if tag in _BLOCK_TAGS:
                chunks.append("\n\n")
            if el.text and tag is not None and tag not in _INVISIBLE_TAGS:
                chunks.append(el.text)
        else:
            if tag in _BLOCK_TAGS:
                chunks.append("\n\n")
            if el is not root and el.tail:
                chunks.append(el.tail)
    text = "".join(chunks)
    if not paragraphs:
        return clean_text(text)
    paras = (clean_text(p) for p in re.split(r"\n\s*\n", text))
    return "\n\n".join(p for p in paras if p)


# ---------------------------------------------------------------- JSON Feed

# JSON Feed 1.0 and 1.1 (https://www.jsonfeed.org/version/1.1/). Read with json;
# every value is checked for its type, since a hostile feed may put anything
# anywhere: a wrong-typed field is ignored, never trusted. Nesting deeper than
# json's recursion limit, and integers too long for Python to convert, are refused
# as not a feed. 1.0's ``author`` and 1.1's ``authors`` are both read; an item
# without an author takes the feed's (as the specification says).
_JSON_FEED_VERSION = re.compile(r"^https?://jsonfeed\.org/version/1(?:\.\d+)?/?$")


def _parse_json_feed(body: bytes, url: str, now: datetime) -> ParsedFeed:
    data = _load_json(body)
    if not isinstance(data, dict) or not isinstance(data.get("items"), list):
        raise ParseError("not a feed: JSON, but not a JSON Feed (no \"items\" list)")
    version = data.get("version")
    if not isinstance(version, str) or not _JSON_FEED_VERSION.match(version.strip()):
        raise ParseError("not a feed: JSON, but not a JSON Feed (no jsonfeed.org \"version\")")
    feed_author = _json_author(data)
    entries = _distinct(_json_entry(raw, url, now, feed_author)
                        for raw in data["items"] if isinstance(raw, dict))
    return ParsedFeed(title=_clip(clean_text(_json_str(data, "title")), "feed_title"),
                      entries=entries)


def _load_json(body: bytes) -> Any:
    try:
        try:
            return json.loads(body)           # detects UTF-8 (BOM or not), UTF-16, UTF-32
        except UnicodeDecodeError:
            # JSON Feed is UTF-8; a few broken bytes should not cost the whole feed.
            return json.loads(body.decode("utf-8", "replace"))
    except RecursionError:
        raise ParseError("not a feed: JSON nested too deeply") from None
    except ValueError as exc:                 # JSONDecodeError, and over-long integers
        raise ParseError(f"not a feed: invalid JSON ({clean_text(str(exc))[:200]})") from None


def _json_str(obj: dict, key: str) -> str:
    value = obj.get(key)
    return value if isinstance(value, str) else ""


def _json_author(obj: dict) -> str:
    authors = obj.get("authors")
    candidates = authors if isinstance(authors, list) else []
    if isinstance(obj.get("author"), dict):
        candidates = [*candidates, obj["author"]]
    names = [clean_text(a["name"]) for a in candidates[:20]
             if isinstance(a, dict) and isinstance(a.get("name"), str)]
    return _clip(", ".join(n for n in names if n), "author")


def _json_entry(raw: dict, feed_url: str, now: datetime, feed_author: str) -> Entry | None:
    ident = raw.get("id")
    if isinstance(ident, (int, float)) and not isinstance(ident, bool):
        ident = str(ident)                    # 1.0 feeds in the wild use numbers
    guid = (_clip(ident.strip(), "guid") or None) if isinstance(ident, str) else None
    link = None
    for key in ("url", "external_url"):
        link = resolve_http_url(_json_str(raw, key), feed_url, max_length=MAX_CHARS["url"])
        if link:
            break
    if link is None and guid:
        link = resolve_http_url(guid, feed_url, max_length=MAX_CHARS["url"]) \
            if guid.startswith(("http://", "https://")) else None
    if link is None and guid is None:
        return None
    content = html_to_text(_json_str(raw, "content_html")[:2 * MAX_CHARS["content"]],
                           paragraphs=True)
    if not content:
        text = _json_str(raw, "content_text")[:MAX_CHARS["content"]]
        content = "\n\n".join(p for p in (clean_text(x) for x in re.split(r"\n\s*\n", text)) if p)
    return Entry(
        url=link,
        guid=guid,
        title=_clip(clean_text(_json_str(raw, "title")), "title"),
        summary=_clip(clean_text(_json_str(raw, "summary")), "summary"),
        content=_clip(content, "content"),
        published=_json_date(raw, now),
        author=_json_author(raw) or feed_author,
    )


def _json_date(raw: dict, now: datetime) -> datetime | None:
    for key in ("date_published", "date_modified"):
        # RFC 3339 requires an offset; a date without one is taken as UTC.
        when = parse_iso(_json_str(raw, key))
        if when is not None:
            return plausible(when, now)
    return None


def _distinct(candidates: Iterable[Entry | None]) -> list[Entry]:
    """The entries, each GUID (else URL) once, at most ``MAX_ENTRIES``; the same
    for every kind of feed. Entries are parsed lazily, so the cap saves the rest."""
    entries: list[Entry] = []
    seen: set[str] = set()
    for entry in candidates:
        if entry is None:
            continue
        key = entry.guid or entry.url or ""
        if key in seen:
            continue
        seen.add(key)
        entries.append(entry)
        if len(entries) >= MAX_ENTRIES:
            break
    return entries
