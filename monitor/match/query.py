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
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Union

from monitor.errors import QueryError
from monitor.text.normalise import tokenize
from monitor.text.segment import HANGUL_RE, has_kana, words

__all__ = ["Document", "Hit", "MatchResult", "Query", "RuleSet", "compile_query",
           "Term", "And", "Or", "Not", "Near", "FIELDS", "MAX_DEPTH"]

FIELDS = ("title", "text", "source", "url")
DEFAULT_FIELDS = ("title", "text")
MAX_DEPTH = 48             # nesting of parentheses, NOT, fields and NEAR chains
_MAX_NEAR = 100_000
_FIELD_ORDER = {name: i for i, name in enumerate(FIELDS)}


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


Node = Union[Term, And, Or, Not, Near]


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


def _lex(text: str, fail) -> list[_Lexeme]:
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
            while j < n and not text[j].isspace() and text[j] not in "()" and text[j] not in _QUOTES:
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


def _segments(raw: str, pos: int, fail) -> tuple[tuple[str, str], ...]:
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
    def __init__(self, text: str, rule: str | None):
        self.text = text
        self.rule = rule
        self.depth = 0
        self.lexemes = _lex(text, self.fail)
        self.i = 0

    def fail(self, message: str, pos: int):
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


def _children(node: Node) -> tuple[Node, ...]:
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
        stack.extend((c, d + 1) for c in _children(n))
    return best, where


def _first_not(node: Node) -> int:
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, Not):
            return n.pos
        stack.extend(reversed(_children(n)))
    return 0


def _term_key(term: Term) -> tuple[str, str]:
    """A condition any match of ``term`` needs, for the RuleSet index."""
    words = [v for k, v in term.segments if k == "w"]
    if words:
        return "w", max(words, key=len)
    cjk = [v for k, v in term.segments if k in "cq"]
    if cjk:
        return "c", max(cjk, key=len)
    return "p", max((v for k, v in term.segments if k in "ph"), key=len)


def _anchors(node: Node) -> frozenset[Term] | None:
    """Terms of which at least one occurs in any match; None if none is needed."""
    if isinstance(node, Term):
        return frozenset((node,))
    if isinstance(node, Not):
        return None
    if isinstance(node, Or):
        sets = [_anchors(c) for c in node.children]
        if any(s is None for s in sets):
            return None
        return frozenset().union(*sets)
    children = node.children if isinstance(node, And) else (node.left, node.right)
    sets = [s for s in map(_anchors, children) if s is not None]
    if not sets:
        return None
    # Fewest terms first; then prefer exact words and long ones, which are rarer.
    return min(sets, key=lambda s: (len(s), sum(_key_cost(_term_key(t)) for t in s)))


def _key_cost(key: tuple[str, str]) -> float:
    kind, value = key
    return (3.0 if kind == "p" else 1.0) / (1 + len(value))


def _check(node: Node, fail) -> None:
    depth, where = _depth(node)
    if depth > MAX_DEPTH:
        fail(f"query is nested more than {MAX_DEPTH} levels deep", where)
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, Near) and (_anchors(n.left) is None or _anchors(n.right) is None):
            fail("NEAR needs a positive term on each side", n.pos)
        stack.extend(_children(n))
    if _anchors(node) is None:
        fail("the query has no positive term that every match needs "
             "(it would match nearly every article)", _first_not(node))


# ---------------------------------------------------------------------- document

LOOSE_END = 3


class _Chain:
    """CJK words in a row joined into one string, so that a CJK term is found
    by its characters and accepted where it starts and ends on word boundaries.

    ``starts`` maps an offset in ``text`` where a word starts to (position,
    start and end in the original field text); ``ends`` an offset where one
    ends to (position, end in the original text).

    A term of ``LOOSE_END`` or more characters may also end inside a word:
    analysers sometimes glue a name's last character to what follows (UniDic
    reads 金与正副部長 as 金 / 与 / 正副 / 部 / 長), and a three-character
    term that starts on a boundary is specific enough to be the word it
    spells. One or two characters must end on a boundary (金 is not in 金曜日).
    ``bench/bench_segment.py`` measures both sides of this."""

    __slots__ = ("text", "starts", "ends", "offset_of", "_parts", "_length", "_found",
                 "_begins")

    def __init__(self) -> None:
        self.starts: dict[int, tuple[int, int, int]] = {}
        self.ends: dict[int, tuple[int, int]] = {}
        self.offset_of: dict[int, int] = {}     # position -> offset of its word
        self._parts: list[str] = []
        self._length = 0
        self._found: dict[str, list[int]] = {}
        self.text = ""

    def add(self, norm: str, position: int, start: int, end: int, joined: bool) -> None:
        if self._parts and not joined:
            self._parts.append("\0")
            self._length += 1
        self.starts[self._length] = (position, start, end)
        self.offset_of.setdefault(position, self._length)
        self._parts.append(norm)
        self._length += len(norm)
        self.ends[self._length] = (position, end)

    def close(self) -> None:
        self.text = "".join(self._parts)
        self._parts = []
        self._begins: list[int] | None = None

    def end_inside(self, offset: int) -> tuple[int, int]:
        """(position, original offset) of a chain offset inside a word."""
        if self._begins is None:
            self._begins = sorted(self.starts)
        k = self._begins[bisect.bisect_right(self._begins, offset) - 1]
        position, start, end = self.starts[k]
        # One to one inside a word, unless folding changed its length.
        return position, min(start + (offset - k), end)

    def find(self, needle: str) -> list[int]:
        """Every offset where ``needle`` occurs (overlapping ones too); no cap."""
        found = self._found.get(needle)
        if found is None:
            found = []
            text, k = self.text, self.text.find(needle)
            while k >= 0:
                found.append(k)
                k = text.find(needle, k + 1)
            self._found[needle] = found
        return found


class _Field:
    """One field of a document, tokenised once, with the indexes matching needs.

    ``tokens``/``norms`` are ``textnorm.tokenize``'s (a CJK run is one token):
    the normalised form fingerprints are computed from. Matching counts the
    finer ``segment.words``: ``wnorms[p]``, ``wtok[p]`` (offsets) are the word at
    position ``p``; readings in parentheses are not positions but sit in
    ``aside``, anchored at the name they follow.
    """

    __slots__ = ("name", "text", "tokens", "norms", "wnorms", "wtok", "cjk", "positions",
                 "_vocab", "chain", "aside")

    def __init__(self, name: str, text: str, japanese: bool):
        self.name = name
        self.text = text
        self.tokens = tokenize(text)
        self.norms = [t.norm for t in self.tokens]
        self.chain = _Chain()
        self.aside = _Chain()
        self.cjk: set[int] = set()
        positions: dict[str, list[int]] = {}
        if not any(t.cjk for t in self.tokens) and not HANGUL_RE.search(text):
            # The common case (no CJK, no Hangul): the tokens are the words.
            self.wnorms, self.wtok = self.norms, self.tokens
            for i, norm in enumerate(self.norms):
                positions.setdefault(norm, []).append(i)
        else:
            main = []
            previous_cjk = False
            aside_open = False
            for word in words(text, self.tokens, japanese=japanese):
                if word.aside:
                    # A reading: its own little chain, anchored at the name before it.
                    self.aside.add(word.norm, max(len(main) - 1, 0), word.start, word.end,
                                   joined=aside_open)
                    aside_open = True
                    continue
                aside_open = False
                p = len(main)
                main.append(word)
                if word.kind == "c":
                    self.cjk.add(p)
                    self.chain.add(word.norm, p, word.start, word.end, joined=previous_cjk)
                    previous_cjk = True
                else:
                    positions.setdefault(word.norm, []).append(p)
                    previous_cjk = False
            self.wnorms = [w.norm for w in main]
            self.wtok = main
        self.chain.close()
        self.aside.close()
        self.positions = positions
        self._vocab: list[str] | None = None

    @property
    def vocabulary(self) -> list[str]:
        """The distinct non-CJK words, sorted, for prefix look-ups."""
        if self._vocab is None:
            self._vocab = sorted(self.positions)
        return self._vocab

    def prefix_positions(self, prefix: str) -> list[int]:
        vocab = self.vocabulary
        out: list[int] = []
        for k in range(bisect.bisect_left(vocab, prefix), len(vocab)):
            if not vocab[k].startswith(prefix):
                break
            out.extend(self.positions[vocab[k]])
        out.sort()
        return out


class Document:
    """An article's fields, tokenised once and indexed for matching many rules."""

    __slots__ = ("fields", "_vocabulary", "_sorted", "_cjk")

    def __init__(self, fields: dict[str, _Field]):
        self.fields = fields
        self._vocabulary: set[str] | None = None
        self._sorted: list[str] | None = None
        self._cjk: str | None = None

    @classmethod
    def build(cls, *, title: str = "", text: str = "", source: str = "",
              url: str = "") -> Document:
        values = {"title": title or "", "text": text or "", "source": source or "",
                  "url": url or ""}
        # Han characters are read as Japanese when the article has any kana.
        japanese = has_kana(values["title"]) or has_kana(values["text"])
        return cls({name: _Field(name, values[name], japanese) for name in FIELDS})

    @classmethod
    def from_article(cls, article, source: str | None = None) -> Document:
        return cls.build(title=article.title or "", text=article.text or "",
                         source=source if source is not None else article.source or "",
                         url=article.url or "")

    def text_of(self, field: str) -> str:
        return self.fields[field].text

    @property
    def vocabulary(self) -> set[str]:
        """Every distinct non-CJK word of every field."""
        if self._vocabulary is None:
            found: set[str] = set()
            for f in self.fields.values():
                found.update(f.positions)
            self._vocabulary = found
        return self._vocabulary

    @property
    def sorted_vocabulary(self) -> list[str]:
        if self._sorted is None:
            self._sorted = sorted(self.vocabulary)
        return self._sorted

    @property
    def cjk_text(self) -> str:
        """The CJK chains (and readings) of every field, NUL-separated."""
        if self._cjk is None:
            self._cjk = "\0".join(c.text for f in self.fields.values()
                                  for c in (f.chain, f.aside) if c.text)
        return self._cjk


# -------------------------------------------------------------------- evaluation

# A span is one occurrence of a term: (field, first position, last position,
# leaves); a leaf is (term display, field, start, end) with offsets into the
# field's text. A NEAR keeps its participants' spans as they are, so that a
# NEAR around it measures from each term, not from the stretch between them.
_Leaf = tuple[str, str, int, int]
_Span = tuple[str, int, int, tuple[_Leaf, ...]]


class _Evaluator:
    """Evaluates nodes against one document, remembering each term's matches."""

    def __init__(self, doc: Document):
        self.doc = doc
        self.memo: dict[Term, list[_Span] | None] = {}

    def result(self, node: Node) -> MatchResult | None:
        spans = self.eval(node)
        if spans is None:
            return None
        leaves = {leaf for span in spans for leaf in span[3]}
        ordered = sorted(leaves, key=lambda l: (_FIELD_ORDER[l[1]], l[2], l[3], l[0]))
        hits = [Hit(term, f, start, end, self.doc.fields[f].text[start:end])
                for term, f, start, end in ordered]
        return MatchResult(hits, self.doc)

    def eval(self, node: Node) -> list[_Span] | None:
        """The spans of a match (possibly none, under NOT), or None: no match."""
        if isinstance(node, Term):
            if node not in self.memo:
                self.memo[node] = self.term(node)
            return self.memo[node]
        if isinstance(node, And):
            spans: list[_Span] = []
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
        return _near(left, right, node.distance) or None

    def term(self, term: Term) -> list[_Span] | None:
        spans: list[_Span] = []
        for name in (term.field,) if term.field else DEFAULT_FIELDS:
            f = self.doc.fields[name]
            leaf_name = term.display
            for first, last, start, end in _find(f, term.segments):
                spans.append((name, first, last, ((leaf_name, name, start, end),)))
        return spans or None

    def explain(self, node: Node) -> list[str]:
        """Why ``node`` does not match: the parts that found nothing, and for a
        NEAR whose sides were both found, how close they came."""
        if self.eval(node) is not None:
            return []
        if isinstance(node, Term):
            return [f"{_shown(node)} is not in the {_where(node)}"]
        if isinstance(node, And):
            return [why for c in node.children for why in self.explain(c)]
        if isinstance(node, Or):
            if all(isinstance(c, Term) for c in node.children):
                names = ", ".join(_shown(c) for c in node.children[:12])
                more = f" and {len(node.children) - 12} more" if len(node.children) > 12 else ""
                return [f"none of {names}{more} is in the article"]
            # Each alternative's reasons, the near misses (a NEAR that came
            # close) first: those are what a rule writer acts on.
            reasons = [why for c in node.children for why in self.explain(c)]
            return sorted(dict.fromkeys(reasons), key=lambda why: " apart" not in why)
        if isinstance(node, Not):
            hits = self.eval(node.child) or []
            words = _written(self.doc, hits)
            found = f": found {', '.join(words[:5])}" if words else ""
            return [f"excluded by NOT {_brief(node.child)}{found}"]
        left, right = self.eval(node.left), self.eval(node.right)
        if not left or not right:
            return [why for side in (node.left, node.right) for why in self.explain(side)]
        gap = _closest(left, right)
        if gap is None:
            return [f"{_brief(node.left)} and {_brief(node.right)} are found only in different "
                    f"fields; NEAR/{node.distance} needs them in one"]
        return [f"{_brief(node.left)} … {_brief(node.right)}: {gap} words apart at the closest, "
                f"NEAR/{node.distance} needs at most {node.distance}"]


def _shown(term: Term) -> str:
    return f"'{term.display}'"


def _where(term: Term) -> str:
    return f"{term.field}" if term.field else "title or text"


def _brief(node: Node, limit: int = 60) -> str:
    """A node as a reader would name it: a term's words, a group's first terms."""
    if isinstance(node, Term):
        return node.display
    text = str(node)
    return text if len(text) <= limit else text[:limit - 1] + "…)"


def _written(doc: Document, spans: list[_Span]) -> list[str]:
    return list(dict.fromkeys(" ".join(doc.fields[f].text[s:e].split())
                              for span in spans for _, f, s, e in span[3]))


def _find(f: _Field, segments: tuple[tuple[str, str], ...]) -> Iterator[tuple[int, int, int, int]]:
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


def _near(left: list[_Span], right: list[_Span], distance: int) -> list[_Span]:
    """The spans of either side that have a partner on the other side within
    ``distance`` positions, each kept as it is (so every participant is a hit)."""
    out = _partnered(left, right, distance)
    out.extend(_partnered(right, left, distance))
    return out


def _by_field(spans: list[_Span]) -> dict[str, tuple[list[int], list[int], list[int]]]:
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


def _partnered(spans: list[_Span], others: list[_Span], distance: int) -> list[_Span]:
    # A span s and o are within d when o.first <= s.last + d and o.last >= s.first - d:
    # among the others starting early enough, the one reaching furthest decides.
    # O(log n) a span, however large either side.
    index = _by_field(others)
    out: list[_Span] = []
    for span in spans:
        group = index.get(span[0])
        if group is None:
            continue
        firsts, _, running = group
        k = bisect.bisect_right(firsts, span[2] + distance)
        if k and running[k - 1] >= span[1] - distance:
            out.append(span)
    return out


def _closest(left: list[_Span], right: list[_Span]) -> int | None:
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


# ------------------------------------------------------------------------ results

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
        return _snippet(self.doc.fields[name].text, [(h.start, h.end) for h in hits], width)

    def snippets(self, width: int = 160, limit: int = 50) -> list[tuple[str, str]]:
        """(term, snippet) for each matched term (at most ``limit``), around its first hit."""
        first_field: dict[str, str] = {}
        spans: dict[str, list[tuple[int, int]]] = {}
        for h in self.hits:
            where = first_field.setdefault(h.term, h.field)
            if where == h.field:
                spans.setdefault(h.term, []).append((h.start, h.end))
        return [(term, _snippet(self.doc.fields[first_field[term]].text, spans[term], width)[0])
                for term in list(first_field)[:limit]]


_SPACE = re.compile(r"[\s\x00-\x1f\x7f]")


def _snippet(text: str, spans: list[tuple[int, int]], width: int
             ) -> tuple[str, list[tuple[int, int]]]:
    width = max(width, 20)
    spans = sorted(spans)
    # The window of ``width`` characters holding the most hits.
    best, lo, hi = 0, 0, 0
    j = 0
    for i in range(len(spans)):
        j = max(j, i)
        while j + 1 < len(spans) and spans[j + 1][1] - spans[i][0] <= width:
            j += 1
        if j - i + 1 > best:
            best, lo, hi = j - i + 1, spans[i][0], max(e for _, e in spans[i:j + 1])
    if best == 0:
        lo = hi = 0
    pad = max(0, (width - (hi - lo)) // 2)
    a = max(0, lo - pad)
    b = min(len(text), max(a + width, hi if hi - lo <= width else lo + width))
    a = max(0, min(a, b - width))
    # Do not cut words in half where a space is near.
    if a > 0:
        space = _SPACE.search(text, a, min(lo, a + 20))
        if space:
            a = space.end()
    if b < len(text):
        back = text.rfind(" ", max(hi, b - 20), b)
        if back > 0:
            b = back
    out: list[str] = []
    mapping = [0] * (b - a + 1)
    blank = True
    for k in range(a, b):
        mapping[k - a] = len(out)
        ch = text[k]
        if _SPACE.match(ch):
            if not blank:
                out.append(" ")
                blank = True
        else:
            out.append(ch)
            blank = False
    mapping[b - a] = len(out)
    if out and out[-1] == " ":
        out.pop()
    lead = "…" if a > 0 else ""
    body = "".join(out)
    tail = "…" if b < len(text) else ""
    shift = len(lead)
    marks: list[tuple[int, int]] = []
    for start, end in spans:
        s, e = max(start, a), min(end, b)
        if s < e:
            s2 = min(mapping[s - a], len(body)) + shift
            e2 = min(mapping[e - a], len(body)) + shift
            if s2 < e2:
                marks.append((s2, e2))
    merged: list[tuple[int, int]] = []     # overlapping hits ("Kim*", "Kim Jong Un") as one
    for s2, e2 in sorted(marks):
        if merged and s2 <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(e2, merged[-1][1]))
        else:
            merged.append((s2, e2))
    return lead + body + tail, merged


# ------------------------------------------------------------------------- public

class Query:
    """A compiled query: ``match`` a ``Document``; ``str()`` is its canonical form."""

    def __init__(self, text: str, rule: str | None, node: Node):
        self.text = text
        self.rule = rule
        self.node = node

    def __repr__(self) -> str:
        return f"Query({self.text!r}, rule={self.rule!r})"

    def __str__(self) -> str:
        return str(self.node)

    def match(self, doc: Document) -> MatchResult | None:
        """Why the query matches ``doc``, or None when it does not."""
        return _Evaluator(doc).result(self.node)

    def explain(self, doc: Document, limit: int = 12) -> list[str]:
        """Why the query does not match ``doc`` (empty when it does): each
        required part that found nothing, and for a NEAR whose sides were both
        found, how close they came; at most ``limit`` reasons, the near misses
        first, and a last line saying how many more there are."""
        reasons = _Evaluator(doc).explain(self.node)
        if len(reasons) > limit:
            reasons = reasons[:limit - 1] + [f"… and {len(reasons) - limit + 1} more reasons"]
        return reasons

    def anchors(self) -> frozenset[Term]:
        """Positive terms of which at least one occurs in every match."""
        anchors = _anchors(self.node)
        assert anchors is not None   # compile_query refuses unanchored queries
        return anchors

    def needles(self) -> list[str] | None:
        """Strings of which the folded text (``textnorm.normalise`` of title and text)
        of every matching article contains at least one: a prefilter for stores.
        None when no such list exists (an anchor in the url or source field)."""
        needles = []
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
    parser = _Parser(text, rule)
    node = parser.parse()
    _check(node, parser.fail)
    return Query(text, rule, node)


class RuleSet:
    """Many compiled queries, matched against a document at the cost of few.

    Each rule is filed under its anchor terms (one of which every match
    needs); a document is looked up by its words, the prefixes of its words and
    the characters of its CJK text, so only candidate rules are evaluated, and a
    term shared by rules is evaluated once per document.
    """

    def __init__(self, queries: Mapping[str, Query]):
        self.queries = dict(queries)
        self._order = {name: i for i, name in enumerate(self.queries)}
        self._words: dict[str, set[str]] = {}
        self._prefixes: dict[str, set[str]] = {}
        self._cjk: dict[str, set[str]] = {}
        for name, query in self.queries.items():
            for term in query.anchors():
                kind, key = _term_key(term)
                table = {"w": self._words, "p": self._prefixes, "c": self._cjk}[kind]
                table.setdefault(key, set()).add(name)
        self._sorted_prefixes = sorted(self._prefixes)
        self._longest_prefix = max(map(len, self._prefixes), default=0)
        self._cjk_by_char: dict[str, list[str]] = {}
        for needle in self._cjk:
            self._cjk_by_char.setdefault(needle[0], []).append(needle)

    def __len__(self) -> int:
        return len(self.queries)

    def candidates(self, doc: Document) -> set[str]:
        """Rules that may match ``doc`` (a superset of those that do)."""
        found: set[str] = set()
        vocab = doc.vocabulary
        words = self._words
        if len(words) < len(vocab):
            for key, names in words.items():
                if key in vocab:
                    found |= names
        else:
            for word in vocab:
                names = words.get(word)
                if names:
                    found |= names
        if self._prefixes:
            found |= self._prefix_candidates(doc, vocab)
        if self._cjk:
            text = doc.cjk_text
            if text:
                if len(self._cjk) <= 32:
                    needles: Iterable[str] = self._cjk
                else:
                    needles = (n for ch in set(text) for n in self._cjk_by_char.get(ch, ()))
                for needle in needles:
                    if needle in text:
                        found |= self._cjk[needle]
        return found

    def _prefix_candidates(self, doc: Document, vocab: set[str]) -> set[str]:
        found: set[str] = set()
        prefixes = self._prefixes
        if len(prefixes) * 12 < len(vocab) * self._longest_prefix:
            ordered = doc.sorted_vocabulary
            for prefix in self._sorted_prefixes:
                k = bisect.bisect_left(ordered, prefix)
                if k < len(ordered) and ordered[k].startswith(prefix):
                    found |= prefixes[prefix]
        else:
            longest = self._longest_prefix
            for word in vocab:
                for k in range(1, min(len(word), longest) + 1):
                    names = prefixes.get(word[:k])
                    if names:
                        found |= names
        return found

    def match(self, doc: Document) -> dict[str, MatchResult]:
        """Every rule that matches ``doc``, in the order the rules were given."""
        evaluator = _Evaluator(doc)
        out: dict[str, MatchResult] = {}
        for name in sorted(self.candidates(doc), key=self._order.__getitem__):
            result = evaluator.result(self.queries[name].node)
            if result is not None:
                out[name] = result
        return out
