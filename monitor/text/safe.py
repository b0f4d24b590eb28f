"""Untrusted web text made safe to show: the one list of unsafe characters.

:data:`UNSAFE_CHARS` is every character no reader needs and hostile text uses
to garble what people see or to start a new line where none belongs: C0 and
C1 controls (terminal escapes, BEL, backspace, CR, LF, NEL), DEL, the line and
paragraph separators, the zero-width space, the left-to-right and right-to-left
marks, bidi embeddings, overrides and isolates (right-to-left spoofing), and
the BOM. The zero-width non-joiner and joiner are not in it: Persian, the
Indic scripts and emoji sequences need them.

A value that must be one clean line (a header, a URL, a channel) is refused
when it has one (``UNSAFE_CHARS.search``). Shown text loses them: those that
are white space (line breaks, tabs, separators) collapse to one space, the
others are removed.
"""

from __future__ import annotations

import re

__all__ = ["UNSAFE_CHARS", "clean_text", "one_line", "strip_unsafe"]

_UNSAFE = ("\x00-\x1f\x7f-\x9f\u2028\u2029\u200b\u200e\u200f"
           "\u202a-\u202e\u2066-\u2069\ufeff")
UNSAFE_CHARS = re.compile(f"[{_UNSAFE}]")
# The unsafe characters that are not white space: white space collapses instead.
_INVISIBLE = re.compile(f"(?!\\s)[{_UNSAFE}]")
_SPACE = re.compile(r"\s+")


def strip_unsafe(text: str | None) -> str:
    """Text without its unsafe characters other than white space, every other
    character where it was (offsets into it shift only where something was removed)."""
    return _INVISIBLE.sub("", text or "")


def clean_text(text: str | None) -> str:
    """Web text (a title, a byline, a paragraph) without unsafe characters, its white
    space collapsed to single spaces."""
    return _SPACE.sub(" ", _INVISIBLE.sub("", text or "")).strip()


def one_line(text: str | None, limit: int = 500) -> str:
    """Text on one line, without unsafe characters, at most ``limit`` characters."""
    text = clean_text(text)
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
