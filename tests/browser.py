"""Headless Chromium for tests: Debian's ``chromium`` package driven by Playwright.

No browser is ever downloaded (``playwright install`` is not used): the tests run
the system's /usr/bin/chromium, which ``.ci/run`` installs with apt-get. Where no
browser can be had the browser tests are skipped with the reason, except under
CI (CI=true), where they fail instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("MONITOR_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update",
        "--disable-dev-shm-usage"]


def unavailable_reason() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright is not installed: pip install -e '.[test]'"
    if not Path(CHROMIUM).exists():
        return f"no browser at {CHROMIUM}: apt-get install chromium"
    return None


def require_browser() -> None:
    reason = unavailable_reason()
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"browser tests are mandatory in CI: {reason}")
        pytest.skip(reason)


@contextmanager
def chromium() -> Iterator:
    """A headless Chromium (Playwright ``Browser``)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


class ConsoleWatch:
    """Every console error and uncaught page error (CSP violations included)."""

    def __init__(self, page):
        self.errors: list[str] = []
        page.on("console", lambda m: self.errors.append(f"console: {m.text}")
                if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
