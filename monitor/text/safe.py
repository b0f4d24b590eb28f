"""Small helpers for showing untrusted web text safely."""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u200b-\u200f\u202a-\u202e\u2066-\u2069]")
_SPACE = re.compile(r"\s+")


# Characters no reader needs and hostile text uses to garble what people see: C0/C1
# controls (terminal escapes, BEL, backspace), bidi embeddings, overrides and
# isolates (right-to-left spoofing), zero-width space and marks, BOM. Line breaks
# and other white-space controls collapse to a space instead.
_UNSAFE = re.compile("[\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f\u200b\u200e\u200f"
                     "\u202a-\u202e\u2066-\u2069\ufeff]")


def strip_unsafe(text: str | None) -> str:
    """Text without unsafe characters, every other character where it was (offsets
    into it shift only where something was removed)."""
    return _UNSAFE.sub("", text or "")


def clean_text(text: str | None) -> str:
    """Web text (a title, a byline, a paragraph) without unsafe characters, its white
    space collapsed to single spaces."""
    return _SPACE.sub(" ", _UNSAFE.sub("", text or "")).strip()


def one_line(text: str | None, limit: int = 500) -> str:
    """Text on one line, without control or bidi characters, at most ``limit`` chars."""
    if not text:
        return ""
    text = _SPACE.sub(" ", _CONTROL.sub("", text)).strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
