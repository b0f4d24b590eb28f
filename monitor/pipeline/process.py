"""The CPU-heavy work on one article, run in a worker process: its fingerprints
and the rules it matches. Pure: the article and the rules' text in, an Analysis
out; nothing here touches the store or the network."""

from __future__ import annotations

from dataclasses import dataclass

from monitor.dedup.ingest import Fingerprints
from monitor.match.query import Document
from monitor.models import Article
from monitor.pipeline.rules import RuleTexts, compiled

#: rule -> (matched words, snippet, where the matched words are in the snippet)
Matches = dict[str, tuple[list[str], str, list[tuple[int, int]]]]


@dataclass
class Analysis:
    fingerprints: Fingerprints
    matches: Matches


def analyse(article: Article, rules: RuleTexts) -> Analysis:
    """Fingerprints and rule matches of one article."""
    doc = Document.build(title=article.title, text=article.text, source=article.source,
                         url=article.url)
    matches = compiled(rules).match(doc)
    # The text is tokenised once: its normalised form comes from the same tokens.
    fingerprinted = "text" if article.text else "title"
    normalised = " ".join(doc.fields[fingerprinted].norms)
    return Analysis(Fingerprints.of(article, normalised, " ".join(doc.fields["title"].norms)),
                    {rule: (m.words, *m.highlighted()) for rule, m in matches.items()})
