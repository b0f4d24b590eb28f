"""Link discovery for page sources: the article links of an HTML listing page.

A link is kept when it is http(s), on the same site as the page (see
:func:`monitor.urls.same_site`), not the page itself, and either matches the
source's ``link_pattern`` (``re.search`` over path and query) or, without a
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
from urllib.parse import urljoin, urlsplit

import lxml.html
from lxml import etree

from .errors import ConfigError, ParseError
from .extract import decode_html
from .models import Entry
from .urls import canonicalize, same_site

__all__ = ["discover_links", "compile_link_pattern", "MAX_LINKS"]

MAX_LINKS = 1000

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
_DATE_PATH_RE = re.compile(r"/(?:19|20)\d{2}/(?:0?[1-9]|1[0-2])/(?:(?:0?[1-9]|[12]\d|3[01])/)?[^/]*[^\d/][^/]*")
_ID_QUERY_RE = re.compile(r"(?:^|&)(?:p|id|article|articleid|story|storyid|newsid|nid|aid)=\w+", re.I)
_WS_RE = re.compile(r"\s+")


def compile_link_pattern(pattern: str) -> re.Pattern[str]:
    """Compile a source's ``link_pattern``; :class:`ConfigError` when it is invalid."""
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ConfigError(f"link_pattern {pattern!r} is not a valid regular expression: {exc}") from exc


def discover_links(html: bytes, *, url: str, link_pattern: str | None,
                   charset: str | None = None) -> list[Entry]:
    """The article links of the listing page ``html`` fetched from ``url``."""
    markup = decode_html(html, charset) if isinstance(html, (bytes, bytearray)) else str(html)
    markup = re.sub(r"^\s*<\?xml[^>]*\?>", "", markup, count=1)
    if not markup.strip():
        raise ParseError("not a page: empty body")
    if "\x00" in markup[:1024]:
        raise ParseError("not a page: binary data")
    try:
        tree = lxml.html.fromstring(markup)
    except (etree.ParserError, ValueError) as exc:
        raise ParseError(f"not a page: {exc}") from exc
    pattern = compile_link_pattern(link_pattern) if link_pattern else None

    base = url
    for el in tree.iter("base"):
        href = (el.get("href") or "").strip()
        if href:
            base = urljoin(url, href)
            break
    try:
        page = canonicalize(url)
    except ValueError:
        page = url

    order: list[str] = []
    titles: dict[str, str] = {}
    fallback_titles: dict[str, str] = {}
    for a in tree.iter("a", "area"):
        href = (a.get("href") or "").strip()
        if not href or href.startswith("#") or re.match(r"(?i)\s*(javascript|mailto|tel|data):", href):
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
            alt = a.get("title") or next((img.get("alt") for img in a.iter("img") if img.get("alt")), "")
            if alt and alt.strip():
                fallback_titles[link] = _WS_RE.sub(" ", alt).strip()[:1000]
    return [Entry(url=link, title=titles[link] or fallback_titles.get(link, "")) for link in order]


def _in_navigation(el: lxml.html.HtmlElement) -> bool:
    for ancestor in el.iterancestors():
        if ancestor.tag in ("nav", "footer") or (ancestor.get("role") or "").lower() == "navigation":
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
