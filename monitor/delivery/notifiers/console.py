"""Alerts printed to the terminal: the default channel of a rule with no `notify`."""

from __future__ import annotations

import sys
from typing import Any, TextIO

from monitor.delivery.notifiers.base import Notifier
from monitor.delivery.notifiers.render import published_text
from monitor.errors import ConfigError
from monitor.models import AlertRecord
from monitor.text.safe import one_line


class ConsoleNotifier(Notifier):
    kind = "console"

    def __init__(self, name: str, stream: TextIO | None = None):
        super().__init__(name)
        self.stream = stream

    @classmethod
    def from_config(cls, name: str, options: dict[str, Any], *,
                    http: Any = None) -> ConsoleNotifier:
        if options:
            raise ConfigError(f"notifier {name!r}: {sorted(options)[0]}: unknown key")
        return cls(name)

    async def send(self, alert: AlertRecord, *, thread: dict | None = None) -> dict:
        stream = self.stream or sys.stderr
        tag = "follow-up" if alert.followup else "new"
        lines = [
            f"[{one_line(alert.rule)}] ({tag}) {one_line(alert.title)}",
            f"  {one_line(alert.source)}"
            f" · {published_text(alert.published, self.timezone) or 'undated'}"
            f" · {one_line(alert.url)}",
            f"  matched: {', '.join(one_line(t) for t in alert.matched)}",
        ]
        if alert.snippet:
            lines.append(f"  {one_line(alert.snippet)}")
        stream.write("\n".join(lines) + "\n")
        stream.flush()
        return {}
