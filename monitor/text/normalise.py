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

import bisect
import json
import re
import unicodedata
from pathlib import Path
from typing import NamedTuple

__all__ = ["Token", "fold", "fold_word", "tokenize", "normalise", "is_cjk_char"]


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


def _lit(cp: int) -> str:
    # Literal characters parse much faster than \\U escapes in a large class.
    return re.escape(chr(cp)) if cp < 0x80 or 0xD800 <= cp <= 0xDFFF else chr(cp)


def _class(ranges: list[tuple[int, int]]) -> str:
    """A regex character-class body for sorted, disjoint inclusive ranges."""
    return "".join(_lit(lo) if lo == hi else f"{_lit(lo)}-{_lit(hi)}" for lo, hi in ranges)


def _ranges(codepoints: list[int]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for cp in sorted(codepoints):
        if out and out[-1][1] == cp - 1:
            out[-1] = (out[-1][0], cp)
        else:
            out.append((cp, cp))
    return out


def _minus(ranges: list[tuple[int, int]], removed: set[int]) -> list[tuple[int, int]]:
    gone = sorted(removed)
    out: list[tuple[int, int]] = []
    for lo, hi in ranges:
        for cp in gone[bisect.bisect_left(gone, lo):bisect.bisect_right(gone, hi)]:
            if lo < cp:
                out.append((lo, cp - 1))
            lo = cp + 1
        if lo <= hi:
            out.append((lo, hi))
    return out


def _merge(*parts: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The union of several sorted range lists, as sorted disjoint ranges."""
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(r for part in parts for r in part):
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(hi, out[-1][1]))
        else:
            out.append((lo, hi))
    return out


def _split(ranges: list[tuple[int, int]], by: tuple[tuple[int, int], ...]
           ) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """(parts of ``ranges`` outside ``by``, parts inside ``by``)."""
    outside: list[tuple[int, int]] = []
    inside: list[tuple[int, int]] = []
    for lo, hi in ranges:
        cur = lo
        for blo, bhi in by:
            if bhi < cur or blo > hi:
                continue
            if blo > cur:
                outside.append((cur, blo - 1))
            inside.append((max(cur, blo), min(hi, bhi)))
            cur = bhi + 1
            if cur > hi:
                break
        if cur <= hi:
            outside.append((cur, hi))
    return outside, inside


def _raw_fold(text: str) -> str:
    s = _IGNORABLE_RE.sub("", text)
    # Accents go before case folding too: casefold turns U+0345 into a letter.
    s = _ACCENT_RE.sub("", unicodedata.normalize("NFKD", s))
    s = unicodedata.normalize("NFKC", s).casefold()
    s = _ACCENT_RE.sub("", unicodedata.normalize("NFKD", s))
    return unicodedata.normalize("NFC", s)


_SCAN = (range(0x80, 0xD800), range(0xE000, 0x40000), range(0xE0000, 0xE1000))
# Letters known to fold to themselves (Han ideographs, Hangul syllables): not
# worth checking one by one at import.
_STABLE = ((0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xAC00, 0xD7A3),
           (0x20000, 0x2F7FF), (0x30000, 0x323AF))


def _build_token_re() -> tuple[re.Pattern[str], re.Pattern[str]]:
    """Classify the code points once: word, spaceless (cjk), mark, ignorable.

    Done at import rather than shipped as a table so that it always agrees with
    the running Python's Unicode database. Planes 4–13 are unassigned and 15–16
    private use, so they are not scanned.
    """
    global _IGNORABLE_RE
    category = unicodedata.category
    alnum_ranges: list[tuple[int, int]] = [(0x30, 0x39), (0x41, 0x5A), (0x61, 0x7A)]
    marks: list[int] = []
    ignorable: list[int] = []
    # str's \w is exactly the letters and digits (categories L*, N*) plus "_",
    # so a regex finds those in bulk; only the rest needs category().
    alnum = re.compile(r"[^\W_]+")
    for block in _SCAN:
        chars = "".join(map(chr, block))
        base = block.start
        pos = 0
        for m in alnum.finditer(chars):
            alnum_ranges.append((base + m.start(), base + m.end() - 1))
            for i in range(pos, m.start()):
                cat = category(chars[i])
                if cat[0] == "M":
                    marks.append(base + i)
                elif cat == "Cf":
                    ignorable.append(base + i)
            pos = m.end()
        for i in range(pos, len(chars)):
            cat = category(chars[i])
            if cat[0] == "M":
                marks.append(base + i)
            elif cat == "Cf":
                ignorable.append(base + i)
    _IGNORABLE_RE = re.compile(f"[{_class(_ranges(ignorable))}]+")
    word_ranges, cjk_ranges = _split(alnum_ranges, _SPACELESS_RANGES)

    # Drop letters whose folded form is not a single word of the same kind (so
    # that normalise() is idempotent); letters that fold to combining marks
    # (half-width ﾞ) become marks. Repeated until stable, since dropping one
    # letter can disqualify another.
    mark_set = set(marks)
    word_re = re.compile(f"[{_class(word_ranges)}]")
    cjk_re = re.compile(f"[{_class(cjk_ranges)}]")
    removed: set[int] = {0x02BC}   # MODIFIER LETTER APOSTROPHE is an apostrophe
    to_check = [cp for lo, hi in _split(alnum_ranges, _STABLE)[0] for cp in range(lo, hi + 1)
                if not unicodedata.is_normalized("NFKD", chr(cp))
                or chr(cp).casefold() != chr(cp)]
    folds = {cp: [ord(ch) for ch in _raw_fold(chr(cp))] for cp in to_check}

    def kind(cp: int) -> str:
        if cp in mark_set:
            return "m"
        if cp in removed:
            return ""
        ch = chr(cp)
        return "w" if word_re.match(ch) else "c" if cjk_re.match(ch) else ""

    while True:
        changed = False
        for cp, folded in folds.items():
            own = kind(cp)
            if own not in ("w", "c"):
                continue
            kinds = [kind(ch) for ch in folded]
            if kinds and all(k == "m" for k in kinds):
                mark_set.add(cp)
            elif not kinds or kinds[0] != own or any(k not in (own, "m") for k in kinds):
                removed.add(cp)
            else:
                continue
            changed = True
        if not changed:
            break
    removed |= mark_set
    words = _minus(word_ranges, removed)
    spaceless = _minus(cjk_ranges, removed)
    mark_r, ign_r = _ranges(list(mark_set)), _ranges(ignorable)

    def cls(*parts: list[tuple[int, int]]) -> str:
        # sre matches a class of BMP characters with one table lookup but a
        # class reaching beyond U+FFFF by scanning its ranges one by one; so the
        # rare astral characters get a class of their own, consulted only for them.
        merged = _merge(*parts)
        bmp = [(lo, min(hi, 0xFFFF)) for lo, hi in merged if lo <= 0xFFFF]
        astral = [(max(lo, 0x10000), hi) for lo, hi in merged if hi > 0xFFFF]
        if not astral:
            return f"[{_class(bmp)}]"
        return f"(?:[{_class(bmp)}]|[^\\x00-\\uffff](?<=[{_class(astral)}]))"

    c, w = cls(spaceless), cls(words)
    token_re = re.compile(
        f"({c}(?:{cls(spaceless, mark_r, ign_r)}*{cls(spaceless, mark_r)})?)"
        f"|({w}(?:{cls(words, mark_r, ign_r)}*{cls(words, mark_r)})?)")
    return token_re, re.compile(c)


#: The three patterns ``_build_token_re`` makes, as built from each Unicode version
#: they were generated for (``write_patterns``): classifying every code point costs
#: about 0.1 s, paid by every process that imports this module (each command, the
#: worker pool's fork server). A Python with another Unicode database builds its own
#: at import; tests/test_textnorm.py checks the shipped ones against a fresh build.
PATTERNS_FILE = Path(__file__).with_name("token_patterns.json")


def built_patterns() -> dict[str, str]:
    """The patterns classified from the running Python's Unicode database now."""
    token_re, cjk_re = _build_token_re()
    return {"token": token_re.pattern, "cjk": cjk_re.pattern, "ignorable": _IGNORABLE_RE.pattern}


def write_patterns() -> None:
    """Adds the running Unicode version's patterns to PATTERNS_FILE (run it with each
    new Python: ``python -c 'from monitor.text.normalise import write_patterns;
    write_patterns()'``)."""
    try:
        table = json.loads(PATTERNS_FILE.read_text(encoding="ascii"))
    except OSError:
        table = {}
    table[unicodedata.unidata_version] = built_patterns()
    PATTERNS_FILE.write_text(json.dumps(table, indent=1, sort_keys=True) + "\n",
                             encoding="ascii")


def _patterns() -> tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str]]:
    try:
        shipped = json.loads(PATTERNS_FILE.read_text(encoding="ascii"))[
            unicodedata.unidata_version]
        return (re.compile(shipped["token"]), re.compile(shipped["cjk"]),
                re.compile(shipped["ignorable"]))
    except (OSError, ValueError, KeyError, TypeError, re.error):
        token_re, cjk_re = _build_token_re()
        return token_re, cjk_re, _IGNORABLE_RE


_IGNORABLE_RE: re.Pattern[str]
_TOKEN_RE, _CJK_CHAR_RE, _IGNORABLE_RE = _patterns()


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


def fold_word(word: str) -> str:
    """``fold(word)``, remembered for short words: for the many repeats of the
    words of a language."""
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
    new = tuple.__new__       # skips NamedTuple's Python-level __new__: this loop is hot
    for m in _TOKEN_RE.finditer(text):
        word = m.group()
        norm = cache.get(word)
        if norm is None:
            norm = fold_word(word)
        start, end = m.span()
        append(new(Token, (norm, start, end, m.lastindex == 1)))
    return out


def normalise(text: str) -> str:
    """Tokens' folded forms joined by single spaces: the canonical form for hashing."""
    return " ".join([t.norm for t in tokenize(text)])
