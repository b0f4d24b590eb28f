"""Notifiers, one module each, chosen by kind from a table."""

from __future__ import annotations

import importlib

from monitor.delivery.notifiers.base import Notifier

# kind -> "module:Class"; imported on first use so that one channel's optional
# dependencies never stop another from loading.
KINDS: dict[str, str] = {
    "console": "monitor.delivery.notifiers.console:ConsoleNotifier",
    "jsonl": "monitor.delivery.notifiers.jsonl:JsonlNotifier",
    "email": "monitor.delivery.notifiers.email:EmailNotifier",
    "slack": "monitor.delivery.notifiers.slack:SlackNotifier",
    "webhook": "monitor.delivery.notifiers.webhook:WebhookNotifier",
    "apprise": "monitor.delivery.notifiers.apprise:AppriseNotifier",
}


def notifier_class(kind: str) -> type[Notifier]:
    """The class for a notifier kind; KeyError for an unknown kind."""
    module, _, cls = KINDS[kind].partition(":")
    return getattr(importlib.import_module(module), cls)


__all__ = ["KINDS", "Notifier", "notifier_class"]
