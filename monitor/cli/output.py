"""What the commands print, and the exit status they return.

Exit status: 0 all went well; 1 the run finished but a source or a delivery
failed (or, for ``rules test``, the rule did not match); 2 usage or
configuration error, with a message naming the file, key or rule.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from monitor.text.safe import one_line

if TYPE_CHECKING:
    from rich.console import Console

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_INTERRUPTED = 130          # 128 + SIGINT, as shells report a Ctrl-C


def console() -> Console:
    # rich is imported when a table or colour is printed, not for every command.
    from rich.console import Console

    # Piped into a file or a mail, 80 columns wraps every error: use a wider page.
    return Console(highlight=False, soft_wrap=False,
                   width=None if sys.stdout.isatty() else 140)


def when(value: datetime | None, zone: str = "UTC") -> str:
    if value is None:
        return "-"
    if zone == "UTC":
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    return value.astimezone(ZoneInfo(zone)).strftime(f"%Y-%m-%d %H:%M:%S {zone}")


def duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.3g}{unit}"
    return f"{seconds:.3g}s"


def safe(text: str | None, limit: int = 200) -> str:
    """One line of at most ``limit`` characters, with rich markup escaped."""
    # rich is imported when a table or colour is printed, not for every command.
    from rich.markup import escape

    return escape(one_line(text, limit))
