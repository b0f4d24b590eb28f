"""Japanese word segmentation: which analyser, by accuracy on our terms and by speed.

A Japanese query term matches where the text's words spell it out, starting
and ending on word boundaries (``monitor.text.segment``). So what matters in an
analyser is that the terms a rule writer uses (names, titles, the words for a
summit, the abductees) start and end on its boundaries wherever the text has
them, and that "wrong" substrings (金 inside 金曜日) do not.

For every Japanese test article in tests/testdata (written for the rules, so the
vocabulary of the story), this counts:

- aligned: occurrences of each probe term (as a substring) that the matcher
  accepts: starting on a word boundary and ending on one (or, for a term of 3
  characters or more, anywhere: ``monitor.match.query.LOOSE_END``); the share of all
  occurrences is the recall a rule would get from that term;
- false: occurrences of a term inside a context where it is not the word
  (金 in 金曜, 正恩 in 金正恩) that the matcher would accept;
- speed: characters per CPU second over the same texts, median of 3 runs, and
  the cost of ``query.Document.build`` per article (tokenise + segment + index)
  against the same for English text of the same length.

Analysers: fugashi + unidic-lite (the project's), SudachiPy + sudachidict-core
in modes A and B when installed (``pip install sudachipy sudachidict-core``).

    .venv/bin/python bench/bench_segment.py
"""

from __future__ import annotations

import glob
import os
import statistics
import time

from _common import ROOT, emit, header, machine

PROBES = ["金正恩", "金与正", "岸田", "石破", "高市", "首相", "総理", "総書記", "首脳会談",
          "日朝", "会談", "訪朝", "拉致", "拉致被害者", "拉致問題", "家族会", "横田めぐみ",
          "北朝鮮", "平壌", "向き合う", "早期実現", "ミサイル", "米朝", "日韓", "日中"]
# (context, term): wherever the context occurs, the term inside it is not the
# word there, and a match would be false.
NEGATIVE = [("金曜", "金"), ("金正恩", "正恩"), ("首脳会談", "脳会"), ("拉致被害", "致被"),
            ("日朝首脳", "朝首"), ("北朝鮮", "朝鮮"), ("金与正", "与正"), ("金正恩", "金正"),
            ("首相官邸", "相官"), ("訪朝", "朝"), ("拉致問題", "致問")]
LOOSE_END = 3     # as monitor.match.query: a term this long may end inside a word


def texts() -> list[str]:
    seen: set[str] = set()
    out: list[str] = []
    for path in sorted(glob.glob(str(ROOT / "tests/testdata/**/ja/**/*.txt"), recursive=True)
                       + glob.glob(str(ROOT / "tests/testdata/rules/*ja*.txt"))):
        real = os.path.realpath(path)
        if real not in seen:
            seen.add(real)
            out.append(open(real, encoding="utf-8").read())
    return out


def analysers():
    import fugashi

    tagger = fugashi.Tagger("-Owakati")
    out = {"fugashi+unidic-lite": lambda s: tagger.parse(s).split()}
    try:
        from sudachipy import Dictionary, SplitMode
        dictionary = Dictionary(dict="core")
        for mode in ("A", "B"):
            tok = dictionary.tokenizer(getattr(SplitMode, mode))
            out[f"sudachi-core-{mode}"] = (
                lambda s, tok=tok: [m.surface() for m in tok.tokenize(s)])
    except ImportError:
        print("SudachiPy not installed: compared with fugashi only")
    return out


def boundaries(cut, text: str) -> set[int]:
    out: set[int] = {0, len(text)}
    pos = 0
    for line in text.split("\n"):
        for surface in cut(line) if line.strip() else ():
            k = text.find(surface, pos)
            if k >= 0:
                out.add(k)
                out.add(k + len(surface))
                pos = k + len(surface)
        pos = max(pos, text.find("\n", pos) + 1 if "\n" in text[pos:] else pos)
    return out


def occurrences(text: str, term: str) -> list[int]:
    out, k = [], text.find(term)
    while k >= 0:
        out.append(k)
        k = text.find(term, k + 1)
    return out


def _accepted(bounds: set[int], k: int, term: str) -> bool:
    """A term found at k is aligned when a word starts there and, if short, ends with it."""
    return k in bounds and (len(term) >= LOOSE_END or k + len(term) in bounds)


def main() -> None:
    header("Japanese segmentation: accuracy on the story's terms, and speed")
    corpus = texts()
    if not corpus:
        print("no Japanese test articles found under tests/testdata")
        return
    chars = sum(map(len, corpus))
    print(f"{len(corpus)} Japanese articles, {chars} characters; machine {machine()}")
    result: dict = {"articles": len(corpus), "characters": chars, "analysers": {}}
    for name, cut in analysers().items():
        total = aligned = false = neg_total = 0
        missed: dict[str, int] = {}
        for text in corpus:
            bounds = boundaries(cut, text)

            for term in PROBES:
                for k in occurrences(text, term):
                    total += 1
                    if _accepted(bounds, k, term):
                        aligned += 1
                    else:
                        missed[term] = missed.get(term, 0) + 1
            for context, term in NEGATIVE:
                inner = context.index(term)
                for k in occurrences(text, context):
                    neg_total += 1
                    false += _accepted(bounds, k + inner, term)
        runs = []
        for _ in range(3):
            t0 = time.process_time()
            for text in corpus:
                for line in text.split("\n"):
                    if line.strip():
                        cut(line)
            runs.append(time.process_time() - t0)
        cpu = statistics.median(runs)
        figures = {"probe_occurrences": total, "aligned": aligned,
                   "aligned_share": round(aligned / total, 4) if total else None,
                   "negative_occurrences": neg_total, "false_aligned": false,
                   "kchars_per_cpu_s": round(chars / cpu / 1000, 1),
                   "misaligned_terms": dict(sorted(missed.items(), key=lambda kv: -kv[1])[:8])}
        result["analysers"][name] = figures
        print(f"{name:22} aligned {aligned}/{total} = {figures['aligned_share']}   "
              f"false {false}/{neg_total}   {figures['kchars_per_cpu_s']} kchar/CPU s   "
              f"misaligned: {figures['misaligned_terms']}")

    from monitor.match.query import Document

    english = ("Prime Minister Kishida said on Tuesday that he wants a summit with North "
               "Korean leader Kim Jong Un at an early date, and the families of the abductees "
               "urged him to act. ")
    costs = {}
    for label, make in (("ja", lambda t: t),
                        ("en", lambda t: (english * (len(t) // len(english) + 1))[:len(t) * 3])):
        docs = [make(t) for t in corpus]
        runs = []
        for _ in range(3):
            t0 = time.process_time()
            for text in docs:
                Document.build(title=text[:40], text=text)
            runs.append(time.process_time() - t0)
        costs[label] = statistics.median(runs) / len(docs) * 1000
    # English text of the same information: about three Latin characters per Japanese one.
    print(f"Document.build per article: ja {costs['ja']:.2f} ms, en (3x the characters) "
          f"{costs['en']:.2f} ms CPU, median of 3")
    result["document_build_ms"] = {k: round(v, 3) for k, v in costs.items()}
    emit("segment", result)


if __name__ == "__main__":
    main()
