"""Checking rules against articles: ``rules test``, ``rules eval`` and query warnings.

``rules test`` shows why a rule matches (the words as the article wrote them,
and a snippet for each term) or why not (each required part that found
nothing, and how close the terms of a NEAR came). ``rules eval`` runs a rule
over a labelled folder (``pos/`` it should match, ``neg/`` it should not) and
reports recall, precision, each miss with its reasons and each false alert
with its matched words. Pure functions over files; no network, no store.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from monitor.errors import ParseError
from monitor.match.query import Document, MatchResult, Query
from monitor.text.extract import extract_article

__all__ = ["Article", "EvalReport", "evaluate", "explanation", "lowercase_operators",
           "read_article"]

_HTML_HEAD = re.compile(rb"<html|<!doctype html|<body", re.I)
_ARTICLE_SUFFIXES = (".txt", ".html", ".htm")
MAX_ARTICLE_BYTES = 10_000_000


@dataclass(frozen=True)
class Article:
    title: str
    text: str
    url: str = ""


def read_article(raw: bytes) -> Article:
    """An article from a file's bytes: an HTML page (extracted as the pipeline
    would), or plain text whose first line is the headline."""
    if _HTML_HEAD.search(raw[:2000]):
        extracted = extract_article(raw, url="https://localhost/article")
        if extracted is None:
            raise ParseError("no article text could be extracted from the HTML")
        return Article(extracted.title or "", extracted.text or "")
    text = raw.decode("utf-8", errors="replace").strip()
    first, _, rest = text.partition("\n")
    return Article(first.strip(), rest.strip() or first.strip())


def explanation(query: Query, article: Article) -> dict[str, Any]:
    """What ``rules test`` reports: match or not, matched words, snippets, reasons."""
    doc = Document.build(title=article.title, text=article.text, url=article.url)
    match = query.match(doc)
    if match is None:
        return {"matched": False, "words": [], "terms": [], "snippets": [],
                "why_not": query.explain(doc)}
    return {"matched": True, "words": match.words, "terms": match.terms,
            "snippets": [{"term": t, "snippet": s} for t, s in match.snippets()],
            "why_not": []}


@dataclass
class EvalReport:
    rule: str
    folder: str
    positives: int = 0
    negatives: int = 0
    true_positives: int = 0
    false_alerts: list[dict[str, Any]] = field(default_factory=list)
    misses: list[dict[str, Any]] = field(default_factory=list)
    unreadable: list[dict[str, str]] = field(default_factory=list)

    @property
    def recall(self) -> float | None:
        return self.true_positives / self.positives if self.positives else None

    @property
    def precision(self) -> float | None:
        alerted = self.true_positives + len(self.false_alerts)
        return self.true_positives / alerted if alerted else None

    def meets(self, bar: float) -> bool:
        """Recall and precision both at or above ``bar`` (a missing figure fails)."""
        return all(v is not None and v >= bar for v in (self.recall, self.precision))

    def as_json(self) -> dict[str, Any]:
        return {"rule": self.rule, "folder": self.folder, "positives": self.positives,
                "negatives": self.negatives, "true_positives": self.true_positives,
                "recall": self.recall, "precision": self.precision,
                "misses": self.misses, "false_alerts": self.false_alerts,
                "unreadable": self.unreadable}


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and p.suffix.lower() in _ARTICLE_SUFFIXES)


def evaluate(rule: str, query: Query, folder: Path) -> EvalReport:
    """The rule over ``folder/pos`` and ``folder/neg``. Raises ``FileNotFoundError``
    naming what is missing when the folder is not laid out so."""
    missing = [str(folder / sub) for sub in ("pos", "neg") if not (folder / sub).is_dir()]
    if missing:
        raise FileNotFoundError(f"{', '.join(missing)}: no such folder (expected "
                                f"{folder}/pos/ and {folder}/neg/ with articles)")
    report = EvalReport(rule, str(folder))
    for label in ("pos", "neg"):
        for path in _files(folder / label):
            try:
                raw = path.read_bytes()[:MAX_ARTICLE_BYTES]
                article = read_article(raw)
            except (OSError, ParseError) as exc:
                report.unreadable.append({"file": str(path), "error": str(exc)})
                continue
            doc = Document.build(title=article.title, text=article.text)
            match: MatchResult | None = query.match(doc)
            name = f"{label}/{path.name}"
            if label == "pos":
                report.positives += 1
                if match is not None:
                    report.true_positives += 1
                else:
                    report.misses.append({"file": name, "title": article.title,
                                          "why_not": query.explain(doc)})
            else:
                report.negatives += 1
                if match is not None:
                    report.false_alerts.append({"file": name, "title": article.title,
                                                "matched": match.words,
                                                "snippet": match.snippet()})
    return report


_LOWER_OPERATOR = re.compile(r'"[^"\u201c\u201d]*["\u201c\u201d]?'
                             r'|\u201c[^"\u201c\u201d]*["\u201c\u201d]?'
                             r"|(?<![\w:])(and|or|not)(?![\w*:])")


def lowercase_operators(query: str) -> list[tuple[int, str]]:
    """(position, word) of each lower-case ``and``/``or``/``not`` outside quotes:
    words here, not operators, which is rarely what the writer meant."""
    return [(m.start(1), m.group(1)) for m in _LOWER_OPERATOR.finditer(query) if m.group(1)]
