"""The one small interface every notifier implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

from monitor.models import AlertRecord, NotifierKind


class Notifier(ABC):
    """Delivers alerts to one channel.

    ``send`` returns a receipt: a small JSON-serialisable dict the outbox stores with
    the delivery (an email's Message-ID, a Slack message's ``ts`` and channel). When
    an earlier alert of the same story was delivered on this channel, its receipt is
    passed back as ``thread`` so that the channel can thread the follow-up.
    Failures raise ``monitor.errors.DeliveryError``; secrets never go into its message.
    """

    kind: ClassVar[NotifierKind]
    # Whether the channel threads follow-ups (email, Slack): only then is the story's
    # first receipt looked up before each delivery.
    threads: ClassVar[bool] = False
    # The channel's time zone (its `timezone` key): dates in messages are shown in it.
    timezone: str = "UTC"

    def __init__(self, name: str):
        self.name = name

    @classmethod
    @abstractmethod
    def from_config(cls, name: str, options: dict[str, Any], *, http: Any = None) -> Notifier:
        """Build from the notifier's TOML table (``name`` and ``kind`` removed).

        Raises ConfigError naming the notifier, the key and what is wrong.
        ``http`` is the shared monitor.sources.fetch.Fetcher for notifiers that speak HTTP.
        """

    @abstractmethod
    async def send(self, alert: AlertRecord, *, thread: dict | None = None) -> dict:
        """Deliver one alert; return its receipt."""

    async def send_digest(self, alerts: list[AlertRecord]) -> dict:
        """Deliver several alerts as one message, grouped by story."""
        receipt: dict = {}
        for alert in alerts:
            receipt = await self.send(alert)
        return receipt

    async def aclose(self) -> None:  # noqa: B027 - an optional hook, not a duty
        """Release what the notifier holds; most hold nothing."""
