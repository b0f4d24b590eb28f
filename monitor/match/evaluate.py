"""Evaluating a parsed query on a Document: terms, phrases, NEAR and the result.

An evaluator remembers each term's matches, so that a term shared by many
rules is looked for once per document.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass

from monitor.match.index import LOOSE_END, Document, Field
from monitor.match.parse import DEFAULT_FIELDS, FIELDS, And, Node, Not, Or, Term
from monitor.match.snippets import snippet_window

_FIELD_ORDER = {name: i for i, name in enumerate(FIELDS)}

# A span is one occurrence of a term: (field, first position, last position,
# leaves); a leaf is (term display, field, start, end) with offsets into the
# field's text. A NEAR keeps its participants' spans as they are, so that a
# NEAR around it measures from each term, not from the stretch between them.
Leaf = tuple[str, str, int, int]
Span = tuple[str, int, int, tuple[Leaf, ...]]


class Evaluator:
    """Evaluates nodes against one document, remembering each term's matches."""

    def __init__(self, doc: Document):
        self.doc = doc
        self.memo: dict[Term, list[Span] | None] = {}

    def result(self, node: Node) -> MatchResult | None:
        spans = self.eval(node)
        if spans is None:
            return None
        leaves = {leaf for span in spans for leaf in span[3]}
        ordered = sorted(leaves, key=lambda leaf: (_FIELD_ORDER[leaf[1]], *leaf[2:], leaf[0]))
        hits = [Hit(term, f, start, end, self.doc.fields[f].text[start:end])
                for term, f, start, end in ordered]
        return MatchResult(hits, self.doc)

    def eval(self, node: Node) -> list[Span] | None:
        """The spans of a match (possibly none, under NOT), or None: no match."""
        if isinstance(node, Term):
            if node not in self.memo:
                self.memo[node] = self.term(node)
            return self.memo[node]
        if isinstance(node, And):
            spans: list[Span] = []
            for child in node.children:
                got = self.eval(child)
                if got is None:
                    return None
                spans.extend(got)
            return spans
        if isinstance(node, Or):
            found = [got for got in map(self.eval, node.children) if got is not None]
            return [span for got in found for span in got] if found else None
        if isinstance(node, Not):
            return None if self.eval(node.child) is not None else []
        left = self.eval(node.left)
        if not left:
            return None
        right = self.eval(node.right)
        if not right:
            return None
        return near(left, right, node.distance) or None

    def term(self, term: Term) -> list[Span] | None:
        spans: list[Span] = []
        for name in (term.field,) if term.field else DEFAULT_FIELDS:
            f = self.doc.fields[name]
            leaf_name = term.display
            for first, last, start, end in find_term(f, term.segments):
                spans.append((name, first, last, ((leaf_name, name, start, end),)))
        return spans or None


def find_term(f: Field, segments: tuple[tuple[str, str], ...]
              ) -> Iterator[tuple[int, int, int, int]]:
    """Each match of a term in a field: (first position, last position, start, end)."""
    wtok, wnorms, cjk = f.wtok, f.wnorms, f.cjk
    kind, value = segments[0]
    rest = segments[1:]
    if kind in "cq":
        starts = []
        for chain in ((f.chain, f.aside) if not rest else (f.chain,)):
            if not chain.text:
                continue
            begins, ends = chain.starts, chain.ends
            size = len(value)
            loose = size >= LOOSE_END or kind == "q"
            for k in chain.find(value):
                b = begins.get(k)
                if b is None:
                    continue
                e = ends.get(k + size)
                if e is None and loose and chain.text[k + size - 1] != "\0":
                    e = chain.end_inside(k + size)
                if e is not None:
                    starts.append((b[0], e[0], b[1], e[1]))
    else:
        found = f.positions.get(value, ()) if kind == "w" else f.prefix_positions(value)
        starts = [(p, p, wtok[p].start, wtok[p].end) for p in found]
    if not rest:
        yield from starts
        return
    n = len(wnorms)
    for first, last, start, end in starts:
        pos = last + 1
        for kind, value in rest:
            if pos >= n:
                break
            if kind in "cq":
                if pos not in cjk:
                    break
                chain = f.chain
                offset = chain.offset_of[pos]
                if not chain.text.startswith(value, offset):
                    break
                e = chain.ends.get(offset + len(value))
                if e is None and (kind == "q" or len(value) >= LOOSE_END):
                    e = chain.end_inside(offset + len(value))
                if e is None:
                    break
                last, end = e
                pos = last + 1
            elif pos in cjk or not (wnorms[pos] == value if kind == "w"
                                    else wnorms[pos].startswith(value)):
                break
            else:
                last, end = pos, wtok[pos].end
                pos += 1
        else:
            yield first, last, start, end


def near(left: list[Span], right: list[Span], distance: int) -> list[Span]:
    """The spans of either side that have a partner on the other side within
    ``distance`` positions, each kept as it is (so every participant is a hit)."""
    out = _partnered(left, right, distance)
    out.extend(_partnered(right, left, distance))
    return out


def _by_field(spans: list[Span]) -> dict[str, tuple[list[int], list[int], list[int]]]:
    """Per field: the spans' first positions sorted, their last positions in the
    same order, and the running maximum of those last positions."""
    groups: dict[str, list[tuple[int, int]]] = {}
    for name, first, last, _ in spans:
        groups.setdefault(name, []).append((first, last))
    out = {}
    for name, pairs in groups.items():
        pairs.sort()
        firsts = [a for a, _ in pairs]
        lasts = [b for _, b in pairs]
        running, top = [], -1
        for b in lasts:
            top = max(top, b)
            running.append(top)
        out[name] = (firsts, lasts, running)
    return out


def _partnered(spans: list[Span], others: list[Span], distance: int) -> list[Span]:
    # A span s and o are within d when o.first <= s.last + d and o.last >= s.first - d:
    # among the others starting early enough, the one reaching furthest decides.
    # O(log n) a span, however large either side.
    index = _by_field(others)
    out: list[Span] = []
    for span in spans:
        group = index.get(span[0])
        if group is None:
            continue
        firsts, _, running = group
        k = bisect.bisect_right(firsts, span[2] + distance)
        if k and running[k - 1] >= span[1] - distance:
            out.append(span)
    return out


def closest(left: list[Span], right: list[Span]) -> int | None:
    """The smallest distance, in positions, between a left and a right span in
    one field, or None when they share no field."""
    index = _by_field(right)
    best: int | None = None
    for name, first, last, _ in left:
        group = index.get(name)
        if group is None:
            continue
        firsts, _, running = group
        k = bisect.bisect_left(firsts, first)
        if k < len(firsts):      # the next one starting at or after this span
            gap = max(firsts[k] - last, 0)
            best = gap if best is None else min(best, gap)
        if k:                    # of those starting before it, the one reaching furthest
            gap = max(first - running[k - 1], 0)
            best = gap if best is None else min(best, gap)
    return best



@dataclass(frozen=True)
class Hit:
    term: str      # the term as written in the query, without its field:
                   # 'Kim Jong Un', 'abduct*', '岸田' (for url:nknews, 'nknews')
    field: str     # title | text | source | url
    start: int     # offsets in the original field text
    end: int
    text: str      # the matched original text, e.g. 'Kim Jong-un'


MAX_MATCHED_WORDS = 30


class MatchResult:
    """Why a query matched a document: its hits, and snippets around them."""

    def __init__(self, hits: list[Hit], doc: Document):
        self.hits = hits
        self.doc = doc

    def __repr__(self) -> str:
        return f"MatchResult(words={self.words!r}, hits={len(self.hits)})"

    @property
    def terms(self) -> list[str]:
        """Distinct query terms that matched, in order of first appearance
        in the document (title first, then text, source, url)."""
        return list(dict.fromkeys(h.term for h in self.hits))

    @property
    def words(self) -> list[str]:
        """The words of the article that matched, as the article wrote them
        ('abducted', 'Kim Jong-un', '金正恩'), distinct, in order of first
        appearance; at most ``MAX_MATCHED_WORDS``. Hits in the url and source
        fields are left out when the title or text has some."""
        hits = [h for h in self.hits if h.field in DEFAULT_FIELDS] or self.hits
        out: dict[str, None] = {}
        # A hit inside a longer one ("Kim" inside "Kim Jong Un") is not a word of its own.
        reach: dict[str, int] = {}
        covered: set[int] = set()
        for i, h in sorted(enumerate(hits), key=lambda ih: (ih[1].field, ih[1].start, -ih[1].end)):
            if h.end <= reach.get(h.field, -1):
                covered.add(i)
            else:
                reach[h.field] = h.end
        for i, h in enumerate(hits):
            if i in covered:
                continue
            written = " ".join(h.text.split())
            if written and written not in out:
                out[written] = None
                if len(out) >= MAX_MATCHED_WORDS:
                    break
        return list(out)

    def snippet(self, width: int = 200) -> str:
        """One readable snippet around the densest cluster of hits in the text
        (the title if the text has none)."""
        return self.highlighted(width)[0]

    def highlighted(self, width: int = 200) -> tuple[str, list[tuple[int, int]]]:
        """``snippet(width)`` and the (start, end) spans of the hits within it,
        sorted, overlapping hits merged, clipped to the snippet."""
        name = next((f for f in ("text", "title") if any(h.field == f for h in self.hits)),
                    None)
        if name is None:     # only url/source hits: show the start of the article
            name = "text" if self.doc.fields["text"].text.strip() else "title"
        hits = [h for h in self.hits if h.field == name]
        return snippet_window(self.doc.fields[name].text, [(h.start, h.end) for h in hits], width)

    def snippets(self, width: int = 160, limit: int = 50) -> list[tuple[str, str]]:
        """(term, snippet) for each matched term (at most ``limit``), around its first hit."""
        first_field: dict[str, str] = {}
        spans: dict[str, list[tuple[int, int]]] = {}
        for h in self.hits:
            where = first_field.setdefault(h.term, h.field)
            if where == h.field:
                spans.setdefault(h.term, []).append((h.start, h.end))
        return [(term, snippet_window(self.doc.text_of(first_field[term]), spans[term], width)[0])
                for term in list(first_field)[:limit]]

