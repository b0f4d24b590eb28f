"""Text folding and tokenisation shared by matching, fingerprints and snippets.

Pure functions, no I/O. Three things are exported:

``fold(text)``
    The comparison form of a string: ignorable format characters (soft hyphen,
    zero-width space/joiners, bidi marks; Unicode category Cf) removed, NFKC
    (full-width ``ＫＩＭ`` becomes ``KIM``, ``ｶﾞ`` becomes ``ガ``), case folded,
    then NFKD with accents dropped and NFC again. "Accents" are the generic
    combining diacritics (U+0300–036F, 1AB0–1AFF, 1DC0–1DFF, 20D0–20FF,
    FE20–FE2F), which covers Latin, Greek and Cyrillic. Script-specific marks
    are kept on purpose: the Japanese voicing marks (``ガス`` is not ``カス``)
    and Indic vowel signs carry meaning.

``tokenize(text)``
    ``Token(norm, start, end, cjk)`` for each word, ``start``/``end`` being
    offsets into the *original* text and ``norm == fold(text[start:end])``.
    A word is a run of letters and digits (with the combining marks inside it);
    everything else (hyphens and dashes of every kind, apostrophes, dots,
    slashes, underscores, symbols, controls, lone surrogates) breaks words.
    Ignorable format characters neither make nor break a word: ``Kishi\\u00adda``
    and ``Kishi\\u200bda`` are the single word ``kishida``; we chose this over
    treating ZWSP as a space because hidden characters inside a name are far
    more often an accident (or an evasion) than an intended word break.
    Scripts written without spaces (Han, Hiragana, Katakana including the
    half-width forms, Bopomofo, and also Thai, Lao, Khmer and Myanmar) make
    *runs*: a contiguous run of such characters, including ``ー`` and ``々``,
    is one token with ``cjk=True``; callers match inside it as a substring.
    Hangul is written with spaces and tokenises like Latin.

    A letter whose folded form would not itself be a single word (``½`` folds to
    ``1⁄2``, ``ŉ`` to ``ʼn``) is treated as a word break, so that
    ``normalise`` is idempotent.

``normalise(text)``
    The tokens' ``norm`` joined by single spaces: the canonical text used for
    hashing and fingerprints.
"""

from __future__ import annotations

import re
import unicodedata
from typing import NamedTuple

__all__ = ["Token", "fold", "tokenize", "normalise", "is_cjk_char"]


class Token(NamedTuple):
    norm: str      # folded form
    start: int     # offset of the first character in the original text
    end: int       # offset just past the last character
    cjk: bool      # a run of a script written without spaces


# Scripts written without spaces. Only letters/digits (and marks) in these
# ranges join a run; punctuation in the same blocks (、。・「」) still breaks.
_SPACELESS_RANGES = (
    (0x0E00, 0x0EFF),    # Thai, Lao
    (0x1000, 0x109F),    # Myanmar
    (0x1780, 0x17FF),    # Khmer
    (0x19E0, 0x19FF),    # Khmer symbols
    (0x2E80, 0x2FDF),    # CJK radicals (only the letter-like ones qualify)
    (0x3005, 0x3007),    # 々 〆 〇
    (0x3021, 0x3029),    # Hangzhou numerals
    (0x3031, 0x3035),    # kana repeat marks
    (0x3038, 0x303C),
    (0x3040, 0x30FF),    # Hiragana, Katakana (incl. ー, ゝゞヽヾ)
    (0x3100, 0x312F),    # Bopomofo
    (0x31A0, 0x31BF),
    (0x31F0, 0x31FF),    # Katakana phonetic extensions
    (0x3400, 0x4DBF),    # CJK extension A
    (0x4E00, 0x9FFF),    # CJK unified ideographs
    (0xF900, 0xFAFF),    # CJK compatibility ideographs
    (0xFF66, 0xFF9F),    # half-width Katakana
    (0x1AFF0, 0x1B16F),  # Kana extensions and supplement
    (0x20000, 0x323AF),  # CJK extensions B–H, compatibility supplement
)

_ACCENTS = "\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f"
_ACCENT_RE = re.compile(f"[{_ACCENTS}]+")


def _class(codepoints: list[int]) -> str:
    """A regex character-class body for the given sorted code points."""
    parts: list[str] = []
    i = 0
    n = len(codepoints)
    while i < n:
        j = i
        while j + 1 < n and codepoints[j + 1] == codepoints[j] + 1:
            j += 1
        lo, hi = codepoints[i], codepoints[j]
        parts.append(f"\\U{lo:08x}" if lo == hi else f"\\U{lo:08x}-\\U{hi:08x}")
        i = j + 1
    return "".join(parts)


def _raw_fold(text: str) -> str:
    s = _IGNORABLE_RE.sub("", text)
    s = unicodedata.normalize("NFKC", s).casefold()
    s = _ACCENT_RE.sub("", unicodedata.normalize("NFKD", s))
    return unicodedata.normalize("NFC", s)


_SCAN = (range(0x80, 0xD800), range(0xE000, 0x40000), range(0xE0000, 0xE1000))


def _build_token_re() -> tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str]]:
    """Classify the code points once: word, spaceless (cjk), mark, ignorable.

    Done at import (about a tenth of a second) rather than shipped as a table so
    that it always agrees with the running Python's Unicode database. Planes 4–13
    are unassigned and 15–16 private use, so they are not scanned.
    """
    global _IGNORABLE_RE
    category = unicodedata.category
    spaceless = bytearray(0x40000)
    for lo, hi in _SPACELESS_RANGES:
        spaceless[lo:hi + 1] = b"\x01" * (hi + 1 - lo)
    letters: list[int] = [*range(0x30, 0x3A), *range(0x41, 0x5B), *range(0x61, 0x7B)]
    cjk: list[int] = []
    marks: list[int] = []
    ignorable: list[int] = []
    alnum = re.compile(r"[^\W_]+")
    for block in _SCAN:
        chars = "".join(map(chr, block))
        base = block.start
        pos = 0
        # str's \w is exactly the letters and digits (categories L*, N*) plus "_",
        # so the regex finds those in bulk; only the rest needs category().
        for m in alnum.finditer(chars):
            for cp in range(base + m.start(), base + m.end()):
                (cjk if cp < 0x40000 and spaceless[cp] else letters).append(cp)
            for cp in range(base + pos, base + m.start()):
                cat = category(chr(cp))
                if cat[0] == "M":
                    marks.append(cp)
                elif cat == "Cf":
                    ignorable.append(cp)
            pos = m.end()
        for cp in range(base + pos, block.stop):
            cat = category(chr(cp))
            if cat[0] == "M":
                marks.append(cp)
            elif cat == "Cf":
                ignorable.append(cp)
    _IGNORABLE_RE = re.compile(f"[{_class(ignorable)}]+")

    # Drop letters whose folded form is not a single word of the same kind
    # (so that normalise() is idempotent). Repeated until stable, since
    # dropping one letter can disqualify another.
    word_set, cjk_set, mark_set = set(letters), set(cjk), set(marks)
    word_set.discard(0x02BC)   # MODIFIER LETTER APOSTROPHE is an apostrophe
    changing = [cp for cp in (*letters, *cjk)
                if not unicodedata.is_normalized("NFKD", chr(cp))
                or chr(cp).casefold() != chr(cp)]
    while True:
        dropped = False
        for cp in changing:
            same = cjk_set if cp in cjk_set else word_set
            if cp not in same:
                continue
            folded = [ord(ch) for ch in _raw_fold(chr(cp))]
            if folded and all(ch in mark_set for ch in folded):
                # ﾞ (half-width voicing mark) folds to a combining mark: it attaches.
                same.discard(cp)
                mark_set.add(cp)
                dropped = True
                continue
            if not folded or folded[0] not in same or any(
                    ch not in same and ch not in mark_set for ch in folded):
                same.discard(cp)
                dropped = True
        if not dropped:
            break

    w, c = f"[{_class(sorted(word_set))}]", f"[{_class(sorted(cjk_set))}]"
    m, i = f"[{_class(sorted(mark_set))}]", f"[{_class(ignorable)}]"
    token_re = re.compile(
        f"({c}(?:(?:{c}|{m}|{i})*(?:{c}|{m}))?)"
        f"|({w}(?:(?:{w}|{m}|{i})*(?:{w}|{m}))?)")
    return token_re, re.compile(c), re.compile(w)


_IGNORABLE_RE: re.Pattern[str]
_TOKEN_RE, _CJK_CHAR_RE, _WORD_CHAR_RE = _build_token_re()


def is_cjk_char(ch: str) -> bool:
    """True for a letter of a script written without spaces (see module doc)."""
    return bool(_CJK_CHAR_RE.fullmatch(ch))


def fold(text: str) -> str:
    """The comparison form of ``text``: see the module docstring."""
    if text.isascii():
        return text.lower()
    s = _raw_fold(text)
    # Case folding and normalisation do not commute in a few corners of
    # Unicode; a second pass reaches the fixed point.
    t = _raw_fold(s)
    return s if t == s else _raw_fold(t)


_FOLD_CACHE: dict[str, str] = {}
_FOLD_CACHE_MAX = 200_000


def _fold_word(word: str) -> str:
    norm = _FOLD_CACHE.get(word)
    if norm is None:
        norm = fold(word)
        if len(_FOLD_CACHE) >= _FOLD_CACHE_MAX:
            _FOLD_CACHE.clear()
        if len(word) <= 64:
            _FOLD_CACHE[word] = norm
    return norm


def tokenize(text: str) -> list[Token]:
    """The words of ``text`` with their offsets; see the module docstring."""
    cache = _FOLD_CACHE
    out: list[Token] = []
    append = out.append
    for m in _TOKEN_RE.finditer(text):
        word = m.group()
        norm = cache.get(word)
        if norm is None:
            norm = _fold_word(word)
        start, end = m.span()
        append(Token(norm, start, end, m.lastindex == 1))
    return out


def normalise(text: str) -> str:
    """Tokens' folded forms joined by single spaces: the canonical form for hashing."""
    return " ".join([t.norm for t in tokenize(text)])
