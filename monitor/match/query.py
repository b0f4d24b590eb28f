"""The watch-rule query language: parse once, match many articles cheaply.

Grammar (the README, "The query language")::

    query := or
    or    := and ("OR" and)*
    and   := not (["AND"] not)*           adjacency means AND
    not   := "NOT" not | near
    near  := atom ("NEAR/" N atom)*       within N words, either order
    atom  := WORD | WORD* | "a phrase" | "(" query ")" | FIELD ":" atom
    FIELD := title | text | source | url

Decisions, as a user sees them:

* Operators are recognised only in upper case; ``and``/``or``/``not``/``near``
  are ordinary words. A bare ``NEAR`` (without ``/n``) is an error, not a word.
* Without a field a term looks in the title and the text. ``source:`` matches the
  source's name and ``url:`` the article URL, both tokenised like text, so
  ``url:nknews`` matches ``https://www.nknews.org/...``. A field applies to the
  whole atom: ``title:(Kim OR Kishida)``; an inner field overrides an outer one.
  ``foo:bar`` with an unknown field is an error (use quotes for a literal colon).
* Text is compared in folded form (``monitor.text.normalise``): case, accents, hyphens,
  dashes, apostrophes and other punctuation do not matter. A WORD is tokenised
  the same way, so ``Jong-un`` is the phrase ``"Jong Un"``. Terms match whole
  words (``Kim`` does not match ``Kimura``); ``abduct*`` matches any word that
  starts with ``abduct``. ``*`` is allowed only at the end of a word or phrase.
  ``-word`` is refused with a hint to use NOT.
* Phrases match consecutive words, whatever punctuation is between them, in
  every script.
* Words in every language (``monitor.text.segment``): Japanese and Chinese text is
  cut into words by an analyser, and a CJK term matches wherever the text's
  words spell it out, starting and ending on word boundaries (``金正恩``
  matches 金正恩総書記は, ``会談`` matches inside 首脳会談, ``金`` does not
  match 金曜日); a term of ``LOOSE_END`` characters or more may end inside a
  word, and ``拉致*`` (a CJK term with ``*``) may always. A query's CJK parts
  are joined across spaces and punctuation (``"岸田 首相"`` is ``岸田首相``).
  A Hangul word matches a text word that begins with it (particles attached:
  ``김정은`` matches 김정은과); a one-syllable Hangul word matches whole
  (``북`` of 북·일 does not match 북한). A reading in parentheses after a name
  (金正恩（キムジョンウン）) is read through, neither breaking a phrase nor
  counting as words.
* ``A NEAR/n B``: some match of A and some match of B in the same field lie
  within n words, in either order: ``Kim NEAR/1 summit`` matches "Kim summit"
  and "summit Kim"; "Kim held a summit" needs ``NEAR/3``. Each side may be a
  group: ``(Kishida OR 岸田) NEAR/10 (Kim OR 金正恩)``; a group's positions are
  those of its positive terms (for ``(a AND b) NEAR/5 c`` it is enough that a or
  b is near c, provided both occur), and a NEAR's positions are those of the
  terms that met, so ``summit NEAR/2 (Kishida NEAR/20 Kim)`` needs "summit"
  near Kishida or Kim, not merely between them. Words are counted in every
  script. ``NEAR/0`` and a side without a positive term (``a NEAR/5 (NOT b)``)
  are errors.
* A query must contain a positive term that every match needs: ``NOT x`` or
  ``a OR NOT b`` would match nearly every article and are errors.
* Errors are ``QueryError`` with the rule name and the 0-based position; nesting
  deeper than ``MAX_DEPTH`` is an error, never a ``RecursionError``.

Matching returns the positive hits (terms under NOT never are hits) with
offsets into the original field text, for snippets and highlighting.

This module is the public surface (``compile_query``, ``Query``, ``RuleSet``,
``Document``, ``MatchResult``). The work is done by ``parse`` (text into a tree,
and its checks), ``index`` (a document's words by field and position; the
anchor index that picks candidate rules), ``evaluate`` (the tree on a
document: hits and ``MatchResult``), ``snippets`` (the snippet window and its
highlighted spans) and ``explain`` (why a rule missed).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from monitor.errors import QueryError
from monitor.match.evaluate import MAX_MATCHED_WORDS, Evaluator, Hit, MatchResult, Plan
from monitor.match.explain import explain
from monitor.match.index import LOOSE_END, AnchorIndex, Document
from monitor.match.parse import (
    DEFAULT_FIELDS,
    FIELDS,
    MAX_DEPTH,
    And,
    Near,
    Node,
    Not,
    Or,
    Term,
    anchors,
    parse,
)
from monitor.match.snippets import merge_spans

__all__ = ["Document", "Hit", "MatchResult", "Query", "RuleSet", "compile_query",
           "Term", "And", "Or", "Not", "Near", "Node", "FIELDS", "DEFAULT_FIELDS",
           "MAX_DEPTH", "LOOSE_END", "MAX_MATCHED_WORDS", "term_spans"]


class Query:
    """A compiled query: ``match`` a ``Document``; ``str()`` is its canonical form."""

    def __init__(self, text: str, rule: str | None, node: Node) -> None:
        self.text = text
        self.rule = rule
        self.node = node
        self._plan: Plan | None = None

    def __repr__(self) -> str:
        return f"Query({self.text!r}, rule={self.rule!r})"

    def __str__(self) -> str:
        return str(self.node)

    def match(self, doc: Document) -> MatchResult | None:
        """Why the query matches ``doc``, or None when it does not."""
        return Evaluator(doc, self.plan).result(self.node)

    def explain(self, doc: Document, limit: int = 12) -> list[str]:
        """Why the query does not match ``doc`` (empty when it does): each
        required part that found nothing, and for a NEAR whose sides were both
        found, how close they came; at most ``limit`` reasons, the near misses
        first, and a last line saying how many more there are."""
        reasons = explain(Evaluator(doc, self.plan), self.node)
        if len(reasons) > limit:
            reasons = reasons[:limit - 1] + [f"… and {len(reasons) - limit + 1} more reasons"]
        return reasons

    @property
    def plan(self) -> Plan:
        """The query made ready for evaluation, once (on first use)."""
        if self._plan is None:
            self._plan = Plan([self.node])
        return self._plan

    def __getstate__(self) -> dict[str, object]:
        # A plan finds its steps by the identity of nodes: it is made again.
        return {**self.__dict__, "_plan": None}

    def anchors(self) -> frozenset[Term]:
        """Positive terms of which at least one occurs in every match."""
        found = anchors(self.node)
        assert found is not None   # compile_query refuses unanchored queries
        return found

    def needles(self) -> list[str] | None:
        """Strings of which the folded text (``monitor.text.normalise``'s, of title
        and text) of every matching article contains at least one: a prefilter for
        stores.
        None when no such list exists (an anchor in the url or source field)."""
        needles: list[str] = []
        for term in self.anchors():
            if term.field in ("url", "source"):
                return None
            spelled = [text for kind, text in term.segments if kind in ("w", "p", "h")]
            if spelled:
                needles.append(max(spelled, key=len))
            else:
                # CJK text matches across runs joined by spaces: only its first
                # character is certain to stand in the folded text as written.
                needles.append(term.segments[0][1][0])
        return sorted(set(needles))


def compile_query(text: str, *, rule: str | None = None) -> Query:
    """Parse ``text``; raise QueryError naming ``rule`` and the position on a syntax error."""
    return Query(text, rule, parse(text, rule))


class RuleSet:
    """Many compiled queries, matched against a document at the cost of few.

    Each rule is filed under its anchor terms (one of which every match
    needs); a document is looked up by its words, the prefixes of its words and
    the characters of its CJK text, so only candidate rules are evaluated, and a
    term shared by rules is evaluated once per document.
    """

    def __init__(self, queries: Mapping[str, Query]) -> None:
        self.queries = dict(queries)
        self._order = {name: i for i, name in enumerate(self.queries)}
        self._index = AnchorIndex({name: q.anchors() for name, q in self.queries.items()})
        # One plan for all the rules, as their evaluator is one per document.
        self._plan = Plan(q.node for q in self.queries.values())

    def __len__(self) -> int:
        return len(self.queries)

    def candidates(self, doc: Document) -> set[str]:
        """Rules that may match ``doc`` (a superset of those that do)."""
        return self._index.candidates(doc)

    def match(self, doc: Document) -> dict[str, MatchResult]:
        """Every rule that matches ``doc``, in the order the rules were given."""
        evaluator = Evaluator(doc, self._plan)
        out: dict[str, MatchResult] = {}
        for name in sorted(self.candidates(doc), key=self._order.__getitem__):
            result = evaluator.result(self.queries[name].node)
            if result is not None:
                out[name] = result
        return out


def term_spans(text: str, terms: Iterable[str]) -> list[tuple[int, int]]:
    """Where the query engine finds any of ``terms`` (each as a phrase) in ``text``:
    sorted (start, end) spans, overlaps merged. For an alert raised by no match
    (``notify test``'s sample), highlighted as a real one would be."""
    doc = Document.build(text=text)
    spans: list[tuple[int, int]] = []
    for term in terms:
        try:
            query = compile_query('"' + term.replace('"', " ") + '"')
        except QueryError:
            continue            # nothing to search for in it
        result = query.match(doc)
        if result is not None:
            spans.extend((h.start, h.end) for h in result.hits if h.field == "text")
    return merge_spans(spans)
