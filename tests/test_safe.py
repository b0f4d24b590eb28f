"""The one set of unsafe characters and the helpers that show text without them."""

from __future__ import annotations

import pytest

from monitor.text.safe import UNSAFE_CHARS, clean_text, one_line, strip_unsafe

UNSAFE = ["\x00", "\x07", "\x08", "\x1b", "\r", "\n", "\x0b", "\x1c", "\x7f", "\x85", "\x9b",
          "\u2028", "\u2029", "\u200b", "\u200e", "\u200f", "\u202a", "\u202e", "\u2066",
          "\u2069", "\ufeff"]
SAFE = ["a", " ", "\u00a0", "é", "岸", "김", "\u200c", "\u200d", "\u3000", "…", "😀"]


@pytest.mark.parametrize("char", UNSAFE)
def test_unsafe(char):
    assert UNSAFE_CHARS.search(f"a{char}b")
    assert char not in one_line(f"a{char}b") and char not in clean_text(f"a{char}b")


@pytest.mark.parametrize("char", SAFE)
def test_safe(char):
    assert not UNSAFE_CHARS.search(char)


@pytest.mark.parametrize(("text", "shown"), [
    ("Kim\x1b[31m Jong\u202eUn", "Kim[31m JongUn"),
    ("line one\r\nline two", "line one line two"),
    ("one\u2028two\x85three", "one two three"),
    ("  \tspaced\n\n out ", "spaced out"),
    ("👨\u200d👩\u200d👧 family", "👨\u200d👩\u200d👧 family"),   # joiners stay
    (None, ""),
])
def test_clean_text_and_one_line(text, shown):
    assert clean_text(text) == shown
    assert one_line(text) == shown


def test_strip_unsafe_keeps_white_space_where_it_was():
    assert strip_unsafe("a\u202eb\nc\td\u200be") == "ab\nc\tde"
    assert strip_unsafe(None) == ""


def test_one_line_is_cut_at_the_limit():
    assert one_line("word " * 100, 20) == "word word word word…"
    assert len(one_line("x" * 600)) == 500
