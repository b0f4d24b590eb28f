"""Words in every script, for matching: Japanese and Chinese segmented, Korean split from Latin.

``textnorm.tokenize`` keeps a run of a script written without spaces as one
token; that is the right unit for fingerprints (character 4-grams) but not for
matching, where ``NEAR/5`` must count words and a term must not match in the
middle of one. ``words(text, tokens)`` refines those tokens into the words that
matching counts:

* **Japanese** runs are cut into words by MeCab (through fugashi) with the
  UniDic dictionary (``unidic-lite``), which splits into short units:
  ``日朝首脳会談`` is 日朝 / 首脳 / 会談, ``拉致被害者`` is 拉致 / 被害 / 者.
  Chosen over SudachiPy (core dictionary) by ``bench/bench_segment.py``: on
  news text it is about twice as fast, and it cuts names more consistently at
  their ends (Sudachi's shortest mode reads 金正恩氏 as 金正 / 恩氏, so a
  name would not end on a word boundary there; UniDic gives 金正 / 恩 / 氏).
* **Chinese** runs (a document with Han characters and no kana) are cut by
  jieba (``rjieba``, a compiled port with its dictionary built in), taking the
  boundaries of both its accurate and its search segmentation, so that the
  compound 日本首相 also has the word boundary 日本 / 首相.
* **Korean** (Hangul) is written with spaces, and each word carries its
  particles and endings (김정은과, 정상회담을); the query engine matches a Hangul
  query word as the beginning of a text word. A word that mixes Hangul with
  Latin letters or digits (NHK는, G7에서, 2002년) is split where the script
  changes, so that ``NHK`` and ``2002`` match as words.
* **Readings**: a run of kana in parentheses right after a name written in
  Han characters (金正恩（キムジョンウン）, 尹錫悦（ユン・ソンニョル）) is a reading
  of that name, which Japanese papers print at first mention. Its words are
  marked ``aside``: they do not count as words between the name and what
  follows, so ``金正恩総書記`` and ``金正恩 NEAR/1 会談`` read through them.

Nothing is downloaded at run time: both dictionaries come as packages from
the registry and are loaded (memory-mapped) on first use, once per process.
"""

from __future__ import annotations

import itertools
import re
from typing import NamedTuple

from monitor.text.normalise import Token, fold_word

__all__ = ["Word", "words", "has_kana", "HANGUL_RE"]


class Word(NamedTuple):
    norm: str      # folded form
    start: int     # offsets into the original text
    end: int
    kind: str      # "w" a word of a spaced script, "h" Hangul, "c" Japanese/Chinese
    aside: bool    # part of a reading in parentheses after a name


_HAN_KANA_RE = re.compile("[\u3005-\u3007\u3041-\u30ff\u3400-\u4dbf\u4e00-\u9fff"
                          "\uf900-\ufaff\uff66-\uff9f\U00020000-\U000323af]")
_KANA_RE = re.compile("[\u3041-\u3096\u30a1-\u30fa\u30fc\uff66-\uff9f]")
_HANGUL = "\u1100-\u11ff\u3130-\u318f\ua960-\ua97f\uac00-\ud7af\ud7b0-\ud7ff\uffa0-\uffdc"
HANGUL_RE = re.compile(f"[{_HANGUL}]")
# A Hangul stretch inside a word, or a stretch without Hangul.
_SCRIPT_PARTS = re.compile(f"[{_HANGUL}]+|[^{_HANGUL}]+")
# A reading: kana (with ・ and spaces) in parentheses right after a Han character.
_READING_RE = re.compile(
    "(?<=[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3005\u3006\u30f6])"
    "[（(]([\u3041-\u3096\u30a1-\u30fa\u30fc\u30fb\uff65-\uff9f \u3000]{1,40})[）)]")


def has_kana(text: str) -> bool:
    """True when ``text`` has hiragana or katakana: Han text is then read as Japanese."""
    return _KANA_RE.search(text) is not None


_tagger = None
_BATCH_CHARS = 8_000


def _japanese_boundaries(runs: list[str]) -> list[list[int]]:
    """For each run, the offsets inside it where a Japanese word starts (0 excluded)."""
    global _tagger
    if _tagger is None:
        import fugashi  # loaded only by processes that meet Japanese text
        _tagger = fugashi.Tagger("-Owakati")
    # Pieces of runs go to MeCab in batches, kept apart by 。 (never inside a
    # run, and always a token of its own): the per-call overhead is paid once
    # a batch, and no call gets an input large enough to crash it (1 MB does).
    # A run longer than a batch (hostile, or a page without punctuation) is cut
    # into pieces, each starting a word.
    pieces = [(i, k, run[k:k + _BATCH_CHARS]) for i, run in enumerate(runs)
              for k in range(0, len(run), _BATCH_CHARS)]
    cuts: list[set[int]] = [set() for _ in runs]
    batch: list[tuple[int, int, str]] = []
    size = 0
    for piece in pieces + [(-1, 0, "")]:
        if piece[0] >= 0 and (not batch or size + len(piece[2]) <= _BATCH_CHARS):
            batch.append(piece)
            size += len(piece[2]) + 1
            continue
        surfaces = _tagger.parse("。".join(text for _, _, text in batch)).split()
        j = 0
        for i, offset, text in batch:
            if offset:
                cuts[i].add(offset)
            pos = 0
            while j < len(surfaces) and surfaces[j] != "。":
                found = text.find(surfaces[j], pos)
                if found > 0:
                    cuts[i].add(offset + found)
                if found >= 0:
                    pos = found + len(surfaces[j])
                j += 1
            j += 1
        batch, size = [piece], len(piece[2]) + 1
    return [sorted(c) for c in cuts]


def _chinese_boundaries(runs: list[str]) -> list[list[int]]:
    import rjieba  # loaded only by processes that meet Chinese text
    out: list[list[int]] = []
    for run in runs:
        cuts = {start for _, start, _ in rjieba.tokenize(run)}
        for _, start, end in rjieba.tokenize(run, mode="search"):
            cuts.update((start, end))
        out.append(sorted(c for c in cuts if 0 < c < len(run)))
    return out


def words(text: str, tokens: list[Token], *, japanese: bool | None = None) -> list[Word]:
    """The words of ``text`` for matching, from its ``textnorm.tokenize`` tokens.

    ``japanese`` says how to read runs of Han characters: as Japanese (True),
    Chinese (False), or by whether ``text`` has any kana (None).
    """
    cjk = [t for t in tokens if t.cjk]
    if not cjk and not HANGUL_RE.search(text):
        return [Word(t.norm, t.start, t.end, "w", False) for t in tokens]
    if japanese is None:
        japanese = has_kana(text)
    cuts: dict[int, list[int]] = {}
    # Only Japanese and Chinese runs go to an analyser; Thai, Lao, Khmer and
    # Myanmar runs stay whole (no analyser for them here).
    analysed = [t for t in cjk if _HAN_KANA_RE.match(text, t.start)]
    if analysed:
        runs = [text[t.start:t.end] for t in analysed]
        found = _japanese_boundaries(runs) if japanese else _chinese_boundaries(runs)
        cuts = {t.start: c for t, c in zip(analysed, found, strict=True)}
    readings = [m.span(1) for m in _READING_RE.finditer(text)] if cjk else []
    out: list[Word] = []
    append = out.append
    for tok in tokens:
        if tok.cjk:
            bounds = [0, *cuts.get(tok.start, ()), tok.end - tok.start]
            if len(bounds) == 2:
                append(Word(tok.norm, tok.start, tok.end, "c", False))
                continue
            for a, b in itertools.pairwise(bounds):
                norm = fold_word(text[tok.start + a:tok.start + b])
                if norm:
                    append(Word(norm, tok.start + a, tok.start + b, "c", False))
        elif HANGUL_RE.search(text, tok.start, tok.end):
            raw = text[tok.start:tok.end]
            for part in _SCRIPT_PARTS.finditer(raw):
                norm = fold_word(part.group())
                if norm:
                    kind = "h" if HANGUL_RE.match(part.group()) else "w"
                    append(Word(norm, tok.start + part.start(), tok.start + part.end(),
                                kind, False))
        else:
            append(Word(tok.norm, tok.start, tok.end, "w", False))
    if readings:
        k = 0
        for i, word in enumerate(out):
            while k < len(readings) and readings[k][1] <= word.start:
                k += 1
            if k < len(readings) and readings[k][0] <= word.start and word.end <= readings[k][1]:
                out[i] = word._replace(aside=True)
    return out
