"""Small helpers for showing untrusted web text safely."""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u200b-\u200f\u202a-\u202e\u2066-\u2069]")
_SPACE = re.compile(r"\s+")


def one_line(text: str | None, limit: int = 500) -> str:
    """Text on one line, without control or bidi characters, at most ``limit`` chars."""
    if not text:
        return ""
    text = _SPACE.sub(" ", _CONTROL.sub("", text)).strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
