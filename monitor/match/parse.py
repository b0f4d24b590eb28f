"""The query language's parser: text into a tree of Term, And, Or, Not and Near.

The grammar and what each construct means are in ``monitor.match.query``. The
parser also checks what the grammar cannot say: nesting at most ``MAX_DEPTH``
deep, a positive term on each side of NEAR, and a positive term that every
match needs (``anchors``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field as dc_field
from functools import cached_property
from itertools import pairwise
from typing import NoReturn

from monitor.errors import QueryError
from monitor.text.normalise import tokenize
from monitor.text.segment import words

FIELDS = ("title", "text", "source", "url")
DEFAULT_FIELDS = ("title", "text")
MAX_DEPTH = 48             # nesting of parentheses, NOT, fields and NEAR chains
_MAX_NEAR = 100_000

# Raises QueryError with a message and a 0-based position in the query text.
Fail = Callable[[str, int], NoReturn]

# --------------------------------------------------------------------------- AST

@dataclass(frozen=True)
class Term:
    """A word, prefix, phrase or CJK string, in folded form, limited to a field.

    ``segments`` are ``("w", word)``, ``("p", prefix)`` (last only),
    ``("h", hangul)`` (matches the start of a word), ``("c", cjk_text)`` and
    ``("q", cjk_prefix)`` (last only); consecutive CJK parts are already joined.
    """

    segments: tuple[tuple[str, str], ...]
    field: str | None = None
    display: str = dc_field(default="", compare=False)
    pos: int = dc_field(default=0, compare=False)

    def __post_init__(self) -> None:
        # Terms are the memo keys of evaluation: hash them once.
        object.__setattr__(self, "_hash", hash((self.segments, self.field)))

    def __hash__(self) -> int:
        return self._hash  # type: ignore[attr-defined]

    def __str__(self) -> str:
        prefix = f"{self.field}:" if self.field else ""
        return f'{prefix}"{self.display}"'

    # What a field must contain for the term to match there, computed once:
    # the evaluator skips a field (and a rule's branch) that lacks any of them.

    @cached_property
    def words(self) -> tuple[str, ...]:
        """The whole words of the term ("w" segments)."""
        return tuple(value for kind, value in self.segments if kind == "w")

    @cached_property
    def pairs(self) -> tuple[tuple[str, str], ...]:
        """The whole words of the term that must stand next to each other
        (consecutive "w" segments)."""
        return tuple((a, b) for (kind_a, a), (kind_b, b) in pairwise(self.segments)
                     if kind_a == kind_b == "w")

    @cached_property
    def prefixes(self) -> tuple[str, ...]:
        """The starts of words of the term ("p" and "h" segments)."""
        return tuple(value for kind, value in self.segments if kind in "ph")

    @cached_property
    def cjk(self) -> tuple[str, ...]:
        """The CJK strings of the term ("c" and "q" segments)."""
        return tuple(value for kind, value in self.segments if kind in "cq")


@dataclass(frozen=True)
class And:
    children: tuple[Node, ...]
    pos: int = dc_field(default=0, compare=False)

    def __str__(self) -> str:
        return "(" + " AND ".join(map(str, self.children)) + ")"


@dataclass(frozen=True)
class Or:
    children: tuple[Node, ...]
    pos: int = dc_field(default=0, compare=False)

    def __str__(self) -> str:
        return "(" + " OR ".join(map(str, self.children)) + ")"


@dataclass(frozen=True)
class Not:
    child: Node
    pos: int = dc_field(default=0, compare=False)

    def __str__(self) -> str:
        return f"(NOT {self.child})"


@dataclass(frozen=True)
class Near:
    left: Node
    right: Node
    distance: int
    pos: int = dc_field(default=0, compare=False)

    def __str__(self) -> str:
        return f"({self.left} NEAR/{self.distance} {self.right})"


Node = Term | And | Or | Not | Near



# ------------------------------------------------------------------------- lexer

_QUOTES = '"\u201c\u201d'          # " “ ” (a quote opened by either closes by either)
_FIELD_RE = re.compile(r"([A-Za-z]+):")
_NEAR_RE = re.compile(r"NEAR(?:/(.*))?\Z", re.S)


@dataclass(frozen=True)
class _Lexeme:
    kind: str          # LP RP AND OR NOT NEAR FIELD WORD PHRASE EOF
    text: str          # as written (for messages), or the field name / term text
    pos: int
    value: int = 0     # NEAR distance


def _lex(text: str, fail: Fail) -> list[_Lexeme]:
    out: list[_Lexeme] = []
    i, n = 0, len(text)
    after_field = False
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
            after_field = False
            continue
        if ch in "()":
            out.append(_Lexeme("LP" if ch == "(" else "RP", ch, i))
            i += 1
        elif ch in _QUOTES:
            j = i + 1
            while j < n and text[j] not in _QUOTES:
                j += 1
            if j >= n:
                fail("unterminated quote", i)
            out.append(_Lexeme("PHRASE", text[i + 1:j], i))
            i = j + 1
        else:
            # A field prefix is looked for before scanning the whole word, so that
            # "title:title:title:..." costs linear time.
            field = _FIELD_RE.match(text, i)
            if field and after_field and field.group(1).lower() not in FIELDS:
                field = None     # url:https://... : the colon belongs to the term
            if field:
                name = field.group(1).lower()
                if name not in FIELDS:
                    fail(f"unknown field {field.group(1)!r} (fields: {', '.join(FIELDS)})", i)
                out.append(_Lexeme("FIELD", name, i))
                i = field.end()
                after_field = True
                continue
            j = i
            while (j < n and not text[j].isspace() and text[j] not in "()"
                   and text[j] not in _QUOTES):
                j += 1
            word = text[i:j]
            near = _NEAR_RE.match(word)
            if word in ("AND", "OR", "NOT"):
                out.append(_Lexeme(word, word, i))
            elif near:
                digits = near.group(1)
                if digits is None or not digits.isascii() or not digits.isdigit():
                    fail("NEAR needs a distance in words, as in NEAR/5", i)
                if len(digits) > 6 or int(digits) > _MAX_NEAR:
                    fail(f"NEAR distance is larger than {_MAX_NEAR}", i)
                if int(digits) < 1:
                    fail("NEAR distance must be at least 1", i)
                out.append(_Lexeme("NEAR", word, i, int(digits)))
            else:
                if word[0] == "-" and len(word) > 1 and word[1].isalnum():
                    fail("'-' does not exclude a term; use NOT", i)
                out.append(_Lexeme("WORD", word, i))
            i = j
        after_field = False
    out.append(_Lexeme("EOF", "", n))
    return out


def _segments(raw: str, pos: int, fail: Fail) -> tuple[tuple[str, str], ...]:
    """Fold a WORD or phrase into segments; ``pos`` is where ``raw`` starts.

    Segments: ``("w", word)``, ``("p", prefix)`` (a Latin word before ``*``),
    ``("h", hangul)`` (a Hangul word, which matches the beginning of a text
    word, particles attached) and ``("c", cjk)`` (Japanese or Chinese
    characters, which match wherever the text's words spell them out).
    """
    star = raw.endswith("*")
    body = raw[:-1] if star else raw
    if "*" in body:
        fail("a wildcard * may only end a word", pos + body.index("*"))
    tokens = tokenize(body)
    if not tokens:
        what = "wildcard" if raw.strip() == "*" else repr(raw.strip())
        fail(f"{what} has no letters or digits to search for", pos)
    if star and tokens[-1].end != len(body):
        fail("a wildcard * must follow a letter or digit", pos + len(body))
    # Read as the text is (Japanese, so that Han is not cut by the Chinese
    # segmenter), then CJK words in a row are joined again: a CJK term matches
    # by its characters, wherever the text's words spell it out.
    parts = [w for w in words(body, tokens, japanese=True) if not w.aside]
    segments: list[tuple[str, str]] = []
    for k, word in enumerate(parts):
        if word.kind == "c":
            if segments and segments[-1][0] == "c":
                segments[-1] = ("c", segments[-1][1] + word.norm)
            else:
                segments.append(("c", word.norm))
            if star and k == len(parts) - 1:
                segments[-1] = ("q", segments[-1][1])   # may end inside a word
        elif word.kind == "h" and len(word.norm) > 1:
            segments.append(("h", word.norm))
        elif word.kind == "h":
            # One syllable (북, 일 of 북·일; 김 of 김 위원장) is an abbreviation that
            # stands alone: as a prefix it would match 북한, 일본, 김치.
            segments.append(("w", word.norm))
        else:
            segments.append(("p" if star and k == len(parts) - 1 else "w", word.norm))
    return tuple(segments)


# ------------------------------------------------------------------------ parser

class _Parser:
    def __init__(self, text: str, rule: str | None) -> None:
        self.text = text
        self.rule = rule
        self.depth = 0
        self.lexemes = _lex(text, self.fail)
        self.i = 0

    def fail(self, message: str, pos: int) -> NoReturn:
        raise QueryError(message, position=pos, rule=self.rule)

    def peek(self) -> _Lexeme:
        return self.lexemes[self.i]

    def take(self) -> _Lexeme:
        lexeme = self.lexemes[self.i]
        self.i += 1
        return lexeme

    def enter(self, pos: int) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            self.fail(f"query is nested more than {MAX_DEPTH} levels deep", pos)

    def parse(self) -> Node:
        if self.peek().kind == "EOF":
            self.fail("empty query", 0)
        node = self.or_(None)
        extra = self.peek()
        if extra.kind == "RP":
            self.fail("unbalanced ')'", extra.pos)
        assert extra.kind == "EOF", extra
        return node

    def or_(self, after: _Lexeme | None) -> Node:
        children = [self.and_(after)]
        while self.peek().kind == "OR":
            op = self.take()
            children.append(self.and_(op))
        return children[0] if len(children) == 1 else Or(tuple(children), pos=children[0].pos)

    def and_(self, after: _Lexeme | None) -> Node:
        children = [self.not_(after)]
        while True:
            kind = self.peek().kind
            if kind == "AND":
                op = self.take()
                children.append(self.not_(op))
            elif kind in ("WORD", "PHRASE", "LP", "NOT", "FIELD"):
                children.append(self.not_(None))
            else:
                break
        return children[0] if len(children) == 1 else And(tuple(children), pos=children[0].pos)

    def not_(self, after: _Lexeme | None) -> Node:
        if self.peek().kind != "NOT":
            return self.near(after)
        op = self.take()
        self.enter(op.pos)
        child = self.not_(op)
        self.depth -= 1
        return child.child if isinstance(child, Not) else Not(child, pos=op.pos)

    def near(self, after: _Lexeme | None) -> Node:
        left = self.atom(after)
        chain = 0
        while self.peek().kind == "NEAR":
            op = self.take()
            self.enter(op.pos)   # a chain of NEARs nests to the left
            chain += 1
            left = Near(left, self.atom(op), op.value, pos=op.pos)
        self.depth -= chain
        return left

    def atom(self, after: _Lexeme | None) -> Node:
        lexeme = self.take()
        if lexeme.kind in ("WORD", "PHRASE"):
            start = lexeme.pos + (1 if lexeme.kind == "PHRASE" else 0)
            display = " ".join(lexeme.text.split())
            return Term(_segments(lexeme.text, start, self.fail), None, display, lexeme.pos)
        if lexeme.kind == "LP":
            self.enter(lexeme.pos)
            node = self.or_(lexeme)
            if self.take().kind != "RP":
                self.fail("unbalanced '('", lexeme.pos)
            self.depth -= 1
            return node
        if lexeme.kind == "FIELD":
            self.enter(lexeme.pos)
            node = _with_field(self.atom(lexeme), lexeme.text)
            self.depth -= 1
            return node
        self.unexpected(lexeme, after)
        raise AssertionError("unreachable")

    def unexpected(self, lexeme: _Lexeme, after: _Lexeme | None) -> None:
        what = "a field" if after is not None and after.kind == "FIELD" else None
        if lexeme.kind in ("EOF", "RP"):
            if after is None:
                self.fail("unbalanced ')'", lexeme.pos)
            if after.kind == "LP":
                if lexeme.kind == "EOF":
                    self.fail("unbalanced '('", after.pos)
                self.fail("empty parentheses", after.pos)
            if what:
                self.fail(f"field '{after.text}:' needs a term after it", after.pos)
            self.fail(f"dangling operator {after.text!r}: it needs a term after it", after.pos)
        # An operator where a term should be.
        if after is None or after.kind == "LP":
            self.fail(f"dangling operator {lexeme.text!r}: it needs a term before it", lexeme.pos)
        if what:
            self.fail(f"field '{after.text}:' needs a term after it", after.pos)
        self.fail(f"unexpected {lexeme.text!r} after {after.text!r}", lexeme.pos)


def _with_field(node: Node, name: str) -> Node:
    """Apply ``name:`` to every term under ``node`` that has no field of its own."""
    if isinstance(node, Term):
        return node if node.field else Term(node.segments, name, node.display, node.pos)
    if isinstance(node, And):
        return And(tuple(_with_field(c, name) for c in node.children), node.pos)
    if isinstance(node, Or):
        return Or(tuple(_with_field(c, name) for c in node.children), node.pos)
    if isinstance(node, Not):
        return Not(_with_field(node.child, name), node.pos)
    return Near(_with_field(node.left, name), _with_field(node.right, name),
                node.distance, node.pos)


def children(node: Node) -> tuple[Node, ...]:
    """The nodes directly under ``node``."""
    if isinstance(node, (And, Or)):
        return node.children
    if isinstance(node, Not):
        return (node.child,)
    if isinstance(node, Near):
        return (node.left, node.right)
    return ()


def _depth(node: Node) -> tuple[int, int]:
    """(depth, position of the deepest node), without recursion."""
    best, where = 0, 0
    stack = [(node, 1)]
    while stack:
        n, d = stack.pop()
        if d > best:
            best, where = d, n.pos
        stack.extend((c, d + 1) for c in children(n))
    return best, where


def _first_not(node: Node) -> int:
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, Not):
            return n.pos
        stack.extend(reversed(children(n)))
    return 0


def term_key(term: Term) -> tuple[str, str]:
    """A condition any match of ``term`` needs, for the RuleSet index."""
    words = [v for k, v in term.segments if k == "w"]
    if words:
        return "w", max(words, key=len)
    cjk = [v for k, v in term.segments if k in "cq"]
    if cjk:
        return "c", max(cjk, key=len)
    return "p", max((v for k, v in term.segments if k in "ph"), key=len)


def anchors(node: Node) -> frozenset[Term] | None:
    """Terms of which at least one occurs in any match; None if none is needed."""
    if isinstance(node, Term):
        return frozenset((node,))
    if isinstance(node, Not):
        return None
    if isinstance(node, Or):
        found: set[Term] = set()
        for child in node.children:
            got = anchors(child)
            if got is None:
                return None
            found |= got
        return frozenset(found)
    children = node.children if isinstance(node, And) else (node.left, node.right)
    sets = [s for s in map(anchors, children) if s is not None]
    if not sets:
        return None
    # Fewest terms first; then prefer exact words and long ones, which are rarer.
    return min(sets, key=_anchor_cost)


def _anchor_cost(terms: frozenset[Term]) -> tuple[int, float]:
    return len(terms), sum(_key_cost(term_key(t)) for t in terms)


def _key_cost(key: tuple[str, str]) -> float:
    kind, value = key
    return (3.0 if kind == "p" else 1.0) / (1 + len(value))


def _check(node: Node, fail: Fail) -> None:
    depth, where = _depth(node)
    if depth > MAX_DEPTH:
        fail(f"query is nested more than {MAX_DEPTH} levels deep", where)
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, Near) and (anchors(n.left) is None or anchors(n.right) is None):
            fail("NEAR needs a positive term on each side", n.pos)
        stack.extend(children(n))
    if anchors(node) is None:
        fail("the query has no positive term that every match needs "
             "(it would match nearly every article)", _first_not(node))



def parse(text: str, rule: str | None = None) -> Node:
    """The tree of ``text``; QueryError naming ``rule`` and the position if it is
    not a valid query, or one that would match nearly every article."""
    parser = _Parser(text, rule)
    node = parser.parse()
    _check(node, parser.fail)
    return node
