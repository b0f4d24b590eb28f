"""The monitor's exceptions.

    MonitorError
    ├── ConfigError          the configuration is wrong; exit status 2
    │   └── QueryError       a rule's query does not parse (names rule and position)
    ├── FetchError           a request failed; recorded on its source
    │   ├── BlockedAddress   the target resolves to a non-global address
    │   ├── HTTPStatusError  the server answered 4xx/5xx (carries retry_after)
    │   ├── TooLarge         the body (or its decoded form) passed max_body
    │   ├── FetchTimeout     the total deadline passed
    │   └── TooManyRedirects
    ├── ParseError           a feed, page or sitemap could not be understood
    ├── StorageError         the store failed
    └── DeliveryError        a notifier could not deliver (permanent or not)

Errors from lower libraries are translated at the boundary (``raise X from exc``)
so that callers only deal with this tree.
"""

from __future__ import annotations


class MonitorError(Exception):
    """Base of every error the monitor raises on purpose."""


class ConfigError(MonitorError):
    """The configuration is invalid. The message names the file, key and problem."""


class QueryError(ConfigError):
    """A query does not parse."""

    def __init__(self, message: str, *, position: int, rule: str | None = None):
        self.position = position
        self.rule = rule
        self.reason = message
        where = f"rule {rule!r}: " if rule else ""
        super().__init__(f"{where}{message} at position {position}")


class FetchError(MonitorError):
    """A request could not be completed."""

    def __init__(self, message: str, *, url: str | None = None):
        self.url = url
        super().__init__(message)


class BlockedAddress(FetchError):
    """The target resolves to a loopback, private, link-local or otherwise non-global address."""


class HTTPStatusError(FetchError):
    def __init__(self, message: str, *, url: str | None = None, status: int,
                 retry_after: float | None = None):
        self.status = status
        self.retry_after = retry_after
        super().__init__(message, url=url)


class TooLarge(FetchError):
    """The body, or what it decompresses to, is larger than max_body."""


class FetchTimeout(FetchError):
    """The request did not finish within its total deadline."""


class TooManyRedirects(FetchError):
    pass


class ParseError(MonitorError):
    """A feed, listing page or sitemap could not be understood."""


class StorageError(MonitorError):
    pass


class DeliveryError(MonitorError):
    """A notifier could not deliver an alert.

    ``permanent`` failures (a refused address, a 4xx other than 429) are not retried;
    ``retry_after`` is the delay the remote side asked for, in seconds, if any.
    """

    def __init__(self, message: str, *, permanent: bool = False,
                 retry_after: float | None = None):
        self.permanent = permanent
        self.retry_after = retry_after
        super().__init__(message)
