"""The commands about the configuration itself: ``validate`` and ``init``."""

from __future__ import annotations

import argparse
import sys
from importlib.resources import files
from pathlib import Path

from monitor.cli.output import EXIT_OK, EXIT_USAGE
from monitor.config import DEFAULT_PATH, Config
from monitor.match.rulecheck import lowercase_operators


def cmd_validate(config: Config, args: argparse.Namespace) -> int:
    for rule in config.rules:
        for pos, word in lowercase_operators(rule.query):
            print(f"news-monitor: warning: {config.path}: rule {rule.name!r}"
                  f"{line_of(config.path, rule.name)}: query position {pos}: lower-case "
                  f"{word!r} is searched for as a word; operators are upper case "
                  f"({word.upper()})", file=sys.stderr)
    print(f"{config.path}: OK: {len(config.sources)} sources, {len(config.rules)} rules, "
          f"{len(config.notifiers)} notifiers")
    return EXIT_OK


def line_of(path, rule: str) -> str:
    """", line N" of the rule's ``name = "..."`` in the file, when it can be found."""
    try:
        lines = Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    for n, line in enumerate(lines, 1):
        key, _, value = line.partition("=")
        if key.strip() == "name" and value.strip().strip("'\"") == rule:
            return f" (line {n})"
    return ""


def cmd_init(args: argparse.Namespace) -> int:
    target = Path(args.config)
    starter = files("monitor").joinpath("starter.toml").read_bytes()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("xb") as out:            # "x": never over an existing file
            out.write(starter)
    except FileExistsError:
        print(f"news-monitor: error: {target} exists; it is left as it is", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"news-monitor: error: cannot write {target}: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    option = "" if args.config == DEFAULT_PATH else f" --config {args.config}"
    print(f"wrote {target}\nNext: edit it, then `news-monitor{option} validate` and "
          f"`news-monitor{option} check-now --dry-run`.")
    return EXIT_OK


