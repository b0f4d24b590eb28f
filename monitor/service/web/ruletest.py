"""The rules page's test form: what ``rules test`` reports (``monitor.match.rulecheck``:
the matched words and a snippet per term, or each part that found nothing), plus
the main snippet with the matched words where the query engine found them."""

from __future__ import annotations

from typing import Any

from monitor.match.query import Document, compile_query
from monitor.match.rulecheck import Article, explanation, read_article

MAX_PASTE_BYTES = 4_000_000


def pasted_article(text: str) -> Article:
    """A pasted article, read as `rules test -` reads one: an HTML page, or plain
    text whose first line is the headline."""
    return read_article(text.replace("\r\n", "\n").encode("utf-8")[:MAX_PASTE_BYTES])


def try_rule(name: str, query_text: str, article: Article) -> dict[str, Any]:
    query = compile_query(query_text, rule=name)
    result = explanation(query, article)
    result.update(rule=name, title=article.title, url=article.url, snippet=("", []))
    if result["matched"]:
        match = query.match(Document.build(title=article.title, text=article.text,
                                           url=article.url))
        if match is not None:
            result["snippet"] = match.highlighted()
    return result
