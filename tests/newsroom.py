"""Invented news sites for the end-to-end tests: article pages with the boilerplate
real sites carry (navigation, cookie banner, related links, footer), and feeds
in RSS 2.0, RSS 1.0 (RDF), Atom, in UTF-8 or another encoding.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

from tests.servers import LoopbackServer

PAIRS = Path(__file__).parent / "testdata" / "pairs"
RULE_TEXTS = Path(__file__).parent / "testdata" / "rules"


def load_text(path: Path) -> tuple[str, str]:
    """A test text file: the first line is the headline, the rest the body."""
    raw = path.read_text(encoding="utf-8").strip()
    title, _, body = raw.partition("\n")
    return title.strip(), body.strip()


@dataclass
class Story:
    slug: str
    title: str
    body: str
    published: datetime = field(default_factory=lambda: datetime.now(UTC) - timedelta(hours=2))
    author: str = "Staff Reporter"
    summary: str | None = None
    guid: str | None = None

    @classmethod
    def from_file(cls, slug: str, path: Path, **kw) -> Story:
        title, body = load_text(path)
        return cls(slug=slug, title=title, body=body, **kw)


def article_page(story: Story, *, site: str, canonical: str | None = None,
                 lang: str = "en") -> str:
    paragraphs = "\n".join(f"<p>{html.escape(p.strip())}</p>"
                           for p in story.body.split("\n\n") if p.strip())
    canonical_tag = f'<link rel="canonical" href="{html.escape(canonical)}">' if canonical else ""
    when = story.published.isoformat()
    return f"""<!DOCTYPE html>
<html lang="{lang}"><head><meta charset="utf-8">
<title>{html.escape(story.title)} | {html.escape(site)}</title>
<meta property="og:title" content="{html.escape(story.title)}">
<meta property="og:site_name" content="{html.escape(site)}">
<meta name="author" content="{html.escape(story.author)}">
<meta property="article:published_time" content="{when}">
{canonical_tag}
</head><body>
<div class="cookie-banner">We use cookies to improve your experience. <a
href="/privacy">Accept</a></div>
<header><a href="/">{html.escape(site)}</a>
<nav><ul><li><a href="/world">World</a></li><li><a href="/asia">Asia</a></li>
<li><a href="/business">Business</a></li><li><a href="/opinion">Opinion</a></li>
<li><a href="/subscribe">Subscribe now</a></li></ul></nav></header>
<main><article>
<h1>{html.escape(story.title)}</h1>
<div class="byline">By {html.escape(story.author)} · <time
datetime="{when}">{story.published:%B %d, %Y}</time></div>
{paragraphs}
</article>
<aside class="related"><h3>Related stories</h3><ul>
<li><a href="/news/markets-rally-on-rate-hopes">Markets rally on rate hopes</a></li>
<li><a href="/news/typhoon-approaches-okinawa">Typhoon approaches Okinawa</a></li>
<li><a href="/news/baseball-season-opens">Baseball season opens in Tokyo</a></li></ul></aside>
</main>
<footer><p>© 2026 {html.escape(site)}. All rights reserved.</p>
<a href="/about">About us</a> <a href="/contact">Contact</a> <a
href="/terms">Terms of use</a></footer>
</body></html>"""


def rss20(stories: list[tuple[Story, str]], *, title: str = "World news",
          link: str = "https://example.org/") -> str:
    items = "\n".join(f"""<item>
  <title>{html.escape(s.title)}</title>
  <link>{html.escape(url)}</link>
  <guid isPermaLink="false">{html.escape(s.guid or s.slug)}</guid>
  <pubDate>{format_datetime(s.published)}</pubDate>
  <description>{html.escape(s.summary or s.body[:300])}</description>
</item>""" for s, url in stories)
    return f"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>{html.escape(title)}</title><link>{html.escape(link)}</link>
<description>News</description>
{items}
</channel></rss>"""


def atom(stories: list[tuple[Story, str]], *, title: str = "Asia desk") -> str:
    entries = "\n".join(f"""<entry>
  <title>{html.escape(s.title)}</title>
  <link rel="alternate" href="{html.escape(url)}"/>
  <id>urn:example:{html.escape(s.guid or s.slug)}</id>
  <updated>{s.published.isoformat()}</updated>
  <summary>{html.escape(s.summary or s.body[:300])}</summary>
</entry>""" for s, url in stories)
    return f"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>{html.escape(title)}</title>
<id>urn:example:feed</id><updated>{datetime.now(UTC).isoformat()}</updated>
{entries}
</feed>"""


def rdf(stories: list[tuple[Story, str]], *, encoding: str = "utf-8",
        title: str = "国際ニュース") -> bytes:
    items = "\n".join(f"""<item rdf:about="{html.escape(url)}">
  <title>{html.escape(s.title)}</title>
  <link>{html.escape(url)}</link>
  <description>{html.escape(s.summary or s.body[:200])}</description>
  <dc:date>{s.published.isoformat()}</dc:date>
</item>""" for s, url in stories)
    seq = "".join(f'<rdf:li rdf:resource="{html.escape(url)}"/>' for _, url in stories)
    text = f"""<?xml version="1.0" encoding="{encoding}"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/"
 xmlns:dc="http://purl.org/dc/elements/1.1/">
<channel rdf:about="https://example.jp/rss"><title>{html.escape(title)}</title>
<link>https://example.jp/</link><description>ニュース</description>
<items><rdf:Seq>{seq}</rdf:Seq></items></channel>
{items}
</rdf:RDF>"""
    return text.encode(encoding, "xmlcharrefreplace")


class Site:
    """One invented news site served by a loopback server."""

    def __init__(self, server: LoopbackServer, name: str, prefix: str):
        self.server, self.name, self.prefix = server, name, prefix.rstrip("/")

    def url(self, path: str) -> str:
        return self.server.url(f"{self.prefix}{path}")

    def publish(self, story: Story, *, canonical: str | None = None, lang: str = "en",
                encoding: str = "utf-8") -> str:
        page = article_page(story, site=self.name, canonical=canonical, lang=lang)
        if encoding != "utf-8":
            page = page.replace('<meta charset="utf-8">', f'<meta charset="{encoding}">')
        path = f"{self.prefix}/news/{story.slug}"
        self.server.route(path, page.encode(encoding, "xmlcharrefreplace"),
                          headers={"Content-Type": f"text/html; charset={encoding}"})
        return self.server.url(path)

    def feed(self, path: str, body: str | bytes, content_type: str,
             *, etag: str | None = None) -> str:
        data = body.encode("utf-8") if isinstance(body, str) else body
        full = f"{self.prefix}{path}"
        if etag:
            self.server.conditional(full, data, etag=etag, content_type=content_type)
        else:
            self.server.route(full, data, headers={"Content-Type": content_type})
        return self.server.url(full)


def json_feed(stories: list[tuple[Story, str]], *, title: str = "Notes",
              version: str = "https://jsonfeed.org/version/1.1") -> str:
    return json.dumps({"version": version, "title": title, "items": [
        {"id": s.guid or s.slug, "url": url, "title": s.title,
         "summary": s.summary or s.body[:300], "date_published": s.published.isoformat()}
        for s, url in stories]}, ensure_ascii=False)
