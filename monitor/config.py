"""The configuration: parsed and validated once, at the edge, into frozen values.

Nothing below this module reads the environment or the TOML again: the pipeline
receives a ``Config`` and the pieces it needs from it.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from monitor import defaults
from monitor.delivery.quiet import parse_quiet_hours
from monitor.errors import ConfigError, QueryError
from monitor.models import NotifierKind, NotifyMode, SourceKind

DEFAULT_PATH = "config/monitor.toml"

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$", re.IGNORECASE)
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(b|kb|kib|mb|mib|gb|gib)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"b": 1, "kb": 1000, "kib": 1024, "mb": 1000**2, "mib": 1024**2,
               "gb": 1000**3, "gib": 1024**3}
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")

SOURCE_KINDS = ("feed", "page", "sitemap")

# A configuration is a few hundred kilobytes at most: /dev/zero is not one.
MAX_CONFIG_BYTES = 10_000_000
MAX_DURATION = 10 * 365 * 86400.0     # ten years: anything longer is a mistake
MAX_TIMEOUT = 3600.0                  # a request with no deadline in practice is one
MAX_SIZE = 1_000_000_000              # max_body: past 1 GB it is no longer a cap
MAX_LINK_PATTERN = 1000


@dataclass(frozen=True)
class MonitorSettings:
    user_agent: str = defaults.USER_AGENT
    default_interval: float = defaults.DEFAULT_INTERVAL
    timeout: float = defaults.TIMEOUT
    max_body: int = defaults.MAX_BODY
    concurrency: int = defaults.CONCURRENCY
    per_host: int = defaults.PER_HOST
    per_host_delay: float = defaults.PER_HOST_DELAY
    allow_private_networks: bool = defaults.ALLOW_PRIVATE_NETWORKS
    respect_robots: bool = defaults.RESPECT_ROBOTS
    max_age: float = defaults.MAX_AGE
    min_interval: float = defaults.MIN_INTERVAL
    max_interval: float = defaults.MAX_INTERVAL
    adaptive: bool = defaults.ADAPTIVE
    broken_after: int = defaults.BROKEN_AFTER
    health_notify: tuple[str, ...] = ()
    workers: int = defaults.WORKERS


@dataclass(frozen=True)
class SourceConfig:
    name: str
    kind: SourceKind
    url: str
    interval: float
    fetch_articles: bool = defaults.FETCH_ARTICLES
    link_pattern: str | None = None


@dataclass(frozen=True)
class RuleConfig:
    name: str
    query: str
    notify: tuple[str, ...]
    sources: tuple[str, ...] = ()


@dataclass(frozen=True)
class NotifierConfig:
    name: str
    kind: NotifierKind
    options: Mapping[str, Any]
    mode: NotifyMode = defaults.NOTIFY_MODE
    schedule: str | None = None      # cron expression, digest mode
    timezone: str = defaults.TIMEZONE
    quiet_hours: tuple[time, time] | None = None   # (start, end) wall-clock times in timezone


@dataclass(frozen=True)
class WebSettings:
    listen: str = defaults.LISTEN    # for `serve` and `run --http`
    token: str | None = None         # required when listen is not a loopback address
    timezone: str = defaults.TIMEZONE  # dates on the web page and in feeds


@dataclass(frozen=True)
class Config:
    path: str
    monitor: MonitorSettings
    storage_url: str
    sources: tuple[SourceConfig, ...]
    rules: tuple[RuleConfig, ...]
    notifiers: tuple[NotifierConfig, ...]
    # Values that came from the environment: redacted from every log line and message.
    secrets: frozenset[str] = field(default_factory=frozenset)
    web: WebSettings = field(default_factory=WebSettings)
    # Mistakes that do not stop the monitor (e.g. two sources with one URL), with lines.
    warnings: tuple[str, ...] = ()

    def source(self, name: str) -> SourceConfig:
        return next(s for s in self.sources if s.name == name)

    def notifier(self, name: str) -> NotifierConfig:
        return next(n for n in self.notifiers if n.name == name)


def parse_duration(value: Any, *, maximum: float = MAX_DURATION,
                   allow_zero: bool = False) -> float:
    """'30s', '10m', '1h', '2d', or a number of seconds; finite, positive (or zero
    with ``allow_zero``), at most ``maximum``."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as \"30s\", \"10m\" or \"1h\"")
    try:
        if isinstance(value, (int, float)):
            seconds = float(value)
        elif isinstance(value, str) and (m := _DURATION.match(value)):
            seconds = float(m.group(1)) * _DURATION_UNITS[(m.group(2) or "s").lower()]
        else:
            raise ValueError(f"{_shown(value)} is not a duration "
                             "(use e.g. \"30s\", \"10m\", \"1h\")")
    except OverflowError:
        seconds = math.inf
    if math.isnan(seconds):
        raise ValueError(f"{value!r} is not a duration (use e.g. \"30s\", \"10m\", \"1h\")")
    if seconds == 0 and allow_zero:
        return 0.0
    if seconds <= 0:
        raise ValueError(f"{_shown(value)}: a duration must be positive")
    if seconds > maximum:
        raise ValueError(f"{_shown(value)}: at most {_duration_text(maximum)}")
    return seconds


def _duration_text(seconds: float) -> str:
    for unit, scale in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= scale and seconds % scale == 0:
            return f"{seconds / scale:g}{unit}"
    return f"{seconds:g}s"


def parse_size(value: Any, *, maximum: int = MAX_SIZE) -> int:
    """'10MB', '512KiB', or a number of bytes; at most ``maximum``."""
    if isinstance(value, bool):
        raise ValueError("expected a size such as \"10MB\"")
    if isinstance(value, int):
        size = value
    elif isinstance(value, str) and (m := _SIZE.match(value)):
        size = int(float(m.group(1)) * _SIZE_UNITS[(m.group(2) or "b").lower()])
    else:
        raise ValueError(f"{_shown(value)} is not a size (use e.g. \"10MB\", \"512KB\")")
    if size <= 0:
        raise ValueError(f"{_shown(value)}: a size must be positive")
    if size > maximum:
        raise ValueError(f"{_shown(value)}: at most {maximum // 1_000_000} MB")
    return size


def split_listen(value: str) -> tuple[str, int]:
    """'HOST:PORT' (IPv6 hosts in brackets) as (host, port); ValueError otherwise."""
    host, _, port = value.rpartition(":")
    host = host.strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{value!r}: expected HOST:PORT, e.g. 127.0.0.1:8080")
    return host, int(port)


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False           # a name other than localhost may resolve anywhere


def check_listen(listen: str, token: str | None) -> None:
    """A page that anyone on the network can reach must ask for a token."""
    host, _ = split_listen(listen)
    if not token and not is_loopback(host):
        raise ValueError(f"{listen!r} is not a loopback address: set [web] token "
                         "(e.g. token = \"${WEB_TOKEN}\"), or listen on 127.0.0.1")


def check_http_url(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("expected a URL string")
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:
        raise ValueError(f"{_shown(value)} is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not host:
        raise ValueError(f"{_shown(value)} is not an http(s) URL")
    return value


class _Lines:
    """Where each table and key is in the TOML text, to name the line of a mistake.

    tomllib keeps no positions: this reads headers (``[t]``, ``[[t]]``) and
    ``key =`` lines, skipping multi-line strings. A key it cannot place (a dotted
    or inline-table key) is named by its table's line."""

    _HEADER = re.compile(r"""^\s*(\[\[?)\s*([A-Za-z0-9_.\-"' ]+?)\s*\]\]?\s*(?:#.*)?$""")
    _KEY = re.compile(r"""^\s*([A-Za-z0-9_\-]+|"[^"]*"|'[^']*')\s*=""")
    _MULTILINE = ('"""', "'''")

    def __init__(self, text: str):
        self.tables: dict[tuple, int] = {}
        self.keys: dict[tuple, int] = {}
        section: tuple = ()
        counts: dict[str, int] = {}
        quote = None
        for number, line in enumerate(text.splitlines(), 1):
            if quote is not None:
                if line.count(quote) % 2 == 1:
                    quote = None
                continue
            header = self._HEADER.match(line)
            if header:
                name = header.group(2).strip().strip("\"'")
                if header.group(1) == "[[":
                    index = counts.get(name, 0)
                    counts[name] = index + 1
                    section = (name, index)
                else:
                    section = (name,)
                self.tables.setdefault(section, number)
                continue
            key = self._KEY.match(line)
            if key:
                self.keys.setdefault((section, key.group(1).strip("\"'")), number)
                rest = line[key.end():]
                quote = next((q for q in self._MULTILINE if rest.count(q) % 2 == 1), None)

    def line(self, section: tuple, key: str | None) -> int | None:
        if key is not None:
            found = self.keys.get((section, key.split(".")[0]))
            if found is not None:
                return found
        return self.tables.get(section)


class _Problems:
    """Every mistake found in one file, each with its line; reported all at once."""

    def __init__(self, path: str, lines: _Lines):
        self.path, self.lines = path, lines
        self.errors: list[str] = []
        self.warnings: list[str] = []

    def at(self, section: tuple, key: str | None) -> str:
        line = self.lines.line(section, key)
        return f"{self.path}:{line}" if line else self.path

    def _message(self, section: tuple, where: str, key: str | None, problem: str) -> str:
        return f"{self.at(section, key)}: {where}" + (f": {key}" if key else "") + f": {problem}"

    def error(self, section: tuple, where: str, key: str | None, problem: str) -> None:
        self.errors.append(self._message(section, where, key, problem))

    def warn(self, section: tuple, where: str, key: str | None, problem: str) -> None:
        self.warnings.append(self._message(section, where, key, problem))


class _Reader:
    """Reads one TOML table. A mistake is recorded (file, line, where, key, problem)
    and the default stands in, so that reading goes on and every mistake is found."""

    def __init__(self, problems: _Problems, section: tuple, where: str, table: Any,
                 env: Mapping[str, str], secrets: set[str]):
        self.problems, self.section, self.where = problems, section, where
        self.path = problems.path
        if not isinstance(table, dict):
            problems.error(section, where, None, "expected a table")
            table = {}
        self.table = dict(table)
        self.env, self.secrets = env, secrets
        self.used: set[str] = set()

    def report(self, key: str | None, problem: str) -> None:
        self.problems.error(self.section, self.where, key, problem)

    def warn(self, key: str | None, problem: str) -> None:
        self.problems.warn(self.section, self.where, key, problem)

    def _expand(self, key: str, value: Any) -> Any:
        if isinstance(value, str):
            def sub(m: re.Match) -> str:
                name = m.group(1)
                if name not in self.env:
                    self.report(key, f"environment variable {name} is not set")
                    return ""
                self.secrets.add(self.env[name]) if self.env[name] else None
                return self.env[name]
            return _ENV_REF.sub(sub, value)
        if isinstance(value, list):
            return [self._expand(key, v) for v in value]
        if isinstance(value, dict):
            return {k: self._expand(f"{key}.{k}", v) for k, v in value.items()}
        return value

    def get(self, key: str, default: Any = None, *, required: bool = False) -> Any:
        self.used.add(key)
        if key not in self.table:
            if required:
                self.report(key, "is required")
            return default
        return self._expand(key, self.table[key])

    def raw(self, key: str, default: Any = None) -> Any:
        """A value as written (sub-tables expand their own values, naming their own keys)."""
        self.used.add(key)
        return self.table.get(key, default)

    def typed(self, key: str, kind: type | tuple, default: Any = None, *,
              required: bool = False, what: str = "") -> Any:
        if key not in self.table:
            return self.get(key, default, required=required)
        value = self.get(key, default)
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kind):
            self.report(key, f"expected {what or _type_name(kind)}, got {_shown(value)}")
            return default
        return value

    def convert(self, key: str, fn, default: Any = None, *, required: bool = False) -> Any:
        value = self.get(key, None, required=required)
        if value is None:
            return default
        try:
            return fn(value)
        except ValueError as exc:
            self.report(key, str(exc))
            return default

    def rest(self) -> dict[str, Any]:
        """The keys not read by this reader, expanded (for notifier-specific options)."""
        return {k: self._expand(k, v) for k, v in self.table.items() if k not in self.used}

    def finish(self) -> None:
        for key in sorted(set(self.table) - self.used):
            self.report(key, "unknown key")


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _type_name(kind: type | tuple) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    names = {str: "a string", int: "an integer", float: "a number", bool: "true or false",
             list: "a list", dict: "a table"}
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def _name(r: _Reader) -> str:
    name = r.typed("name", str, required=True)
    if name is None:
        return "?"
    if not _NAME.match(name):
        r.report("name", f"{_shown(name)} is not a valid name (letters, digits, '-', '_', '.')")
    return name


def _str_list(r: _Reader, key: str) -> tuple[str, ...]:
    value = r.get(key, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        r.report(key, "expected a list of names")
        return ()
    return tuple(value)


def _bounded(r: _Reader, key: str, default: int, low: int, high: int, *,
             too_low: str | None = None) -> int:
    value = r.typed(key, int, default)
    if value < low:
        r.report(key, too_low or f"must be at least {low}")
        return default
    if value > high:
        r.report(key, f"must be at most {high}")
        return default
    return value


def load_config(path: str | os.PathLike = DEFAULT_PATH,
                env: Mapping[str, str] | None = None) -> Config:
    """Read, validate and return the configuration; raise ConfigError (naming every
    mistake in the file, each with its line) otherwise."""
    path = str(path)
    env = os.environ if env is None else env
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such configuration file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_CONFIG_BYTES // 1_000_000} MB: "
                          "not a configuration file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{path}: invalid TOML: arrays or tables nested too deeply") from None
    return parse_config(data, path=path, env=env, text=text)


def parse_config(data: dict, *, path: str, env: Mapping[str, str], text: str = "") -> Config:
    """The configuration in ``data`` (parsed from ``text``, which gives the lines)."""
    problems = _Problems(path, _Lines(text))
    try:
        config = _parse(data, problems, env)
    except RecursionError:
        raise ConfigError(f"{path}: values nested too deeply") from None
    if problems.errors:
        raise ConfigError("\n".join(problems.errors))
    return config


def _parse(data: dict, problems: _Problems, env: Mapping[str, str]) -> Config:
    secrets: set[str] = set()
    top = _Reader(problems, (), "top level", data, env, secrets)
    monitor = _parse_monitor(_Reader(problems, ("monitor",), "[monitor]",
                                     top.raw("monitor", {}), env, secrets))
    storage_r = _Reader(problems, ("storage",), "[storage]", top.raw("storage", {}), env, secrets)
    storage_url = storage_r.typed("url", str, defaults.STORAGE_URL)
    if not storage_url.startswith(("sqlite://", "postgresql://", "postgres://")):
        storage_r.report("url", f"{_shown(storage_url)}: expected sqlite:///PATH or "
                                "postgresql://...")
    storage_r.finish()
    web = _parse_web(_Reader(problems, ("web",), "[web]", top.raw("web", {}), env, secrets))

    sources = [_parse_source(_Reader(problems, ("sources", i), f"sources[{i}]", t, env, secrets),
                             monitor) for i, t in enumerate(_array(top, "sources"))]
    notifiers = [_parse_notifier(_Reader(problems, ("notifiers", i), f"notifiers[{i}]", t, env,
                                         secrets)) for i, t in enumerate(_array(top, "notifiers"))]
    rules = [_parse_rule(_Reader(problems, ("rules", i), f"rules[{i}]", t, env, secrets))
             for i, t in enumerate(_array(top, "rules"))]
    top.finish()

    for items in (sources, notifiers, rules):
        seen: set[str] = set()
        for value, r in items:
            if value.name in seen:
                r.report("name", f"{value.name!r} is used twice")
            seen.add(value.name)
    source_names = {s.name for s, _ in sources}
    notifier_names = {n.name for n, _ in notifiers} | {"console"}
    for name in monitor.health_notify:
        if name not in notifier_names:
            problems.error(("monitor",), "[monitor]", "health_notify",
                           f"no notifier named {name!r}")
    for rule, r in rules:
        for name in rule.notify:
            if name not in notifier_names:
                r.report("notify", f"no notifier named {name!r}")
        for name in rule.sources:
            if name not in source_names:
                r.report("sources", f"no source named {name!r}")

    by_url: dict[str, str] = {}
    for source, r in sources:
        if source.url and source.url in by_url:
            r.warn("url", f"the same URL as source {by_url[source.url]!r}: it is polled twice")
        by_url.setdefault(source.url, source.name)
    if not rules:
        problems.warn((), "top level", "rules", "no [[rules]]: nothing will ever alert")
    return Config(path=problems.path, monitor=monitor, storage_url=storage_url,
                  sources=tuple(s for s, _ in sources), rules=tuple(r for r, _ in rules),
                  notifiers=tuple(n for n, _ in notifiers), secrets=frozenset(secrets),
                  web=web, warnings=tuple(problems.warnings))


def _array(top: _Reader, key: str) -> list:
    value = top.raw(key, [])
    if not isinstance(value, list):
        top.report(key, f"expected an array of tables ([[{key}]])")
        return []
    return value


def _parse_monitor(r: _Reader) -> MonitorSettings:
    d = MonitorSettings()
    settings = MonitorSettings(
        user_agent=r.typed("user_agent", str, d.user_agent),
        default_interval=r.convert("default_interval", parse_duration, d.default_interval),
        timeout=r.convert("timeout", lambda v: parse_duration(v, maximum=MAX_TIMEOUT), d.timeout),
        max_body=r.convert("max_body", parse_size, d.max_body),
        concurrency=_bounded(r, "concurrency", d.concurrency, 1, 10_000),
        per_host=_bounded(r, "per_host", d.per_host, 1, 1000),
        per_host_delay=r.convert("per_host_delay",
                                 lambda v: parse_duration(v, allow_zero=True, maximum=86400),
                                 d.per_host_delay),
        allow_private_networks=r.typed("allow_private_networks", bool, d.allow_private_networks),
        max_age=r.convert("max_age", parse_duration, d.max_age),
        respect_robots=r.typed("respect_robots", bool, d.respect_robots),
        workers=_bounded(r, "workers", d.workers, 0, 256,
                         too_low="must be 0 (one per core) or more"),
        min_interval=r.convert("min_interval", parse_duration, d.min_interval),
        max_interval=r.convert("max_interval", parse_duration, d.max_interval),
        adaptive=r.typed("adaptive", bool, d.adaptive),
        broken_after=_bounded(r, "broken_after", d.broken_after, 1, 1_000_000),
        health_notify=_str_list(r, "health_notify"),
    )
    if settings.min_interval > settings.max_interval:
        r.report("min_interval", "is longer than max_interval")
    if not settings.user_agent.strip() or any(c in settings.user_agent for c in "\r\n"):
        r.report("user_agent", "must be a non-empty single line")
    r.finish()
    return settings


def _parse_web(r: _Reader) -> WebSettings:
    d = WebSettings()
    listen = r.typed("listen", str, d.listen)
    token = r.typed("token", str, None) or None
    if token:
        r.secrets.add(token)         # written in the file or not, it never shows
    timezone = r.typed("timezone", str, d.timezone)
    r.finish()
    try:
        split_listen(listen)
        check_listen(listen, token)
    except ValueError as exc:
        r.report("listen", str(exc))
        listen = d.listen
    try:
        ZoneInfo(timezone)
    except (KeyError, ValueError, OSError):  # unknown, malformed, or a directory
        r.report("timezone", f"{_shown(timezone)} is not a known time zone")
        timezone = d.timezone
    return WebSettings(listen=listen, token=token, timezone=timezone)


def _parse_source(r: _Reader, monitor: MonitorSettings) -> tuple[SourceConfig, _Reader]:
    from monitor.sources.links import compile_link_pattern

    name = _name(r)
    r.where = f"{r.where} {name!r}"
    kind = r.typed("kind", str, defaults.SOURCE_KIND)
    if kind not in SOURCE_KINDS:
        r.report("kind", f"{_shown(kind)}: expected one of {', '.join(SOURCE_KINDS)}")
    url = r.convert("url", check_http_url, "", required=True)
    link_pattern = r.typed("link_pattern", str, None)
    if link_pattern is not None:
        if len(link_pattern) > MAX_LINK_PATTERN:
            r.report("link_pattern", f"longer than {MAX_LINK_PATTERN} characters")
            link_pattern = None
        else:
            try:
                compile_link_pattern(link_pattern)
            except ConfigError as exc:
                r.report("link_pattern", str(exc).removeprefix("link_pattern "))
                link_pattern = None
    source = SourceConfig(
        name=name, kind=kind, url=url,
        interval=r.convert("interval", parse_duration, monitor.default_interval),
        fetch_articles=r.typed("fetch_articles", bool, defaults.FETCH_ARTICLES),
        link_pattern=link_pattern,
    )
    r.finish()
    return source, r


def _parse_rule(r: _Reader) -> tuple[RuleConfig, _Reader]:
    from monitor.match.query import compile_query

    name = _name(r)
    r.where = f"{r.where} {name!r}"
    query = r.typed("query", str, "", required=True)
    if query:
        try:
            compile_query(query, rule=name)
        except QueryError as exc:
            r.report("query", f"{exc.reason} at position {exc.position}")
    rule = RuleConfig(name=name, query=query, notify=_str_list(r, "notify"),
                      sources=_str_list(r, "sources"))
    r.finish()
    return rule, r


def _parse_notifier(r: _Reader) -> tuple[NotifierConfig, _Reader]:
    from monitor.delivery.notifiers import notifier_class

    name = _name(r)
    r.where = f"{r.where} {name!r}"
    kind = r.typed("kind", str, "", required=True)
    cls = None
    if kind:
        try:
            cls = notifier_class(kind)
        except KeyError:
            r.report("kind", f"{_shown(kind)} is not a notifier kind")
    mode = r.typed("mode", str, defaults.NOTIFY_MODE)
    if mode not in ("immediate", "digest"):
        r.report("mode", f"{_shown(mode)}: expected \"immediate\" or \"digest\"")
    schedule = r.typed("schedule", str, None)
    timezone = r.typed("timezone", str, defaults.TIMEZONE)
    try:
        ZoneInfo(timezone)
    except (KeyError, ValueError, OSError):  # unknown, malformed, or a directory
        r.report("timezone", f"{_shown(timezone)} is not a known time zone")
        timezone = defaults.TIMEZONE
    if mode == "digest":
        if not schedule:
            r.report("schedule", "is required with mode = \"digest\" (a cron expression)")
        else:
            try:
                # APScheduler is loaded only by a configuration that has a digest.
                from apscheduler.triggers.cron import CronTrigger
                CronTrigger.from_crontab(schedule, timezone=timezone)
            except ValueError as exc:
                r.report("schedule", f"{_shown(schedule)} is not a cron expression: {exc}")
    elif schedule:
        r.report("schedule", "only applies with mode = \"digest\"")
    quiet_hours = r.convert("quiet_hours", parse_quiet_hours)
    options = r.rest()
    if cls is not None:
        try:
            cls.from_config(name, dict(options), http=None)
        except ConfigError as exc:
            # Notifiers check their own keys, and stop at the first mistake.
            message = _strip_notifier_prefix(str(exc))
            key = re.match(r"^(?:(?:unknown )?key )?'?([A-Za-z0-9_]+)'?", message)
            r.problems.errors.append(f"{r.problems.at(r.section, key.group(1) if key else None)}"
                                     f": {r.where}: {message}")
    return NotifierConfig(name=name, kind=kind, options=options, mode=mode,
                          schedule=schedule, timezone=timezone, quiet_hours=quiet_hours), r


def _strip_notifier_prefix(message: str) -> str:
    # Notifiers say "notifier 'x': key 'y': ..."; the reader already names the notifier.
    return re.sub(r"^notifier '[^']*':\s*", "", message)
