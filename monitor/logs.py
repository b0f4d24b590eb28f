"""Logging: one line per event on stderr, with every configured secret redacted.

Two formats: on a terminal, text a person reads (time, level, message, source);
elsewhere (a file, journald, a container's log), or with ``--log-format json``,
one JSON object per line, and nothing else on stderr: Python warnings and uncaught
exceptions go through the same handler, and worker processes log the same way.
APScheduler's INFO lines (two per job run) are left out unless ``-vv``.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from collections.abc import Iterable
from dataclasses import dataclass

from monitor.redaction import redactor


class RedactSecrets(logging.Filter):
    """Redacts every secret from a record, its message and its traceback."""

    def __init__(self, secrets: Iterable[str]):
        super().__init__()
        self.redact = redactor(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):    # arguments that do not fit the format
            message = f"{record.msg} {record.args}"
        redacted = self.redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        # A record is left as it is where nothing needed redacting.
        if record.exc_info:
            text = logging.Formatter().formatException(record.exc_info)
            redacted = self.redact(text)
            if redacted != text:
                record.exc_info, record.exc_text = None, redacted
        elif record.exc_text:
            record.exc_text = self.redact(record.exc_text)
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


class TextFormatter(logging.Formatter):
    """``2024-05-01 10:42:01 WARNING  message  [source]``: one line per event."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-8s %(message)s", "%Y-%m-%d %H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        source = getattr(record, "source", None)
        if source and f"source {source}" not in record.getMessage():
            line += f"  [{source}]"
        return line


LOG_FORMATS = ("auto", "text", "json")
QUIET_LIBRARIES = ("httpx", "httpcore", "trafilatura", "htmldate", "courlan",
                   "charset_normalizer", "apscheduler", "apprise")


@dataclass(frozen=True)
class LogSettings:
    """What a worker process needs to log as its parent does."""

    verbose: int
    secrets: tuple[str, ...]
    json_lines: bool


_current = LogSettings(0, (), False)


def current_settings() -> LogSettings:
    return _current


def setup_logging(verbose: int = 0, *, secrets: Iterable[str] = (), log_format: str = "auto",
                  stream=None) -> LogSettings:
    """Log to ``stream`` (stderr): text on a terminal, JSON lines otherwise
    (``log_format`` "text" or "json" decides instead of the terminal)."""
    global _current
    if log_format == "auto":
        is_tty = getattr(stream or sys.stderr, "isatty", lambda: False)
        log_format = "text" if is_tty() else "json"
    _current = LogSettings(verbose, tuple(secrets), log_format == "json")
    _install(_current, stream)
    return _current


def setup_worker_logging(settings: LogSettings) -> None:
    """In a worker process: log as the parent was set up to."""
    _install(settings, None)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time: while a progress bar is
    drawn, that is the bar's proxy, which prints the line above the bar."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def _install(settings: LogSettings, stream) -> None:
    verbose = settings.verbose
    level = logging.WARNING if verbose <= 0 else logging.INFO if verbose == 1 else logging.DEBUG
    handler = _StderrHandler() if stream is None else logging.StreamHandler(stream)
    handler.addFilter(RedactSecrets(settings.secrets))
    handler.setFormatter(JsonFormatter() if settings.json_lines else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # Libraries' chatter stays out unless asked for; their warnings stay in.
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(logging.WARNING if verbose < 2 else logging.INFO)
    # Warnings and uncaught exceptions would otherwise be written to stderr bare.
    logging.captureWarnings(True)
    if settings.json_lines:
        sys.excepthook = _log_uncaught
        threading.excepthook = lambda a: _log_uncaught(a.exc_type, a.exc_value, a.exc_traceback,
                                                       thread=a.thread)


def _log_uncaught(exc_type, exc_value, tb, thread=None) -> None:
    if issubclass(exc_type, KeyboardInterrupt):
        return
    where = f" in thread {thread.name}" if thread is not None else ""
    logging.getLogger("monitor").critical("uncaught exception%s", where,
                                          exc_info=(exc_type, exc_value, tb))
