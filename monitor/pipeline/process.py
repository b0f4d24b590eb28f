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
    """Fingerprints and rule matches of one article.

    The text is tokenised once, for the rules and the fingerprints. Only an article
    that matches a rule is given a story signature and looked up among the stories
    (``monitor.dedup.ingest``): stories thread and digest alerts, and the story
    look-up is the dearest part of storing an article, so the many articles that
    raise no alert skip it. Every article still gets its exact hash and its
    near-duplicate signature: a copy of any article already stored raises no alert.
    """
    doc = Document.build(title=article.title, text=article.text, source=article.source,
                         url=article.url)
    matches = compiled(rules).match(doc)
    fingerprints = Fingerprints.of_tokens(article, doc.fields["title"].norms,
                                          doc.fields["text"].norms, story=bool(matches))
    return Analysis(fingerprints,
                    {rule: (m.words, *m.highlighted()) for rule, m in matches.items()})


def analyse_all(articles: list[Article], rules: RuleTexts) -> list[Analysis]:
    """``analyse`` of each article, as one job: the entries of a source that carry
    their own text are sent to a worker together, which costs one round trip
    instead of one per entry."""
    return [analyse(article, rules) for article in articles]
