"""Logging: one line per event on stderr, with every configured secret redacted."""

from __future__ import annotations

import json
import logging
import sys
from typing import Callable, Iterable

REDACTED = "***"


def redactor(secrets: Iterable[str]) -> Callable[[str], str]:
    """A function that replaces every secret (values taken from the environment)."""
    # Longest first, so that a secret containing another is redacted whole.
    ordered = sorted((s for s in secrets if len(s) >= 4), key=len, reverse=True)

    def redact(text: str) -> str:
        for secret in ordered:
            text = text.replace(secret, REDACTED)
        return text
    return redact


class RedactSecrets(logging.Filter):
    """Redacts every secret from a record, its message and its traceback."""

    def __init__(self, secrets: Iterable[str]):
        super().__init__()
        secrets = list(secrets)
        self.enabled = any(len(s) >= 4 for s in secrets)
        self.redact = redactor(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        if self.enabled:
            record.msg, record.args = self.redact(record.getMessage()), None
            if record.exc_text or record.exc_info:
                text = (logging.Formatter().formatException(record.exc_info)
                        if record.exc_info else record.exc_text)
                record.exc_info, record.exc_text = None, self.redact(text)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for logs read by machines (``run``)."""

    def format(self, record: logging.LogRecord) -> str:
        data = {"time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
                "level": record.levelname.lower(), "logger": record.name,
                "message": record.getMessage()}
        for key in ("source", "article", "alert", "notifier", "event"):
            if hasattr(record, key):
                data[key] = getattr(record, key)
        if record.exc_text:
            data["exception"] = record.exc_text
        elif record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False)


def setup_logging(verbose: int = 0, *, secrets: Iterable[str] = (), json_lines: bool = False) -> None:
    level = logging.WARNING if verbose <= 0 else logging.INFO if verbose == 1 else logging.DEBUG
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactSecrets(secrets))
    handler.setFormatter(JsonFormatter() if json_lines else
                         logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s",
                                           "%Y-%m-%dT%H:%M:%S"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # Libraries' chatter stays out unless asked for.
    for name in ("httpx", "httpcore", "trafilatura", "htmldate", "courlan", "charset_normalizer"):
        logging.getLogger(name).setLevel(logging.WARNING if verbose < 2 else logging.INFO)
