"""The alert record (see the README), one JSON object per line, appended to a file."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from monitor.delivery.notifiers.base import Notifier
from monitor.errors import ConfigError, DeliveryError
from monitor.models import AlertRecord


class JsonlNotifier(Notifier):
    kind = "jsonl"

    def __init__(self, name: str, path: str):
        super().__init__(name)
        self.path = Path(path)

    @classmethod
    def from_config(cls, name: str, options: dict[str, Any], *, http: Any = None) -> JsonlNotifier:
        options = dict(options)
        path = options.pop("path", None)
        if not isinstance(path, str) or not path:
            raise ConfigError(f"notifier {name!r}: path: is required (a file path)")
        if options:
            raise ConfigError(f"notifier {name!r}: {sorted(options)[0]}: unknown key")
        return cls(name, path)

    async def send(self, alert: AlertRecord, *, thread: dict | None = None) -> dict:
        line = json.dumps(alert.to_dict(), ensure_ascii=False) + "\n"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # One write() of a whole line on an O_APPEND descriptor: concurrent
            # processes never interleave inside a record.
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line.encode("utf-8"))
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise DeliveryError(f"cannot append to {self.path}: {exc.strerror}") from None
        return {}
