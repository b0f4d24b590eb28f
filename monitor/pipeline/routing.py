"""Which channels get an alert: computed once from the configuration when the
pipeline is built, so that recording an alert never searches the configuration."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from monitor.config import Config

#: (notifier, is_digest): one channel of an alert, as Transaction.insert_alert takes it.
Channel = tuple[str, bool]

#: Where the alerts of a rule that names no channel go.
DEFAULT_CHANNELS = ("console",)


@dataclass(frozen=True)
class Routing:
    by_rule: dict[str, list[Channel]]
    health: list[Channel]              # "source broken" and "recovered" notices

    @classmethod
    def from_config(cls, config: Config) -> Routing:
        digest = {n.name: n.mode == "digest" for n in config.notifiers}

        def channels(names: Iterable[str]) -> list[Channel]:
            return [(name, digest.get(name, False)) for name in names]

        by_rule: dict[str, list[Channel]] = {}
        for rule in config.rules:
            # Rule names are unique in a valid configuration; the first one counts.
            by_rule.setdefault(rule.name, channels(rule.notify or DEFAULT_CHANNELS))
        return cls(by_rule=by_rule, health=channels(config.monitor.health_notify))

    def for_rule(self, rule: str) -> list[Channel]:
        """The channels of a rule's alerts (a copy: the store may keep the list)."""
        return list(self.by_rule[rule])
