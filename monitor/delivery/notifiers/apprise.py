"""Apprise notifier: any service Apprise knows (Telegram, Teams, Discord, ntfy,
Matrix, Pushover, ...), one URL each, ``urls = [...]``.

Decisions:

- Text goes to Apprise as plain text (``body_format = text``); Apprise then escapes
  the body for each service's own format (CommonMark escapes for Markdown services,
  HTML escapes for HTML ones), so a headline cannot add links, bold or markup.
  Apprise does not escape titles (tested: ``<script>`` reaches an HTML service as
  is), so nothing goes in Apprise's title: the headline is the body's first line. Mass
  mentions (``@everyone``, ``@here``, ``@channel``, ``@room``, ``@all``) get a
  word joiner after the ``@``: they read the same and notify no one.
- One delivery per channel: when one of its URLs fails, the retry goes to all of
  them (at least once, as every channel).
- Apprise opens its own connections (requests, smtplib, ...), not through the
  monitor's fetcher. What is checked, before every send: the host written in each
  URL (``ntfy://ntfy.example.org/...``, ``json://10.0.0.5/...``), when it is a host
  name or an address, is resolved and refused when any of its addresses is
  loopback, private, link-local or otherwise non-global (unless
  ``allow_private_networks``), with the same rules as the fetcher. What that
  check does not cover is in the README ("Apprise and the address checks").
- Errors never show a URL (they carry tokens): only the services' names and
  Apprise's messages with anything URL-shaped removed.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any
from urllib.parse import urlsplit

import apprise

from monitor.delivery.notifiers import render
from monitor.delivery.notifiers.base import Notifier
from monitor.delivery.notifiers.render import Options
from monitor.errors import BlockedAddress, DeliveryError, FetchError
from monitor.models import AlertRecord
from monitor.redaction import redact_error
from monitor.sources.netguard import GuardedNetworkBackend, is_public_address, parse_ip
from monitor.text.safe import UNSAFE_CHARS

_MASS_MENTION = re.compile(r"@(everyone|here|channel|room|all)\b", re.IGNORECASE)


def plain(text: Any, limit: int = 300) -> str:
    """Web text for an Apprise message: one line, no mass mention."""
    return _MASS_MENTION.sub("@\u2060\\1", render.one_line(text, limit))


def message(alert: AlertRecord, zone: str = "UTC") -> tuple[str, str]:
    """(title, body) of one alert, as plain text."""
    title = f"[{plain(alert.rule, 80)}] {plain(render.headline(alert), 200)}"
    facts = " · ".join(p for p in (plain(alert.source, 80),
                                   render.published_text(alert.published, zone)) if p)
    lines = [facts]
    if alert.matched:
        lines.append(f"matched: {plain(render.matched_text(alert), 300)}")
    if alert.snippet:
        lines.append(plain(alert.snippet, 600))
    link = render.safe_link(alert.url)
    if link:
        lines.append(link)
    if alert.followup:
        lines.insert(0, "(follow-up)")
    return title, "\n".join(lines)


class AppriseNotifier(Notifier):
    """Receipt: ``{"services": <how many were notified>}``."""

    kind = "apprise"

    def __init__(self, name: str, *, urls: list[str], timeout: float = 30.0,
                 allow_private_networks: bool = False):
        super().__init__(name)
        self._urls = list(urls)
        self.timeout = timeout
        self._guard = GuardedNetworkBackend(
            permit=None if allow_private_networks else is_public_address)

    def __repr__(self) -> str:
        return f"<AppriseNotifier {self.name!r}: {len(self._urls)} URLs>"

    @classmethod
    def from_config(cls, name: str, options: dict[str, Any], *,
                    http: Any = None) -> AppriseNotifier:
        opts = Options(name, options, {"urls", "timeout"})
        urls = opts.values.get("urls")
        if isinstance(urls, str):
            urls = [urls]
        if not isinstance(urls, list) or not urls or not all(isinstance(u, str) for u in urls):
            raise opts.error("urls", "must be a list of Apprise URLs, e.g. "
                                     "[\"ntfy://ntfy.example.org/desk\"]")
        for i, url in enumerate(urls):
            # The URL itself is never echoed: it carries the service's token.
            scheme = url.split("://", 1)[0][:20] if "://" in url else ""
            if UNSAFE_CHARS.search(url):
                raise opts.error("urls", f"URL {i + 1} contains control characters")
            plugin = apprise.Apprise.instantiate(url)
            if plugin is None:
                shown = f" (scheme {scheme!r})" if scheme.isalnum() else ""
                raise opts.error("urls", f"URL {i + 1}{shown} is not a URL Apprise knows, or "
                                         "lacks a part the service needs")
            if getattr(plugin, "verify_certificate", True) is False:
                raise opts.error("urls", f"URL {i + 1}: verify=no is refused: TLS is always "
                                         "verified")
        policy = getattr(http, "policy", None)
        return cls(name, urls=urls, timeout=opts.duration("timeout", 30.0),
                   allow_private_networks=bool(getattr(policy, "allow_private_networks", False)))

    async def send(self, alert: AlertRecord, *, thread: dict | None = None) -> dict:
        title, body = message(alert, self.timezone)
        return await self._notify(f"{title}\n{body}")

    async def send_digest(self, alerts: list[AlertRecord]) -> dict:
        if not alerts:
            return {}
        parts = []
        for story in render.group_by_story(alerts):
            for alert in story:
                title, body = message(alert, self.timezone)
                parts.append(f"{title}\n{body}")
        return await self._notify(f"{len(alerts)} alerts\n\n" + "\n\n".join(parts))

    async def _vet_hosts(self) -> None:
        for i, url in enumerate(self._urls):
            try:
                parts = urlsplit(url)
                host, port = parts.hostname, parts.port
            except ValueError:
                continue
            # A host name (with a dot) or an address is where Apprise connects; other
            # "hosts" are tokens or ids of a service whose address Apprise fixes.
            if not host or (parse_ip(host) is None and "." not in host and host != "localhost"):
                continue
            try:
                await self._guard.vetted_addresses(host, port or 443)
            except BlockedAddress as exc:
                where = "its host" if parse_ip(host) is None else "its address"
                reason = str(exc).rsplit(" resolves to ", 1)[-1].removeprefix("blocked: ")
                raise DeliveryError(f"apprise {self.name!r}: URL {i + 1}: {where} is refused "
                                    f"({reason})", permanent=True) from None
            except FetchError as exc:
                raise DeliveryError(f"apprise {self.name!r}: URL {i + 1}: "
                                    f"{redact_error(exc, self._urls)}") from None

    async def _notify(self, body: str) -> dict:
        await self._vet_hosts()
        client = apprise.Apprise()
        for url in self._urls:
            client.add(url)
        try:
            async with asyncio.timeout(self.timeout):
                result = await client.async_notify(body=body,
                                                   body_format=apprise.NotifyFormat.TEXT,
                                                   timeout=self.timeout)
        except TimeoutError:
            raise DeliveryError(f"apprise {self.name!r}: no answer within {self.timeout:g} s") \
                from None
        if bool(result):
            return {"services": len(self._urls)}
        failed = [getattr(r, "name", "?") for r in result if not bool(r)] or ["?"]
        detail = ""
        try:
            errors = [e for e in result.logs() if (getattr(e, "level", 0) or 0) >= 30]
            if errors:
                detail = ": " + redact_error(getattr(errors[-1], "message", errors[-1]),
                                             self._urls)
        except Exception:  # noqa: BLE001 - the log is a nicety; the failure stands without it
            pass
        names = ", ".join(render.one_line(n, 60) for n in failed)
        raise DeliveryError(f"apprise {self.name!r}: {len(failed)} of {len(self._urls)} "
                            f"service(s) failed ({names}){detail}")
