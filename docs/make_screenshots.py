"""Screenshots of the web page for the README: docs/alerts.png and docs/sources.png.

    .venv/bin/python docs/make_screenshots.py

Builds what the browser tests build (tests/webhelp.py: invented news sites on a
loopback server, two `check-now` passes, `serve`), then photographs the alerts
page and the sources page in headless Chromium (tests/browser.py).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.browser import chromium, unavailable_reason  # noqa: E402
from tests.conftest import Project  # noqa: E402
from tests.servers import LoopbackServer  # noqa: E402
from tests.webhelp import Newsroom, serving, web_config  # noqa: E402


def main() -> int:
    reason = unavailable_reason()
    if reason:
        print(f"cannot take screenshots: {reason}", file=sys.stderr)
        return 1
    out = ROOT / "docs"
    with tempfile.TemporaryDirectory() as tmp, LoopbackServer() as server:
        project = Project(Path(tmp))
        newsroom = Newsroom(server)
        project.write(web_config(newsroom.sources()))
        newsroom.first_pass()
        project.process("check-now")
        newsroom.second_pass()
        project.process("check-now")
        with serving(project) as base, chromium() as browser:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(base + "/")
            page.screenshot(path=str(out / "alerts.png"), full_page=True)
            page.goto(base + "/sources")
            page.screenshot(path=str(out / "sources.png"), full_page=True)
    print(f"wrote {out / 'alerts.png'} and {out / 'sources.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
