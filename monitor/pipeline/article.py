"""An entry's identity, and the Article assembled from an entry and its page.

Pure functions: the fetching of the page is the orchestrator's; here the entry
and what was extracted from its page (or None) become one Article.
"""

from __future__ import annotations

from monitor.models import Article, Entry
from monitor.sources.urls import canonicalize
from monitor.text.extract import Extracted
from monitor.text.normalise import normalise, tokenize
from monitor.text.safe import one_line

# An article's text is cut here: a news article is far shorter, a hostile page not.
MAX_TEXT_CHARS = 200_000


def canonical(url: str) -> str | None:
    """The canonical form of ``url``; None when it is not a usable URL."""
    try:
        return canonicalize(url)
    except ValueError:
        return None


def entry_keys(entry: Entry) -> list[str]:
    """The keys an entry is remembered by: its canonical URL first, then its GUID."""
    keys = []
    if entry.url and (url := canonical(entry.url)):
        keys.append(url)
    if entry.guid:
        keys.append("guid:" + entry.guid[:500])
    return keys


def same_article(entry_title: str, extracted: Extracted) -> bool:
    """Is the extracted page the article the entry announces? Most of the words of
    the entry's headline must appear in the page's headline or the start of its text
    (a headline rewritten by an editor still shares most of its words with the lede)."""
    words = {t.norm for t in tokenize(entry_title) if t.cjk or len(t.norm) > 2}
    if len(words) < 3:
        return True                      # too little to judge: trust the page
    page = normalise(f"{extracted.title} {extracted.text[:3000]}")
    page_words = set(page.split())
    # A CJK word is looked for in the text as a whole (its segmentation may differ).
    found = sum(1 for w in words
                if (w in page if len(w) > 1 and not w.isascii() else w in page_words))
    return found >= 0.5 * len(words)


def assemble(source: str, entry: Entry, url: str, extracted: Extracted | None) -> Article | None:
    """The article of ``entry`` at ``url``: the page's text and metadata where
    ``extracted`` has them, else the entry's own. None when there is neither a
    headline nor any text."""
    title = (extracted.title if extracted and extracted.title else entry.title).strip()
    text = (extracted.text if extracted and extracted.text else
            entry.content or entry.summary or "").strip()[:MAX_TEXT_CHARS]
    if not title and not text:
        return None
    if title and text.startswith(title) and text[len(title):].strip():
        # Pages often repeat their headline as the text's first line: the title
        # field has it already, and snippets should show the body.
        text = text[len(title):].lstrip()
    if not title:
        # No headline anywhere: the start of the text stands in for one.
        title = one_line(text, 120)
    return Article(
        url=url, title=title, text=text, source=source,
        published=(extracted.published if extracted and extracted.published
                   else entry.published),
        author=(extracted.author if extracted and extracted.author else entry.author),
        site_name=extracted.site_name if extracted else "",
        language=extracted.language if extracted else "",
        guid=entry.guid, extracted=bool(extracted and extracted.text),
    )
