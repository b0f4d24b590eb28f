"""A document indexed for matching: each field's words by position, and the
index that tells which rules a document may match.

``Document`` tokenises an article's fields once; ``AnchorIndex`` files rules
under their anchor terms (``monitor.match.parse.anchors``: one of them occurs
in every match) and looks a document up by its words, so only candidate rules
are evaluated.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping
from typing import Any

from monitor.match.parse import FIELDS, Term, term_key
from monitor.text.normalise import Token, tokenize
from monitor.text.segment import HANGUL_RE, Word, has_kana, words

LOOSE_END = 3


class Chain:
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


class Field:
    """One field of a document, tokenised once, with the indexes matching needs.

    ``tokens``/``norms`` are ``monitor.text.normalise.tokenize``'s (a CJK run
    is one token): the normalised form fingerprints are computed from. Matching counts the
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
        self.chain = Chain()
        self.aside = Chain()
        self.cjk: set[int] = set()
        positions: dict[str, list[int]] = {}
        if not any(t.cjk for t in self.tokens) and not HANGUL_RE.search(text):
            # The common case (no CJK, no Hangul): the tokens are the words.
            self.wnorms = self.norms
            self.wtok: list[Token] | list[Word] = self.tokens
            for i, norm in enumerate(self.norms):
                positions.setdefault(norm, []).append(i)
        else:
            main: list[Word] = []
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

    def __init__(self, fields: dict[str, Field]):
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
        return cls({name: Field(name, values[name], japanese) for name in FIELDS})

    @classmethod
    def from_article(cls, article: Any, source: str | None = None) -> Document:
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



class AnchorIndex:
    """Rules filed under their anchor terms, looked up by a document's words.

    A document is looked up by its words, the prefixes of its words and the
    characters of its CJK text: the rules found are a superset of those that
    match, usually a small one.
    """

    def __init__(self, anchors: Mapping[str, Iterable[Term]]):
        self._words: dict[str, set[str]] = {}
        self._prefixes: dict[str, set[str]] = {}
        self._cjk: dict[str, set[str]] = {}
        for name, terms in anchors.items():
            for term in terms:
                kind, key = term_key(term)
                table = {"w": self._words, "p": self._prefixes, "c": self._cjk}[kind]
                table.setdefault(key, set()).add(name)
        self._sorted_prefixes = sorted(self._prefixes)
        self._longest_prefix = max(map(len, self._prefixes), default=0)
        self._cjk_by_char: dict[str, list[str]] = {}
        for needle in self._cjk:
            self._cjk_by_char.setdefault(needle[0], []).append(needle)

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
                named = words.get(word)
                if named:
                    found |= named
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
