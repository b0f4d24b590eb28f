"""The one redaction family: what each former redactor did now goes through it."""

from __future__ import annotations

import logging

import pytest

from monitor.logs import RedactSecrets
from monitor.redaction import REDACTED, redact, redact_error, redactor

SECRET = "s3cr3t/t0k+en"

# (secrets, text, expected): the cases of the log and page redactor.
REDACTOR_CASES = [
    ([SECRET], f"token {SECRET} failed", "token *** failed"),
    ([SECRET], "GET https://h.example/x?t=s3cr3t%2Ft0k%2Ben", "GET https://h.example/x?t=***"),
    ([SECRET], "GET https://h.example/s3cr3t/t0k%2Ben", "GET https://h.example/***"),
    ([SECRET], "form t=s3cr3t/t0k+en&x=1", "form t=***&x=1"),
    (["abcd", "abcdefgh"], "abcdefgh abcd", "*** ***"),       # the longer one whole
    (["abc"], "abc is too short to be a secret", "abc is too short to be a secret"),
    ([None, ""], "nothing to hide", "nothing to hide"),
    ([], "postgresql://u:pw@db.example/x", "postgresql://u:***@db.example/x"),
    ([], "host=h password='a b' user=u", "host=h password=*** user=u"),
    ([], "PASSWORD = hunter2", "PASSWORD = ***"),
]


@pytest.mark.parametrize(("secrets", "text", "expected"), REDACTOR_CASES)
def test_redactor(secrets, text, expected):
    assert redactor(secrets)(text) == expected


# The cases of the storage redactor (passwords in URLs, DSNs, the known password).
@pytest.mark.parametrize(("text", "secrets", "expected"), [
    ("postgresql://u:p%40ss@h/db failed", [], "postgresql://u:***@h/db failed"),
    ("host=h password='a b' user=u", [], "host=h password=*** user=u"),
    ("bad pw: hunter2", ["hunter2"], "bad pw: ***"),
    ("short pw: abc", ["abc"], "short pw: ***"),           # a known secret, however short
    ("no secret here", [None], "no secret here"),
])
def test_redact(text, secrets, expected):
    assert redact(text, secrets) == expected


def test_redact_takes_any_value():
    assert redact(ValueError("bad hunter2"), ["hunter2"]) == "bad ***"


def test_one_string_is_not_taken_for_many_secrets():
    with pytest.raises(TypeError):
        redact("a b c", "abc")  # type: ignore[arg-type]


# The cases of the notifiers' error redactor: also no URL, and one line.
@pytest.mark.parametrize(("text", "secrets", "expected"), [
    ("connect to https://hooks.example/T1/B2/xyz failed", [], "connect to <url> failed"),
    ("401 for token xoxb-1234", ["xoxb-1234"], "401 for token ***"),
    ("line one\r\nline two\x1b[31m", [], "line one line two[31m"),
    (b"bytes too", [], "b'bytes too'"),
])
def test_redact_error(text, secrets, expected):
    assert redact_error(text, secrets) == expected


def test_redact_error_is_short():
    assert len(redact_error("x" * 1000)) == 300
    assert len(redact_error("x" * 1000, limit=50)) == 50


def _record(msg: str, *args: object, exc: BaseException | None = None) -> logging.LogRecord:
    exc_info = (type(exc), exc, exc.__traceback__) if exc else None
    return logging.LogRecord("t", logging.WARNING, __file__, 1, msg, args, exc_info)


def test_log_filter_redacts_message_and_traceback():
    try:
        raise RuntimeError(f"boom {SECRET}")
    except RuntimeError as caught:
        record = _record("fetch %s failed", f"https://u:{SECRET}@h.example/", exc=caught)
    RedactSecrets([SECRET]).filter(record)
    assert record.getMessage() == "fetch https://u:***@h.example/ failed"
    assert record.exc_info is None and record.exc_text is not None
    assert SECRET not in record.exc_text and REDACTED in record.exc_text


def test_log_filter_leaves_a_clean_record_as_it_is():
    record = _record("polled %s in %d ms", "nhk", 12)
    RedactSecrets([SECRET]).filter(record)
    assert record.args == ("nhk", 12)


def test_log_filter_survives_arguments_that_do_not_fit():
    record = _record("two %s %s", SECRET)
    assert RedactSecrets([SECRET]).filter(record)
    assert SECRET not in record.getMessage()
