"""Link discovery for page sources: the article links of an HTML listing page
(:func:`discover_links`), and the feeds a page advertises (:func:`advertised_feeds`).

A link is kept when it is http(s), on the same site as the page (see
:func:`monitor.sources.urls.same_site`), not the page itself, and either matches the
source's ``link_pattern`` (an RE2 search over path and query) or, without a
pattern, looks like an article:

- not inside ``<nav>``, ``<footer>`` or ``role="navigation"``;
- not an asset (images, styles, scripts, media, archives, feeds);
- no path segment naming a navigation page (tag, category, author, login, ...);
- and the path carries an article's marks: a slug of three or more words
  (``/kishida-kim-summit``), a long numeric id (``/news/275221``), a date
  followed by a slug (``/2024/05/01/summit``), an id-like query (``?p=123``),
  or, with at least two segments, an anchor text of five words or more.

URLs are canonicalised and kept once, in page order; the title is the first
non-empty anchor text, else the link's ``title`` attribute or an image's ``alt``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import lxml.html
import re2
from lxml import etree

from monitor.errors import ConfigError, ParseError
from monitor.models import Entry
from monitor.sources.urls import canonicalize, same_site
from monitor.text.extract import decode_html

__all__ = ["discover_links", "compile_link_pattern", "advertised_feeds", "FeedLink",
           "MAX_LINKS", "MAX_FEED_LINKS"]

MAX_LINKS = 1000
MAX_FEED_LINKS = 20
# The media types of <link rel="alternate"> that announce a feed (RSS, Atom, JSON Feed).
FEED_TYPES = {"application/rss+xml": "rss", "application/atom+xml": "atom",
              "application/rdf+xml": "rss", "application/feed+json": "json"}
# Types some sites give their feeds, but also other things (WordPress announces its
# REST API as application/json): worth a look only where each is then confirmed.
LOOSE_FEED_TYPES = {**FEED_TYPES, "application/json": "json", "text/xml": "rss",
                    "application/xml": "rss"}

_NAV_SEGMENTS = frozenset({
    "tag", "tags", "category", "categories", "topic", "topics", "author", "authors",
    "login", "logout", "signin", "sign-in", "signup", "sign-up", "register", "subscribe",
    "subscription", "subscriptions", "account", "my-account", "profile", "search",
    "about", "about-us", "contact", "contact-us", "privacy", "privacy-policy", "terms",
    "terms-of-use", "terms-of-service", "cookies", "cookie-policy", "feed", "feeds", "rss",
    "newsletter", "newsletters", "page", "archive", "archives", "section", "sections",
    "wp-login.php", "wp-admin", "cart", "shop", "advertise", "careers", "jobs", "help",
    "faq", "sitemap", "user", "users", "share", "print", "comments",
})
_ASSET_RE = re.compile(
    r"\.(?:jpe?g|png|gif|webp|svg|ico|bmp|tiff?|css|js|mjs|json|xml|rss|atom|pdf|zip|gz|"
    r"tgz|rar|7z|mp3|mp4|m4a|m4v|mov|avi|webm|ogg|wav|woff2?|ttf|eot|exe|dmg|apk|csv|txt)$",
    re.I)
_SLUG_RE = re.compile(r"[a-z0-9]+(?:[-_][a-z0-9]+){2,}", re.I)
_LONG_ID_RE = re.compile(r"\d{5,}")
_DATE_PATH_RE = re.compile(r"/(?:19|20)\d{2}/(?:0?[1-9]|1[0-2])/(?:(?:0?[1-9]|[12]\d|3[01])/)?"
                           r"[^/]*[^\d/][^/]*")
_ID_QUERY_RE = re.compile(
    r"(?:^|&)(?:p|id|article|articleid|story|storyid|newsid|nid|aid)=\w+", re.I)
_WS_RE = re.compile(r"\s+")


def _re2_options() -> re2.Options:
    options = re2.Options()
    options.log_errors = False        # RE2 would print its own errors on stderr
    return options


_RE2_OPTIONS = _re2_options()


def compile_link_pattern(pattern: str):
    """Compile a source's ``link_pattern`` with RE2; :class:`ConfigError` when it is
    invalid or needs what RE2 leaves out.

    A pattern from the configuration runs over every link of hostile pages:
    Python's backtracking engine can take exponential time on a pattern such as
    ``(a+)+$``, RE2 always takes linear time, and refuses (backreferences,
    lookaround) what it cannot run so."""
    try:
        re.compile(pattern)           # Python's messages for plain syntax errors
    except re.error as exc:
        raise ConfigError(f"link_pattern {pattern!r}: invalid regular expression: {exc}") from None
    try:
        return re2.compile(pattern, options=_RE2_OPTIONS)
    except re2.error as exc:
        detail = exc.args[0].decode("utf-8", "replace") if exc.args and isinstance(
            exc.args[0], bytes) else str(exc)
        raise ConfigError(f"link_pattern {pattern!r}: cannot be run in linear time ({detail}): "
                          "backreferences, lookahead and lookbehind are not supported") from None


@dataclass(frozen=True)
class FeedLink:
    url: str
    title: str
    format: str           # rss | atom | json: what the page says it is


def _parse_page(html: bytes | str, charset: str | None):
    markup = decode_html(html, charset) if isinstance(html, (bytes, bytearray)) else str(html)
    markup = re.sub(r"^\s*<\?xml[^>]*\?>", "", markup, count=1)
    if not markup.strip():
        raise ParseError("not a page: empty body")
    if "\x00" in markup[:1024]:
        raise ParseError("not a page: binary data")
    try:
        return lxml.html.fromstring(markup)
    except (etree.ParserError, ValueError) as exc:
        raise ParseError(f"not a page: {exc}") from exc


def _base(tree, url: str) -> str:
    for el in tree.iter("base"):
        href = (el.get("href") or "").strip()
        if href:
            return urljoin(url, href)
    return url


def advertised_feeds(html: bytes | str, *, url: str, charset: str | None = None,
                     loose: bool = False) -> list[FeedLink]:
    """The feeds the page ``html`` (fetched from ``url``) announces with
    ``<link rel="alternate" type="application/rss+xml" href="...">`` and the like,
    in page order, each once, at most :data:`MAX_FEED_LINKS`; only http(s) URLs.
    ``loose`` also takes the ambiguous types of :data:`LOOSE_FEED_TYPES`.
    A page that cannot be parsed advertises nothing."""
    try:
        tree = _parse_page(html, charset)
    except ParseError:
        return []
    base = _base(tree, url)
    found: dict[str, FeedLink] = {}
    for el in tree.iter("link"):
        rels = (el.get("rel") or "").lower().split()
        media_type = (el.get("type") or "").split(";")[0].strip().lower()
        kind = (LOOSE_FEED_TYPES if loose else FEED_TYPES).get(media_type)
        if "alternate" not in rels or kind is None:
            continue
        href = (el.get("href") or "").strip()
        try:
            link = urljoin(base, href) if href else ""
            parts = urlsplit(link)
        except ValueError:
            continue
        if parts.scheme not in ("http", "https") or not parts.hostname or len(link) > 4096:
            continue
        if link not in found:
            title = _WS_RE.sub(" ", el.get("title") or "").strip()[:200]
            found[link] = FeedLink(url=link, title=title, format=kind)
            if len(found) >= MAX_FEED_LINKS:
                break
    return list(found.values())


def discover_links(html: bytes, *, url: str, link_pattern: str | None,
                   charset: str | None = None) -> list[Entry]:
    """The article links of the listing page ``html`` fetched from ``url``."""
    tree = _parse_page(html, charset)
    pattern = compile_link_pattern(link_pattern) if link_pattern else None
    base = _base(tree, url)
    try:
        page = canonicalize(url)
    except ValueError:
        page = url

    order: list[str] = []
    titles: dict[str, str] = {}
    fallback_titles: dict[str, str] = {}
    for a in tree.iter("a", "area"):
        href = (a.get("href") or "").strip()
        if (not href or href.startswith("#")
                or re.match(r"(?i)\s*(javascript|mailto|tel|data):", href)):
            continue
        try:
            link = canonicalize(href, base)
        except ValueError:
            continue
        if link == page or not same_site(page, link):
            continue
        parts = urlsplit(link)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        text = _WS_RE.sub(" ", a.text_content() if a.tag == "a" else "").strip()
        if pattern is not None:
            if not pattern.search(target):
                continue
        elif _in_navigation(a) or not _looks_like_article(parts.path, parts.query, text):
            continue
        if link not in titles:
            if len(order) >= MAX_LINKS:
                continue
            order.append(link)
            titles[link] = ""
        if text and not titles[link]:
            titles[link] = text[:1000]
        if link not in fallback_titles:
            alt = a.get("title") or next(
                (img.get("alt") for img in a.iter("img") if img.get("alt")), "")
            if alt and alt.strip():
                fallback_titles[link] = _WS_RE.sub(" ", alt).strip()[:1000]
    return [Entry(url=link, title=titles[link] or fallback_titles.get(link, "")) for link in order]


def _in_navigation(el: lxml.html.HtmlElement) -> bool:
    for ancestor in el.iterancestors():
        role = (ancestor.get("role") or "").lower()
        if ancestor.tag in ("nav", "footer") or role == "navigation":
            return True
    return False


def _looks_like_article(path: str, query: str, text: str) -> bool:
    segments = [s for s in path.lower().split("/") if s]
    if not segments or _ASSET_RE.search(path):
        return False
    if any(seg in _NAV_SEGMENTS for seg in segments):
        return False
    last = re.sub(r"\.(?:s?html?|php|aspx?|jsp|cms)$", "", segments[-1])
    if _SLUG_RE.fullmatch(last) and re.search(r"[a-z]", last):
        return True
    if any(_LONG_ID_RE.search(seg) for seg in segments):
        return True
    if _DATE_PATH_RE.search(path):
        return True
    if query and _ID_QUERY_RE.search(query):
        return True
    return len(segments) >= 2 and len(text.split()) >= 5
