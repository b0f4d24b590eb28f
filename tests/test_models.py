"""The names of kinds and states in monitor.models agree with the tables that
check them at run time: a kind the type allows is one the program accepts."""

from __future__ import annotations

from typing import get_args

import pytest

from monitor import config
from monitor.delivery.notifiers import KINDS, notifier_class
from monitor.models import NotifierKind, NotifyMode, SourceKind


def test_source_kinds_are_the_configurations():
    assert config.SOURCE_KINDS == get_args(SourceKind)


def test_notifier_kinds_are_the_notifier_table():
    assert sorted(KINDS) == sorted(get_args(NotifierKind))


@pytest.mark.parametrize("kind", get_args(NotifierKind))
def test_each_notifier_class_carries_its_kind(kind):
    assert notifier_class(kind).kind == kind


@pytest.mark.parametrize("kind", get_args(SourceKind))
def test_each_source_kind_is_accepted(tmp_path, kind):
    path = tmp_path / "monitor.toml"
    path.write_text(f"""
[[sources]]
name = "wire"
kind = "{kind}"
url = "https://example.org/news"
""", encoding="utf-8")
    assert config.load_config(path, env={}).sources[0].kind == kind


@pytest.mark.parametrize("mode", get_args(NotifyMode))
def test_each_notify_mode_is_accepted(tmp_path, mode):
    schedule = 'schedule = "0 8 * * *"' if mode == "digest" else ""
    path = tmp_path / "monitor.toml"
    path.write_text(f"""
[[notifiers]]
name = "screen"
kind = "console"
mode = "{mode}"
{schedule}
""", encoding="utf-8")
    assert config.load_config(path, env={}).notifiers[0].mode == mode
