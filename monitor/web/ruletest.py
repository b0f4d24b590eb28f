"""The rules page's test form: does a rule match this text, and why (or why not).

A match shows what ``rules test`` shows: the matched words and a snippet for each,
with the words marked where the query engine found them. A miss shows each part
of the rule's top-level AND (or the whole query) with what it found, so that the
part that failed stands out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from monitor.query import And, Document, Not, Query, compile_query


@dataclass
class Clause:
    text: str
    ok: bool
    found: list[str]
    negated: bool = False


@dataclass
class Trial:
    rule: str
    title: str
    url: str
    matched: bool
    terms: list[str] = field(default_factory=list)
    snippet: tuple[str, list[tuple[int, int]]] = ("", [])
    snippets: list[tuple[str, str]] = field(default_factory=list)
    clauses: list[Clause] = field(default_factory=list)


def split_text(pasted: str) -> tuple[str, str]:
    """A pasted article: its first line is the headline (as for `rules test -`)."""
    text = pasted.replace("\r\n", "\n").strip()
    first, _, rest = text.partition("\n")
    return first.strip(), rest.strip() or first.strip()


def try_rule(name: str, query_text: str, *, title: str, text: str, url: str = "") -> Trial:
    query = compile_query(query_text, rule=name)
    doc = Document.build(title=title, text=text, url=url)
    match = query.match(doc)
    result = Trial(rule=name, title=title, url=url, matched=match is not None)
    if match is not None:
        result.terms = match.terms
        result.snippet = match.highlighted()
        result.snippets = match.snippets()
        return result
    parts = query.node.children if isinstance(query.node, And) else (query.node,)
    for part in parts:
        if isinstance(part, Not):
            inner = Query(str(part.child), name, part.child).match(doc)
            result.clauses.append(Clause(str(part.child), inner is None,
                                         inner.terms if inner else [], negated=True))
        else:
            found = Query(str(part), name, part).match(doc)
            result.clauses.append(Clause(str(part), found is not None,
                                         found.terms if found else []))
    return result
