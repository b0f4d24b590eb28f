"""Secrets out of every text the monitor shows, logs or stores.

A secret is a value taken from the environment (``${NAME}`` in the
configuration), a password in a storage URL, or a credential a notifier holds.
One core, :func:`redactor`, replaces each of them, in every form a URL may
carry it, and any password written in a URL (``scheme://user:PASSWORD@host``)
or a connection string (``password=PASSWORD``). The rest of the family builds on it:

- :func:`redactor` for logs, pages, command output and stored errors: it is
  built once from the configuration's secrets and called for each text;
- :func:`redact` for one text and a few secrets known at the call;
- :func:`redact_error` for a lower library's error text that goes into one of
  our own messages: also without anything URL-shaped (a webhook URL is itself
  a secret), on one line.

Every redacted part reads :data:`REDACTED`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import quote, quote_plus

from monitor.text.safe import one_line

__all__ = ["REDACTED", "SHORTEST_SECRET", "redact", "redact_error", "redactor"]

REDACTED = "***"

# A configured secret shorter than this is not redacted from logs and pages:
# replacing "abc" wherever it occurs would garble every line, and such a value
# is no secret worth the name. A secret passed for one text is always redacted.
SHORTEST_SECRET = 4

_PASSWORD_IN_URL = re.compile(r"(://[^:/@\s]*:)[^@\s]*@")
_PASSWORD_IN_DSN = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)
_URLISH = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S+")


def _forms(secret: str) -> set[str]:
    # A secret in a URL travels percent-encoded, and messages quote the URL as
    # sent: each encoding a URL may give it is redacted too.
    return {secret, quote(secret, safe="/"), quote(secret, safe=""),
            quote_plus(secret, safe="/"), quote(secret, safe="/+:@=&?")}


def redactor(secrets: Iterable[str | None], *,
             shortest: int = SHORTEST_SECRET) -> Callable[[str], str]:
    """A function that replaces every secret, and every password written in a URL
    or a connection string, by :data:`REDACTED`."""
    if isinstance(secrets, str):
        raise TypeError("secrets must be a collection of strings, not one string")
    forms: set[str] = set()
    for secret in secrets:
        if secret and len(secret) >= shortest:
            forms.update(_forms(secret))
    # Longest first, so that a secret containing another is redacted whole.
    ordered = sorted(forms, key=len, reverse=True)

    def redact_text(text: str) -> str:
        for secret in ordered:
            text = text.replace(secret, REDACTED)
        text = _PASSWORD_IN_URL.sub(rf"\1{REDACTED}@", text)
        return _PASSWORD_IN_DSN.sub(rf"\1{REDACTED}", text)
    return redact_text


def redact(text: Any, secrets: Iterable[str | None] = ()) -> str:
    """``text`` (made a string) with ``secrets``, and passwords in URLs and
    connection strings, replaced by :data:`REDACTED`."""
    return redactor(secrets, shortest=1)(str(text))


def redact_error(text: Any, secrets: Iterable[str | None] = (), limit: int = 300) -> str:
    """A lower library's error text, fit to put in our own message: redacted,
    anything URL-shaped replaced by ``<url>``, on one line of at most ``limit``."""
    return one_line(_URLISH.sub("<url>", redact(text, secrets)), limit)
