"""The configuration: parsed and validated once, at the edge, into frozen values.

Nothing below this module reads the environment or the TOML again: the pipeline
receives a ``Config`` and the pieces it needs from it.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from datetime import time
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlsplit

from monitor import defaults
from monitor.errors import ConfigError, QueryError
from monitor.quiet import parse_quiet_hours

DEFAULT_PATH = "config/monitor.toml"

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$", re.IGNORECASE)
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(b|kb|kib|mb|mib|gb|gib)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"b": 1, "kb": 1000, "kib": 1024, "mb": 1000**2, "mib": 1024**2,
               "gb": 1000**3, "gib": 1024**3}
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")

SOURCE_KINDS = ("feed", "page", "sitemap")


@dataclass(frozen=True)
class MonitorSettings:
    user_agent: str = defaults.USER_AGENT
    default_interval: float = 900.0
    timeout: float = defaults.TIMEOUT
    max_body: int = defaults.MAX_BODY
    concurrency: int = defaults.CONCURRENCY
    per_host: int = defaults.PER_HOST
    per_host_delay: float = defaults.PER_HOST_DELAY
    allow_private_networks: bool = defaults.ALLOW_PRIVATE_NETWORKS
    # robots.txt is honoured for listing pages and article pages (not for feeds,
    # which are published to be polled).
    respect_robots: bool = True
    # Entries published longer ago than this are stored but raise no alert, so a
    # newly added source with years of archive does not flood anyone.
    max_age: float = 7 * 86400.0
    # The polling policy (monitor.polling): adaptive intervals stay within these.
    min_interval: float = 60.0
    max_interval: float = 6 * 3600.0
    adaptive: bool = True
    # After this many failures in a row, a source is reported broken to health_notify.
    broken_after: int = 5
    health_notify: tuple[str, ...] = ()
    # Processes for parsing and extraction: 0 = one per core, 1 = none (threads only).
    workers: int = 0


@dataclass(frozen=True)
class SourceConfig:
    name: str
    kind: str
    url: str
    interval: float
    fetch_articles: bool = True
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
    kind: str
    options: Mapping[str, Any]
    mode: str = "immediate"          # immediate | digest
    schedule: str | None = None      # cron expression, digest mode
    timezone: str = "UTC"
    quiet_hours: tuple[time, time] | None = None   # (start, end) wall-clock times in timezone


DEFAULT_LISTEN = "127.0.0.1:8080"


@dataclass(frozen=True)
class WebSettings:
    listen: str = DEFAULT_LISTEN     # for `serve` and `run --http`
    token: str | None = None         # required when listen is not a loopback address
    timezone: str = "UTC"            # dates on the web page and in feeds


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

    def source(self, name: str) -> SourceConfig:
        return next(s for s in self.sources if s.name == name)

    def notifier(self, name: str) -> NotifierConfig:
        return next(n for n in self.notifiers if n.name == name)


def parse_duration(value: Any) -> float:
    """'30s', '10m', '1h', '2d', or a number of seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as \"30s\", \"10m\" or \"1h\"")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str) and (m := _DURATION.match(value)):
        seconds = float(m.group(1)) * _DURATION_UNITS[(m.group(2) or "s").lower()]
    else:
        raise ValueError(f"{value!r} is not a duration (use e.g. \"30s\", \"10m\", \"1h\")")
    if seconds <= 0:
        raise ValueError(f"{value!r}: a duration must be positive")
    return seconds


def parse_size(value: Any) -> int:
    """'10MB', '512KiB', or a number of bytes."""
    if isinstance(value, bool):
        raise ValueError("expected a size such as \"10MB\"")
    if isinstance(value, int):
        size = value
    elif isinstance(value, str) and (m := _SIZE.match(value)):
        size = int(float(m.group(1)) * _SIZE_UNITS[(m.group(2) or "b").lower()])
    else:
        raise ValueError(f"{value!r} is not a size (use e.g. \"10MB\", \"512KB\")")
    if size <= 0:
        raise ValueError(f"{value!r}: a size must be positive")
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
    import ipaddress

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


def line_of(text: str | None, table: str, key: str) -> int | None:
    """The line where ``key`` is set inside ``[table]`` of a TOML text (for messages)."""
    if not text:
        return None
    current = None
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith("["):
            current = stripped.strip("[]").strip()
        elif current == table and re.match(rf"{re.escape(key)}\s*=", stripped):
            return number
    return None


def check_http_url(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("expected a URL string")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{value!r} is not an http(s) URL")
    return value


class _Reader:
    """Reads one TOML table, reporting errors as 'file: where: key: problem'."""

    def __init__(self, path: str, where: str, table: Any, env: Mapping[str, str],
                 secrets: set[str]):
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: {where}: expected a table")
        self.path, self.where, self.table = path, where, dict(table)
        self.env, self.secrets = env, secrets
        self.used: set[str] = set()

    def error(self, key: str | None, problem: str) -> ConfigError:
        where = self.where + (f": {key}" if key else "")
        return ConfigError(f"{self.path}: {where}: {problem}")

    def _expand(self, key: str, value: Any) -> Any:
        if isinstance(value, str):
            def sub(m: re.Match) -> str:
                name = m.group(1)
                if name not in self.env:
                    raise self.error(key, f"environment variable {name} is not set")
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
                raise self.error(key, "is required")
            return default
        return self._expand(key, self.table[key])

    def raw(self, key: str, default: Any = None) -> Any:
        """A value as written (sub-tables expand their own values, naming their own keys)."""
        self.used.add(key)
        return self.table.get(key, default)

    def typed(self, key: str, kind: type | tuple, default: Any = None, *,
              required: bool = False, what: str = "") -> Any:
        value = self.get(key, default, required=required)
        if value is default and key not in self.table:
            return value
        if isinstance(value, bool) and kind is not bool and bool not in (
                kind if isinstance(kind, tuple) else (kind,)):
            raise self.error(key, f"expected {what or _type_name(kind)}, got {value!r}")
        if not isinstance(value, kind):
            raise self.error(key, f"expected {what or _type_name(kind)}, got {value!r}")
        return value

    def convert(self, key: str, fn, default: Any = None, *, required: bool = False) -> Any:
        value = self.get(key, None, required=required)
        if value is None:
            return default
        try:
            return fn(value)
        except ValueError as exc:
            raise self.error(key, str(exc)) from None

    def rest(self) -> dict[str, Any]:
        """The keys not read by this reader, expanded (for notifier-specific options)."""
        return {k: self._expand(k, v) for k, v in self.table.items() if k not in self.used}

    def finish(self) -> None:
        unknown = sorted(set(self.table) - self.used)
        if unknown:
            raise self.error(unknown[0], "unknown key")


def _type_name(kind: type | tuple) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    names = {str: "a string", int: "an integer", float: "a number", bool: "true or false",
             list: "a list", dict: "a table"}
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def _name(r: _Reader) -> str:
    name = r.typed("name", str, required=True)
    if not _NAME.match(name):
        raise r.error("name", f"{name!r} is not a valid name (letters, digits, '-', '_', '.')")
    return name


def _str_list(r: _Reader, key: str) -> tuple[str, ...]:
    value = r.get(key, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise r.error(key, "expected a list of names")
    return tuple(value)


def load_config(path: str | os.PathLike = DEFAULT_PATH,
                env: Mapping[str, str] | None = None) -> Config:
    """Read, validate and return the configuration; raise ConfigError otherwise."""
    path = str(path)
    env = os.environ if env is None else env
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such configuration file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    return parse_config(data, path=path, env=env, text=raw.decode("utf-8"))


def parse_config(data: dict, *, path: str, env: Mapping[str, str],
                 text: str | None = None) -> Config:
    secrets: set[str] = set()
    top = _Reader(path, "top level", data, env, secrets)
    monitor = _parse_monitor(_Reader(path, "[monitor]", top.raw("monitor", {}), env, secrets))
    storage_r = _Reader(path, "[storage]", top.raw("storage", {}), env, secrets)
    storage_url = storage_r.typed("url", str, "sqlite:///data/monitor.db")
    if not storage_url.startswith(("sqlite://", "postgresql://", "postgres://")):
        raise storage_r.error("url", f"{storage_url!r}: expected sqlite:///PATH or postgresql://...")
    storage_r.finish()
    web = _parse_web(_Reader(path, "[web]", top.raw("web", {}), env, secrets), text)

    sources = tuple(_parse_source(_Reader(path, f"sources[{i}]", t, env, secrets), monitor)
                    for i, t in enumerate(_array(top, "sources")))
    notifiers = tuple(_parse_notifier(_Reader(path, f"notifiers[{i}]", t, env, secrets))
                      for i, t in enumerate(_array(top, "notifiers")))
    rules = tuple(_parse_rule(_Reader(path, f"rules[{i}]", t, env, secrets))
                  for i, t in enumerate(_array(top, "rules")))
    top.finish()

    _unique(path, "sources", [s.name for s in sources])
    _unique(path, "notifiers", [n.name for n in notifiers])
    _unique(path, "rules", [r.name for r in rules])
    source_names = {s.name for s in sources}
    notifier_names = {n.name for n in notifiers} | {"console"}
    for name in monitor.health_notify:
        if name not in notifier_names:
            raise ConfigError(f"{path}: [monitor]: health_notify: no notifier named {name!r}")
    for i, rule in enumerate(rules):
        for name in rule.notify:
            if name not in notifier_names:
                raise ConfigError(f"{path}: rules[{i}] {rule.name!r}: notify: "
                                  f"no notifier named {name!r}")
        for name in rule.sources:
            if name not in source_names:
                raise ConfigError(f"{path}: rules[{i}] {rule.name!r}: sources: "
                                  f"no source named {name!r}")
    return Config(path=path, monitor=monitor, storage_url=storage_url, sources=sources,
                  rules=rules, notifiers=notifiers, secrets=frozenset(secrets), web=web)


def _array(top: _Reader, key: str) -> list:
    value = top.raw(key, [])
    if not isinstance(value, list):
        raise top.error(key, f"expected an array of tables ([[{key}]])")
    return value


def _unique(path: str, section: str, names: list[str]) -> None:
    seen: set[str] = set()
    for i, name in enumerate(names):
        if name in seen:
            raise ConfigError(f"{path}: {section}[{i}]: name: {name!r} is used twice")
        seen.add(name)


def _parse_monitor(r: _Reader) -> MonitorSettings:
    d = MonitorSettings()
    settings = MonitorSettings(
        user_agent=r.typed("user_agent", str, d.user_agent),
        default_interval=r.convert("default_interval", parse_duration, d.default_interval),
        timeout=r.convert("timeout", parse_duration, d.timeout),
        max_body=r.convert("max_body", parse_size, d.max_body),
        concurrency=r.typed("concurrency", int, d.concurrency),
        per_host=r.typed("per_host", int, d.per_host),
        per_host_delay=r.convert("per_host_delay", _duration_or_zero, d.per_host_delay),
        allow_private_networks=r.typed("allow_private_networks", bool, d.allow_private_networks),
        max_age=r.convert("max_age", parse_duration, d.max_age),
        respect_robots=r.typed("respect_robots", bool, d.respect_robots),
        workers=r.typed("workers", int, d.workers),
        min_interval=r.convert("min_interval", parse_duration, d.min_interval),
        max_interval=r.convert("max_interval", parse_duration, d.max_interval),
        adaptive=r.typed("adaptive", bool, d.adaptive),
        broken_after=r.typed("broken_after", int, d.broken_after),
        health_notify=_str_list(r, "health_notify"),
    )
    if settings.min_interval > settings.max_interval:
        raise r.error("min_interval", "is longer than max_interval")
    if settings.broken_after < 1:
        raise r.error("broken_after", "must be at least 1")
    if settings.workers < 0:
        raise r.error("workers", "must be 0 (one per core) or more")
    for key in ("concurrency", "per_host"):
        if getattr(settings, key) < 1:
            raise r.error(key, "must be at least 1")
    if not settings.user_agent.strip() or any(c in settings.user_agent for c in "\r\n"):
        raise r.error("user_agent", "must be a non-empty single line")
    r.finish()
    return settings


def _parse_web(r: _Reader, text: str | None) -> WebSettings:
    from zoneinfo import ZoneInfo

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
        line = line_of(text, "web", "listen")
        raise r.error("listen" + (f" (line {line})" if line else ""), str(exc)) from None
    try:
        ZoneInfo(timezone)
    except Exception:
        raise r.error("timezone", f"{timezone!r} is not a known time zone") from None
    return WebSettings(listen=listen, token=token, timezone=timezone)


def _duration_or_zero(value: Any) -> float:
    if value == 0 or value == "0":
        return 0.0
    return parse_duration(value)


def _parse_source(r: _Reader, monitor: MonitorSettings) -> SourceConfig:
    name = _name(r)
    r.where = f"{r.where} {name!r}"
    kind = r.typed("kind", str, "feed")
    if kind not in SOURCE_KINDS:
        raise r.error("kind", f"{kind!r}: expected one of {', '.join(SOURCE_KINDS)}")
    url = r.convert("url", check_http_url, required=True)
    link_pattern = r.typed("link_pattern", str, None)
    if link_pattern is not None:
        try:
            re.compile(link_pattern)
        except re.error as exc:
            raise r.error("link_pattern", f"invalid regular expression: {exc}") from None
    source = SourceConfig(
        name=name, kind=kind, url=url,
        interval=r.convert("interval", parse_duration, monitor.default_interval),
        fetch_articles=r.typed("fetch_articles", bool, True),
        link_pattern=link_pattern,
    )
    r.finish()
    return source


def _parse_rule(r: _Reader) -> RuleConfig:
    from monitor.query import compile_query

    name = _name(r)
    r.where = f"{r.where} {name!r}"
    query = r.typed("query", str, required=True)
    try:
        compile_query(query, rule=name)
    except QueryError as exc:
        raise r.error("query", f"{exc.reason} at position {exc.position}") from None
    rule = RuleConfig(name=name, query=query, notify=_str_list(r, "notify"),
                      sources=_str_list(r, "sources"))
    r.finish()
    return rule


def _parse_notifier(r: _Reader) -> NotifierConfig:
    from monitor.notifiers import notifier_class

    name = _name(r)
    r.where = f"{r.where} {name!r}"
    kind = r.typed("kind", str, required=True)
    try:
        cls = notifier_class(kind)
    except KeyError:
        raise r.error("kind", f"{kind!r} is not a notifier kind") from None
    mode = r.typed("mode", str, "immediate")
    if mode not in ("immediate", "digest"):
        raise r.error("mode", f"{mode!r}: expected \"immediate\" or \"digest\"")
    schedule = r.typed("schedule", str, None)
    timezone = r.typed("timezone", str, "UTC")
    try:
        from zoneinfo import ZoneInfo
        ZoneInfo(timezone)
    except Exception:
        raise r.error("timezone", f"{timezone!r} is not a known time zone") from None
    if mode == "digest":
        if not schedule:
            raise r.error("schedule", "is required with mode = \"digest\" (a cron expression)")
        try:
            from apscheduler.triggers.cron import CronTrigger
            CronTrigger.from_crontab(schedule, timezone=timezone)
        except ValueError as exc:
            raise r.error("schedule", f"{schedule!r} is not a cron expression: {exc}") from None
    elif schedule:
        raise r.error("schedule", "only applies with mode = \"digest\"")
    quiet_hours = r.convert("quiet_hours", parse_quiet_hours)
    options = r.rest()
    try:
        cls.from_config(name, dict(options), http=None)
    except ConfigError as exc:
        raise ConfigError(f"{r.path}: {r.where}: {_strip_notifier_prefix(str(exc))}") from None
    return NotifierConfig(name=name, kind=kind, options=options, mode=mode,
                          schedule=schedule, timezone=timezone, quiet_hours=quiet_hours)


def _strip_notifier_prefix(message: str) -> str:
    # Notifiers say "notifier 'x': key 'y': ..."; the reader already names the notifier.
    return re.sub(r"^notifier '[^']*':\s*", "", message)
