"""Snippets and their highlighted words, from the spans the query engine found.

The spans are where the engine matched (``MatchResult.highlighted``), kept with
the alert: the web page and the notifiers cut the snippet at them
(``segments``) and never search the snippet for the matched words again. The
engine knows that "Kim Jong-un" matched ``"Kim Jong Un"`` and that "summitry"
did not match ``summit``; a second matcher would not.
"""

from __future__ import annotations

import re

from monitor.text.safe import strip_unsafe

_SPACE = re.compile(r"[\s\x00-\x1f\x7f]")


def snippet_window(text: str, spans: list[tuple[int, int]], width: int
                   ) -> tuple[str, list[tuple[int, int]]]:
    """The ``width`` characters of ``text`` around the densest cluster of ``spans``,
    on one line, with "…" where it was cut; and the spans within it, sorted,
    overlapping ones merged, clipped to it."""
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
    return lead + body + tail, merge_spans(marks)


def merge_spans(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """``spans`` sorted, overlapping ones ("Kim*" and "Kim Jong Un") made one."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged



def segments(text: str, spans: list[tuple[int, int]]) -> list[tuple[str, bool]]:
    """``text`` cut at ``spans``: (piece, is_a_hit) in order. Spans out of range or
    overlapping (a stored row written by another version) are dropped, not trusted."""
    out: list[tuple[str, bool]] = []
    at = 0
    for start, end in sorted(spans):
        if not (isinstance(start, int) and isinstance(end, int)) or start < at or end <= start \
                or end > len(text):
            continue
        if start > at:
            out.append((strip_unsafe(text[at:start]), False))
        out.append((strip_unsafe(text[start:end]), True))
        at = end
    if at < len(text):
        out.append((strip_unsafe(text[at:]), False))
    return [(piece, hit) for piece, hit in out if piece]
