"""Evaluating a parsed query on a Document: terms, phrases, NEAR and the result.

A query is made ready once, as a ``Plan``: each node of its tree becomes a
``Step`` that knows what it needs and in which order to look. An
``Evaluator`` runs the steps on one document and remembers each term's
matches, so that a term shared by many rules is looked for once per document.

The steps save work in four ways, none of which changes what a match returns
(tests/test_match_equivalence.py holds them to it):

* A field is searched for a term only if it has the term's words, the pairs
  of its words side by side, its word starts and its CJK text (``Term.words``,
  ``pairs``, ``prefixes``, ``cjk``): a few look-ups that say no for most
  terms of a large rule.
* A node is skipped when one of its parts cannot match: a ``Probe`` of the
  part's anchors (terms of which every match has one) finds none of them in
  the document. An English article does not evaluate the Japanese and Korean
  halves of a rule, nor an AND whose last part's phrases are not in it.
* An AND evaluates its smallest parts first and its NOTs last, so that a part
  that fails stops it early; its spans are still those of its parts in the
  order written.
* Under NOT only whether a part matches counts: an OR there stops at its
  first matching alternative, an AND builds no spans.

A term's matches are remembered under the term's meaning, so that two
spellings of one term ("北日" and "北 日") share them, and the hits are named
as the one first evaluated writes it. So that the names are those an
evaluation in the order written gives, a node with a term spelled two ways
beneath it is evaluated in the order written, and never skipped as a whole,
when that term may occur in the document (its parts without one may still
be skipped).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from monitor.match.index import LOOSE_END, Document, Field
from monitor.match.parse import (
    DEFAULT_FIELDS,
    FIELDS,
    And,
    Node,
    Not,
    Or,
    Term,
    anchors,
    term_key,
)
from monitor.match.parse import (
    children as child_nodes,
)
from monitor.match.snippets import snippet_window

_FIELD_ORDER = {name: i for i, name in enumerate(FIELDS)}

# A span is one occurrence of a term: (field, first position, last position,
# leaves); a leaf is (term display, field, start, end) with offsets into the
# field's text. A NEAR keeps its participants' spans as they are, so that a
# NEAR around it measures from each term, not from the stretch between them.
Leaf = tuple[str, str, int, int]
Span = tuple[str, int, int, tuple[Leaf, ...]]


class Probe:
    """A look-up that says whether any of a group of terms may occur in a
    document, in all fields at once: for each term a thing any of its matches
    needs, the rarer the better: a pair of its words side by side (for a
    phrase), else its longest word, word start or CJK text (``term_key``).
    """

    __slots__ = ("words", "pairs", "prefixes", "initials", "cjk")

    def __init__(self, terms: Iterable[Term]):
        pairs: set[tuple[str, str]] = set()
        keys: set[tuple[str, str]] = set()
        for term in terms:
            if term.pairs:
                pairs.add(max(term.pairs, key=lambda pair: len(pair[0]) + len(pair[1])))
            else:
                keys.add(term_key(term))
        self.pairs = frozenset(pairs)
        self.words = frozenset(value for kind, value in keys if kind == "w")
        self.prefixes = sorted(value for kind, value in keys if kind == "p")
        self.initials = frozenset(prefix[0] for prefix in self.prefixes)
        self.cjk = sorted(value for kind, value in keys if kind == "c")

    def passes(self, ev: Evaluator) -> bool:
        doc = ev.doc
        if not self.words.isdisjoint(doc.vocabulary):
            return True
        if self.pairs and not self.pairs.isdisjoint(ev.pairs()):
            return True
        if self.cjk:
            text = doc.cjk_text
            if text and any(needle in text for needle in self.cjk):
                return True
        if self.prefixes and not self.initials.isdisjoint(ev.initials()):
            vocab = doc.sorted_vocabulary
            for prefix in self.prefixes:
                k = bisect.bisect_left(vocab, prefix)
                if k < len(vocab) and vocab[k].startswith(prefix):
                    return True
        return False


# Probes of which each must pass for a node to match; empty when the node is
# not to be skipped as a whole.
Needs = tuple[Probe, ...]


_UNSEEN: list[Span] = []   # compared by identity: a term not evaluated yet


class Evaluator:
    """Runs a plan's steps against one document, remembering each term's
    matches and each probe's answer."""

    def __init__(self, doc: Document, plan: Plan):
        self.doc = doc
        self.plan = plan
        # Each term's spans by its number in the plan (terms of one meaning
        # share a number), or _UNSEEN before it is first evaluated.
        self.memo: list[list[Span] | None] = [_UNSEEN] * plan.terms
        self._probes: dict[Probe, bool] = {}
        self._pairs: set[tuple[str, str]] | None = None
        self._initials: set[str] | None = None

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
        return self.plan.step(node).spans(self)

    def term(self, term: Term) -> list[Span] | None:
        """The spans of ``term``, named as it is written."""
        spans: list[Span] = []
        leaf_name = term.display
        for name in (term.field,) if term.field else DEFAULT_FIELDS:
            f = self.doc.fields[name]
            if not self._may_occur(f, term):
                continue
            for first, last, start, end in find_term(f, term.segments):
                spans.append((name, first, last, ((leaf_name, name, start, end),)))
        return spans or None

    def _may_occur(self, f: Field, term: Term) -> bool:
        """Whether ``f`` has the words, word pairs, word starts and CJK text that
        ``term`` needs (``find_term`` finds nothing in a field that lacks one)."""
        positions = f.positions
        for word in term.words:
            if word not in positions:
                return False
        if term.pairs:
            pairs = self.pairs()
            for pair in term.pairs:
                if pair not in pairs:
                    return False
        for prefix in term.prefixes:
            vocab = f.vocabulary
            k = bisect.bisect_left(vocab, prefix)
            if k == len(vocab) or not vocab[k].startswith(prefix):
                return False
        for text in term.cjk:
            if text not in f.chain.text and text not in f.aside.text:
                return False
        return True

    def pairs(self) -> set[tuple[str, str]]:
        """The words that stand side by side in a field of the document, of
        those whose first word begins a pair of the plan's terms."""
        if self._pairs is None:
            self._pairs = set()
            for f in self.doc.fields.values():
                wnorms, last = f.wnorms, len(f.wnorms) - 1
                for word in self.plan.pair_starts.intersection(f.positions):
                    for p in f.positions[word]:
                        if p < last:
                            self._pairs.add((word, wnorms[p + 1]))
        return self._pairs

    def initials(self) -> set[str]:
        """The first character of every word of the document (CJK aside)."""
        if self._initials is None:
            self._initials = {word[0] for word in self.doc.vocabulary}
        return self._initials

    def passes(self, probe: Probe) -> bool:
        """Whether ``probe`` passes in the document (asked once per document)."""
        ok = self._probes.get(probe)
        if ok is None:
            ok = self._probes[probe] = probe.passes(self)
        return ok

    def can_match(self, needs: Needs) -> bool:
        """Whether each probe of ``needs`` passes in the document."""
        known = self._probes
        for probe in needs:
            ok = known.get(probe)
            if ok is None:
                ok = known[probe] = probe.passes(self)
            if not ok:
                return False
        return True

    def as_written(self, careful: Probe | None) -> bool:
        """Whether a step with ``careful`` is to be evaluated in the order written."""
        return careful is not None and self.passes(careful)


# --------------------------------------------------------------------- the plan

class Step:
    """One node of a query, ready to evaluate.

    ``needs``: probes of which each must pass for the node to match (empty: no
    look-up). ``careful``: a probe of the terms spelled two ways beneath the
    node; when it passes, the node is evaluated in the order written, without
    look-ups or stopping early, as the hits' names depend on that order.
    """

    __slots__ = ()

    def spans(self, ev: Evaluator) -> list[Span] | None:
        """The node's spans in the evaluator's document, or None: no match."""
        raise NotImplementedError

    def matches(self, ev: Evaluator) -> bool:
        """Whether the node matches (all a NOT needs to know)."""
        return self.spans(ev) is not None


class TermStep(Step):
    __slots__ = ("term", "number", "word")

    def __init__(self, term: Term, number: int):
        self.term = term      # as written here: the hits' name if evaluated here first
        self.number = number  # the same for every term of that meaning in the plan
        # A word every match needs, looked up before anything else.
        self.word = max(term.words, key=len) if term.words else None

    def spans(self, ev: Evaluator) -> list[Span] | None:
        found = ev.memo[self.number]
        if found is _UNSEEN:
            if self.word is not None and self.word not in ev.doc.vocabulary:
                found = None
            else:
                found = ev.term(self.term)
            ev.memo[self.number] = found
        return found


class AndStep(Step):
    __slots__ = ("parts", "order", "needs", "careful")

    def __init__(self, parts: list[Step], order: list[int], needs: Needs,
                 careful: Probe | None):
        self.parts = parts    # in the order written
        self.order = order    # the order to evaluate them in
        self.needs = needs
        self.careful = careful

    def _order(self, ev: Evaluator) -> Iterable[int] | None:
        """The order to evaluate the parts in, or None: the AND cannot match."""
        if ev.as_written(self.careful):
            return range(len(self.parts))
        return self.order if ev.can_match(self.needs) else None

    def spans(self, ev: Evaluator) -> list[Span] | None:
        order = self._order(ev)
        if order is None:
            return None
        found: list[list[Span]] = [[]] * len(self.parts)
        for i in order:
            got = self.parts[i].spans(ev)
            if got is None:
                return None
            found[i] = got
        return [span for got in found for span in got]

    def matches(self, ev: Evaluator) -> bool:
        order = self._order(ev)
        return order is not None and all(self.parts[i].matches(ev) for i in order)


class OrStep(Step):
    __slots__ = ("parts", "needs", "careful")

    def __init__(self, parts: list[Step], needs: Needs, careful: Probe | None):
        self.parts = parts
        self.needs = needs
        self.careful = careful

    def spans(self, ev: Evaluator) -> list[Span] | None:
        if not ev.as_written(self.careful) and not ev.can_match(self.needs):
            return None
        out: list[Span] = []
        matched = False
        for part in self.parts:
            got = part.spans(ev)
            if got is not None:
                matched = True
                out += got
        return out if matched else None

    def matches(self, ev: Evaluator) -> bool:
        if ev.as_written(self.careful):
            return self.spans(ev) is not None
        return ev.can_match(self.needs) and any(part.matches(ev) for part in self.parts)


class NotStep(Step):
    __slots__ = ("part",)

    def __init__(self, part: Step):
        self.part = part

    def spans(self, ev: Evaluator) -> list[Span] | None:
        return None if self.part.matches(ev) else []

    def matches(self, ev: Evaluator) -> bool:
        return not self.part.matches(ev)


class NearStep(Step):
    __slots__ = ("left", "right", "distance", "needs", "careful")

    def __init__(self, left: Step, right: Step, distance: int, needs: Needs,
                 careful: Probe | None):
        self.left = left
        self.right = right
        self.distance = distance
        self.needs = needs
        self.careful = careful

    def spans(self, ev: Evaluator) -> list[Span] | None:
        if not ev.as_written(self.careful) and not ev.can_match(self.needs):
            return None
        left = self.left.spans(ev)
        if not left:
            return None
        right = self.right.spans(ev)
        if not right:
            return None
        return near(left, right, self.distance) or None


class Plan:
    """Query trees made ready to evaluate on many documents: a ``Step`` for
    each node (see the module's docstring for what the steps save)."""

    def __init__(self, roots: Iterable[Node]):
        self.roots = list(roots)        # the nodes stay alive: steps are found by id
        self._steps: dict[int, Step] = {}
        self._numbers: dict[Term, int] = {}
        self._probes: dict[frozenset[Term], Probe] = {}
        self._sizes: dict[int, int] = {}                  # by id of node
        self._spelled: dict[int, frozenset[Term]] = {}    # by id of node
        spellings: dict[Term, set[str]] = {}
        for term in _terms(self.roots):
            spellings.setdefault(term, set()).add(term.display)
            self._numbers.setdefault(term, len(self._numbers))
        self.terms = len(self._numbers)
        self.pair_starts = frozenset(first for term in self._numbers for first, _ in term.pairs)
        self._spelled_apart = {term for term, seen in spellings.items() if len(seen) > 1}
        for root in self.roots:
            self._compile(root)

    def step(self, node: Node) -> Step:
        """The step of ``node``, a node of one of the plan's trees."""
        return self._steps[id(node)]

    def _compile(self, node: Node) -> Step:
        step = self._steps.get(id(node))
        if step is not None:
            return step
        children = child_nodes(node)
        parts = [self._compile(child) for child in children]
        # The node's size and its terms spelled two ways, from its children's.
        self._sizes[id(node)] = 1 + sum(self._sizes[id(child)] for child in children)
        spelled = (self._spelled_apart & {node} if isinstance(node, Term)
                   else frozenset().union(*(self._spelled[id(child)] for child in children)))
        self._spelled[id(node)] = frozenset(spelled)
        careful = self._probe(frozenset(spelled)) if spelled else None
        if isinstance(node, Term):
            step = TermStep(node, self._numbers[node])
        elif isinstance(node, And):
            # Positive parts before NOTs (which rarely fail), smaller before larger.
            order = sorted(range(len(parts)), key=lambda i: (isinstance(children[i], Not),
                                                             self._sizes[id(children[i])]))
            step = AndStep(parts, order, self._needs(children), careful)
        elif isinstance(node, Or):
            step = OrStep(parts, self._needs([node]), careful)
        elif isinstance(node, Not):
            step = NotStep(parts[0])
        else:
            step = NearStep(parts[0], parts[1], node.distance, self._needs(children), careful)
        self._steps[id(node)] = step
        return step

    def _needs(self, nodes: Iterable[Node]) -> Needs:
        """A probe for each node with anchors (one of its terms occurs in any of
        its matches)."""
        return tuple(self._probe(found) for found in map(anchors, nodes) if found is not None)

    def _probe(self, terms: frozenset[Term]) -> Probe:
        """The probe of ``terms``: one object for a group met again, so that an
        evaluator finds its answer once per document."""
        if terms not in self._probes:
            self._probes[terms] = Probe(terms)
        return self._probes[terms]


def _nodes(node: Node) -> Iterator[Node]:
    """``node`` and every node under it."""
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        stack.extend(child_nodes(n))


def _terms(nodes: Iterable[Node]) -> Iterator[Term]:
    """Every term under ``nodes``, NOT or not."""
    return (n for node in nodes for n in _nodes(node) if isinstance(n, Term))


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

