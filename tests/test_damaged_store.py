"""A damaged SQLite file is refused before anything is written to it."""

from __future__ import annotations

import hashlib
import random

from tests.newsroom import Site, Story, rss20
from tests.test_check_now import config


def _damage(path) -> None:
    """4 KB of noise over the page in the middle of the file, as a bad disk would."""
    data = bytearray(path.read_bytes())
    middle = (len(data) // 2) // 4096 * 4096
    data[middle:middle + 4096] = random.Random(7).randbytes(4096)
    path.write_bytes(bytes(data))


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_run_and_check_now_refuse_a_damaged_database_and_say_what_to_do(project, http_server):
    wire = Site(http_server, "Asia Wire", "/wire")
    stories = [Story(f"s{i}", f"Kishida and Kim summit talks, part {i}",
                     " ".join(f"Paragraph {j} of report {i} on the summit prospects between "
                              f"Tokyo and Pyongyang." for j in range(60)))
               for i in range(40)]
    feed = wire.feed("/rss.xml", rss20([(s, wire.publish(s)) for s in stories]),
                     "application/rss+xml")
    project.write(config([("wire", "feed", feed)]))
    assert project.cli("check-now").code == 0
    database = project.path / "data" / "monitor.db"
    assert database.stat().st_size > 64 * 1024
    _damage(database)
    damaged = _digest(database)
    more = [Story(f"n{i}", f"New summit report {i}", "Kishida wants a summit with Kim.")
            for i in range(5)]
    wire.feed("/rss.xml", rss20([(s, wire.publish(s)) for s in more]), "application/rss+xml")

    daemon = project.process("run", timeout=60)
    once = project.process("check-now", timeout=60)

    for result in (daemon, once):
        assert result.returncode == 1, result.stderr
        assert "damaged" in result.stderr and str(database.relative_to(project.path)) in \
            result.stderr
        assert "backup" in result.stderr and ".recover" in result.stderr
        assert "Traceback" not in result.stderr
    assert _digest(database) == damaged                  # nothing was written to it
    assert http_server.requests_for("/wire/news/n0") == []
