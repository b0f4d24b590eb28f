"""Configuration a user can get wrong, and the defaults a configuration leaves out."""

from __future__ import annotations

import pytest

from monitor.cli import _fetch_policy
from monitor.config import load_config
from monitor.fetch import FetchPolicy


def test_fetch_defaults_are_those_of_a_configuration_that_leaves_them_out(tmp_path):
    path = tmp_path / "monitor.toml"
    path.write_text("", encoding="utf-8")

    from_config = _fetch_policy(load_config(path, env={}))

    assert from_config == FetchPolicy()
    assert from_config.per_host_delay == 1.0            # README: per_host_delay = "1s"
    assert from_config.max_body == 10_000_000           # README: max_body = "10MB" (decimal)
    assert from_config.user_agent.startswith("news-monitor/0.1")
