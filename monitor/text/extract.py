"""Article extraction: the clean text and metadata of one article page.

trafilatura finds the main text (``bare_extraction`` on HTML we pass in; its
downloader is never used). Around it, this module decodes the bytes, and picks
the metadata a reader sees in an alert, where trafilatura's defaults are not
good enough for news:

- decoding: the HTTP charset, then a BOM, then ``<meta charset>``, then UTF-8,
  then detection (charset_normalizer); undecodable bytes are replaced;
- title: the article's headline (og:title, JSON-LD ``headline``, trafilatura's
  title, the page's single ``<h1>``, ``<title>``), with a " | Site" / " - Site"
  suffix or "Site | " prefix removed when it names the site or its domain; a
  title that is only the site's name is never returned;
- published: ``article:published_time`` and similar meta tags or JSON-LD
  ``datePublished`` (full timestamps), else trafilatura's date (a day, taken as
  midnight UTC); more than a day in the future means unknown (``None``);
- canonical_url: ``<link rel="canonical">``, else ``og:url``, resolved and
  canonicalised, http(s) only;
- language: ``<html lang>`` / ``og:locale`` / Content-Language, as a primary
  subtag (``"en"``, ``"ja"``), else a guess from the script for Japanese.

Text options were chosen by measuring word-4-gram F1 against 181 labelled news
pages: ``favor_precision`` with tables, no comments (F1 0.961); when that keeps
under 1,500 characters, the balanced mode is run too and wins if it finds five
times more (0.966; balanced alone 0.958, favor_recall 0.956). That second pass
is skipped when two cheaper checks show it cannot win.
"""

from __future__ import annotations

import codecs
import copy
import json
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urljoin, urlsplit

import lxml.html
import trafilatura
from lxml import etree
from trafilatura.utils import load_html

from monitor.sources.urls import canonicalize
from monitor.text.dates import day_only, parse_published, plausible
from monitor.text.safe import clean_text

__all__ = ["Extracted", "extract_article", "decode_html", "MIN_TEXT_CHARS"]

#: Less text than this (after white space is collapsed) is "no usable text".
MIN_TEXT_CHARS = 20
MAX_HTML_CHARS = 5_000_000       # beyond this the page is cut (a news page is far smaller)

# Measured on a labelled set of 181 news pages (word-4-gram F1, see the report).
# Metadata comes from the page's head (_PageMeta: meta tags, JSON-LD), read once:
# trafilatura's own metadata pass cost 40 % more per page (64.5 -> 46.8 ms on the
# 181 bench pages, same F1). Its date finder (htmldate) runs only when the head
# gives no date; bylines found only in the body are not looked for.
#: The options of the main pass (the benchmark's floor runs trafilatura with these).
TRAFILATURA_OPTIONS: dict[str, bool] = dict(
    with_metadata=False, include_comments=False, include_tables=True,
    include_images=False, include_links=False, deduplicate=False,
    favor_precision=True,
)
# When precision mode finds nothing (it is strict on some layouts), try again balanced.
_FALLBACK_OPTIONS = {**TRAFILATURA_OPTIONS, "favor_precision": False}
_SHORT_TEXT_CHARS = 1500
# The balanced pass replaces a short precision text only when it finds this many times more.
_FALLBACK_GAIN = 5
# The balanced pass without trafilatura's external comparisons (readability, justext)
# costs a third as much. It gave the same length as the full pass on 31 of the 32
# short pages of the bench set (the other: more, not less). The full pass runs
# only when this quick one finds at least _QUICK_GAIN times more.
_QUICK_OPTIONS = {**_FALLBACK_OPTIONS, "fast": True}
_QUICK_GAIN = 2
# Output characters trafilatura may add per text node (line breaks, "- ", " | ").
_NODE_EXTRA_CHARS = 3
# What trafilatura's baseline looks for in JSON-LD (text properties, typed descriptions).
_JSON_TEXT_HOOKS = re.compile(
    r'articleBody|reviewBody|recipeInstructions|acceptedAnswer|"(?:Product|VideoObject|HowTo)"')

logging.getLogger("trafilatura").setLevel(logging.CRITICAL)
logging.getLogger("htmldate").setLevel(logging.CRITICAL)


@dataclass(frozen=True)
class Extracted:
    title: str
    text: str
    author: str
    published: datetime | None      # timezone-aware UTC
    site_name: str
    canonical_url: str | None
    language: str


def extract_article(html: bytes | str, *, url: str, charset: str | None = None,
                    now: datetime | None = None) -> Extracted | None:
    """Extract the article in ``html`` (fetched from ``url``; ``charset`` from HTTP).

    Returns ``None`` when the page has no usable article text.
    """
    markup = decode_html(html, charset) if isinstance(html, (bytes, bytearray)) else html
    if len(markup) > MAX_HTML_CHARS:
        markup = markup[:MAX_HTML_CHARS]
    markup = _XML_DECL_RE.sub("", markup, count=1)
    if not markup.strip():
        return None
    try:
        # Parsed once, by trafilatura's own loader (its parser settings and repairs);
        # the head is read from this tree, and trafilatura works on copies of it.
        tree = load_html(markup)
    except (etree.ParserError, ValueError, TypeError):
        return None
    if tree is None:
        return None
    meta = _PageMeta(tree, url)

    doc, text = _main_text(tree, url, TRAFILATURA_OPTIONS)
    if len(text) < MIN_TEXT_CHARS:
        doc, text = _main_text(tree, url, _FALLBACK_OPTIONS)
    elif len(text) < _SHORT_TEXT_CHARS and _balanced_may_win(tree, url, text):
        # precision mode sometimes keeps only a reprint notice or a teaser: when the
        # balanced mode finds several times more, it found the article
        doc2, text2 = _main_text(tree, url, _FALLBACK_OPTIONS)
        if len(text) * _FALLBACK_GAIN < len(text2):
            doc, text = doc2, text2
    if doc is None or len(text) < MIN_TEXT_CHARS:
        return None

    # trafilatura runs without its metadata pass: the head (meta) gives these.
    site_name = meta.site_name
    title = _choose_title(meta, site_name, url)
    published = meta.published or _find_date(tree, url)
    now = now or datetime.now(UTC)
    published = plausible(published, now)
    author = meta.author
    language = meta.language or _guess_language(text)
    return Extracted(title=title, text=text, author=author[:300], published=published,
                     site_name=site_name, canonical_url=meta.canonical_url, language=language)


def _find_date(tree: lxml.html.HtmlElement, url: str) -> datetime | None:
    """The publication date from the page body, for pages whose head has none."""
    try:
        from htmldate import find_date

        return day_only(find_date(copy.deepcopy(tree), url=url, original_date=True,
                                  extensive_search=False))
    except Exception:  # noqa: BLE001 - htmldate on hostile markup: the date is unknown
        return None


def _balanced_may_win(tree: lxml.html.HtmlElement, url: str, text: str) -> bool:
    """Whether the balanced pass could find _FALLBACK_GAIN times more than ``text``.

    Two checks, the cheaper first: the page must hold that much text at all, and
    the quick balanced pass must find at least _QUICK_GAIN times more.
    """
    wanted = len(text) * _FALLBACK_GAIN
    if _text_bound(tree) <= wanted:
        return False
    _, quick = _main_text(tree, url, _QUICK_OPTIONS)
    return len(quick) >= len(text) * _QUICK_GAIN


def _text_bound(tree: lxml.html.HtmlElement) -> int:
    """An upper bound of the length of any text trafilatura can extract from ``tree``.

    Its baseline also reads text from JSON-LD scripts that hold an article body
    (or the like) and from the JSON a Discourse forum keeps in an attribute:
    those count in full.
    """
    total = 0
    for el in tree.iter():
        if el.text and (el.tag not in ("script", "style") or (
                "ld+json" in (el.get("type") or "").lower()
                and _JSON_TEXT_HOOKS.search(el.text))):
            n = len(el.text.strip())
            total += n + _NODE_EXTRA_CHARS if n else 0
        if el.tail:
            n = len(el.tail.strip())
            total += n + _NODE_EXTRA_CHARS if n else 0
    for el in tree.iterfind('.//div[@data-preloaded]'):
        total += len(el.get("data-preloaded") or "")
    return total


def _main_text(markup: lxml.html.HtmlElement, url: str, options: dict) -> tuple[object | None, str]:
    try:
        doc = trafilatura.bare_extraction(markup, url=url, **options)
    except Exception:  # trafilatura on hostile markup: treat as "nothing usable"
        logging.getLogger(__name__).debug("trafilatura failed on %s", url, exc_info=True)
        return None, ""
    text = ((getattr(doc, "text", None) or "") if doc is not None else "").strip()
    return doc, (text if len(" ".join(text.split())) >= MIN_TEXT_CHARS else "")


# ---------------------------------------------------------------- decoding

_XML_DECL_RE = re.compile(r"^\s*<\?xml[^>]*\?>")
_META_CHARSET_RE = re.compile(
    rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.I)
_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF32_LE, "utf-32-le"),
         (codecs.BOM_UTF32_BE, "utf-32-be"), (codecs.BOM_UTF16_LE, "utf-16-le"),
         (codecs.BOM_UTF16_BE, "utf-16-be"))


def _codec(name: str | None) -> str | None:
    if not name:
        return None
    name = name.strip().strip("\"'").lower()
    # WHATWG: these labels mean windows-1252 in browsers, which is what pages rely on
    if name in ("iso-8859-1", "latin1", "latin-1", "us-ascii", "ascii", "iso8859-1"):
        name = "cp1252"
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def decode_html(body: bytes, charset: str | None = None) -> str:
    """Decode an HTML body: HTTP charset, BOM, ``<meta charset>``, UTF-8, detection."""
    body = bytes(body)
    for bom, name in _BOMS:
        if body.startswith(bom):
            return body[len(bom):].decode(name, "replace")
    declared = _codec(charset)
    if declared is None:
        m = _META_CHARSET_RE.search(body[:8192])
        declared = _codec(m.group(1).decode("ascii", "replace")) if m else None
    if declared is not None:
        if declared in ("utf-16", "utf-16-le", "utf-16-be", "utf-32") and b"\x00" not in body[:512]:
            declared = "utf-8"  # a page that is plainly ASCII-compatible cannot be UTF-16
        try:
            return body.decode(declared)
        except UnicodeDecodeError:
            if declared != "utf-8":
                return body.decode(declared, "replace")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        from charset_normalizer import from_bytes
        best = from_bytes(body[:200_000]).best()
        if best is not None and best.encoding:
            return body.decode(best.encoding, "replace")
    except Exception:  # noqa: BLE001 - detection is best effort, UTF-8 with replacement follows
        pass
    return body.decode("utf-8", "replace")


# ---------------------------------------------------------------- metadata


class _PageMeta:
    """What the page's head says about itself (read once from the lxml tree)."""

    def __init__(self, tree: lxml.html.HtmlElement, url: str):
        self.url = url
        metas: dict[str, str] = {}
        for el in tree.iter("meta"):
            key = (el.get("property") or el.get("name") or el.get("itemprop")
                   or el.get("http-equiv") or "").strip().lower()
            content = el.get("content")
            if key and content and key not in metas:
                metas[key] = clean_text(content)
        self.metas = metas
        self.ld = _json_ld_articles(tree)
        base = url
        for b in tree.iter("base"):
            if href := b.get("href"):
                base = urljoin(url, href.strip())
                break
        self.base = base

        self.og_title = metas.get("og:title", "") or metas.get("twitter:title", "")
        self.ld_headline = next((clean_text(str(a.get("headline"))) for a in self.ld
                                 if isinstance(a.get("headline"), str)), "")
        titles = tree.xpath("//head/title/text()") or tree.xpath("//title/text()")
        self.html_title = clean_text(titles[0]) if titles else ""
        h1s = [clean_text(h.text_content()) for h in tree.iter("h1")]
        h1s = [h for h in h1s if h]
        self.h1 = h1s[0] if len(h1s) == 1 else ""
        self.site_name = (metas.get("og:site_name") or metas.get("application-name")
                          or _ld_publisher(self.ld))
        self.author = (_ld_author(self.ld) or metas.get("author", "")
                       or metas.get("article:author", ""))
        if self.author.startswith(("http://", "https://")):
            self.author = ""
        self.published = self._published()
        self.canonical_url = self._canonical(tree)
        self.language = self._language(tree)

    def _published(self) -> datetime | None:
        for key in ("article:published_time", "og:article:published_time", "datepublished",
                    "pubdate", "publishdate", "publish-date", "parsely-pub-date",
                    "sailthru.date", "dc.date.issued", "dcterms.created", "dc.date", "date"):
            when = parse_published(self.metas.get(key, ""))
            if when:
                return when
        for article in self.ld:
            value = article.get("datePublished") or article.get("dateCreated")
            if isinstance(value, str):
                when = parse_published(value)
                if when:
                    return when
        return None

    def _canonical(self, tree: lxml.html.HtmlElement) -> str | None:
        hrefs = [el.get("href") for el in tree.iter("link")
                 if "canonical" in (el.get("rel") or "").lower().split()]
        hrefs.append(self.metas.get("og:url"))
        for href in hrefs:
            if not href or not href.strip():
                continue
            try:
                return canonicalize(href.strip(), self.base)
            except ValueError:
                continue
        return None

    def _language(self, tree: lxml.html.HtmlElement) -> str:
        for value in (tree.get("lang"), tree.get("{http://www.w3.org/XML/1998/namespace}lang"),
                      self.metas.get("og:locale"), self.metas.get("content-language"),
                      self.metas.get("language")):
            if value:
                primary = re.split(r"[-_,;\s]", value.strip().lower(), maxsplit=1)[0]
                if re.fullmatch(r"[a-z]{2,3}", primary):
                    return primary
        return ""


_LD_ARTICLE_TYPES = {"article", "newsarticle", "reportagenewsarticle", "analysisnewsarticle",
                     "blogposting", "opinionnewsarticle", "backgroundnewsarticle", "webpage",
                     "socialmediaposting", "report", "liveblogposting", "scholarlyarticle"}


def _json_ld_articles(tree: lxml.html.HtmlElement) -> list[dict]:
    """JSON-LD objects describing the article, best (a news article) first."""
    found: list[dict] = []

    def walk(node: object, depth: int = 0) -> None:
        if depth > 6 or len(found) > 20:
            return
        if isinstance(node, list):
            for item in node:
                walk(item, depth + 1)
        elif isinstance(node, dict):
            kinds = node.get("@type")
            kinds = kinds if isinstance(kinds, list) else [kinds]
            if any(isinstance(k, str) and k.lower() in _LD_ARTICLE_TYPES for k in kinds):
                found.append(node)
            for key in ("@graph", "mainEntity", "mainEntityOfPage"):
                if key in node:
                    walk(node[key], depth + 1)

    for script in tree.xpath('//script[@type="application/ld+json"]'):
        raw = (script.text or "").strip()
        if not raw or len(raw) > 1_000_000:
            continue
        try:
            walk(json.loads(raw))
        except (ValueError, RecursionError):
            continue
    found.sort(key=lambda n: 0 if "article" in str(n.get("@type", "")).lower()
               or "posting" in str(n.get("@type", "")).lower() else 1)
    return found


def _ld_names(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict) and isinstance(value.get("name"), str):
        return [value["name"]]
    if isinstance(value, list):
        return [n for item in value[:10] for n in _ld_names(item)]
    return []


def _ld_author(articles: list[dict]) -> str:
    for article in articles:
        names = [clean_text(n) for n in _ld_names(article.get("author")) if n.strip()]
        names = [n for n in names if not n.startswith(("http://", "https://"))]
        if names:
            return ", ".join(dict.fromkeys(names))
    return ""


def _ld_publisher(articles: list[dict]) -> str:
    for article in articles:
        names = _ld_names(article.get("publisher"))
        if names and names[0].strip():
            return clean_text(names[0])
    return ""


def _guess_language(text: str) -> str:
    sample = text[:2000]
    kana = sum(1 for ch in sample if "\u3040" <= ch <= "\u30ff")
    return "ja" if kana > 20 else ""


# ---------------------------------------------------------------- title

_SEPARATORS = re.compile(r"\s+[|\-–—:·•»«/]\s+|\s*[｜|]\s*|\s*[：]\s*|\s+::\s+")


def _norm(text: str) -> str:
    return re.sub(r"[\W_]+", "", text.lower())


def _site_keys(site_name: str, url: str) -> set[str]:
    keys = set()
    if site_name:
        keys.add(_norm(site_name))
        keys.add(_norm(re.sub(r"^the\s+", "", site_name, flags=re.I)))
    host = (urlsplit(url).hostname or "").lower()
    host = host[4:] if host.startswith("www.") else host
    if host:
        keys.add(_norm(host))
        labels = host.split(".")
        # "example" of example.com / example.co.jp: the label before the public suffix
        label = labels[-3] if len(labels) >= 3 and len(labels[-1]) == 2 and labels[-2] in (
            "co", "com", "ne", "or", "ac", "go", "org", "net", "gov", "edu") else (
            labels[-2] if len(labels) >= 2 else labels[0])
        if len(label) >= 3:
            keys.add(_norm(label))
    return {k for k in keys if k}


def _names_site(part: str, keys: set[str]) -> bool:
    p = _norm(part)
    if not p:
        return True
    if p in keys:
        return True
    # "The Japan Times" for japantimes.co.jp, "NYTimes.com", "BBC News" for bbc.co.uk
    return len(part.split()) <= 5 and any(len(k) >= 3 and (k in p or p in k) for k in keys)


def _strip_site(title: str, keys: set[str]) -> str:
    """Remove a leading or trailing site name separated from the headline."""
    title = clean_text(title)
    for _ in range(2):  # "Headline | Section | Site"
        matches = list(_SEPARATORS.finditer(title))
        if not matches:
            break
        last, first = matches[-1], matches[0]
        if _names_site(title[last.end():], keys) and title[:last.start()].strip():
            title = title[:last.start()].strip()
            continue
        if _names_site(title[:first.start()], keys) and title[first.end():].strip():
            title = title[first.end():].strip()
            continue
        break
    return title


def _choose_title(meta: _PageMeta, site_name: str, url: str) -> str:
    keys = _site_keys(site_name, url)
    for candidate in (meta.og_title, meta.ld_headline, meta.h1, meta.html_title):
        title = _strip_site(candidate, keys) if candidate else ""
        if title and _norm(title) not in keys and not (
                site_name and _norm(title) == _norm(site_name)):
            return title[:1000]
    return ""
