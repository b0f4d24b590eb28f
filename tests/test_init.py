"""`init`: the starter configuration for a user who installed the package with pip."""

from __future__ import annotations

from importlib.resources import files

from tests.conftest import ROOT, run_cli, run_process


def test_init_writes_the_shipped_configuration_which_validates(tmp_path):
    result = run_cli("init", cwd=tmp_path)

    assert result.code == 0, result.err
    written = tmp_path / "config" / "monitor.toml"
    assert written.read_bytes() == (ROOT / "config" / "monitor.toml").read_bytes()
    assert "wrote config/monitor.toml" in result.out
    assert run_cli("validate", cwd=tmp_path).code == 0


def test_init_never_writes_over_an_existing_file(tmp_path):
    mine = tmp_path / "config" / "monitor.toml"
    mine.parent.mkdir()
    mine.write_text("# my own configuration\n", encoding="utf-8")

    result = run_cli("init", cwd=tmp_path)

    assert result.code == 2
    assert "config/monitor.toml exists; it is left as it is" in result.err
    assert mine.read_text(encoding="utf-8") == "# my own configuration\n"


def test_init_honours_config_path(tmp_path):
    result = run_process("--config", "elsewhere/desk.toml", "init", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "elsewhere" / "desk.toml").exists()
    assert "news-monitor --config elsewhere/desk.toml validate" in result.stdout


def test_the_starter_is_installed_with_the_code():
    """pip installs monitor/starter.toml (package data), a link to config/monitor.toml:
    what `init` writes is the shipped configuration, not a copy that drifts from it."""
    starter = files("monitor").joinpath("starter.toml")
    assert starter.read_bytes() == (ROOT / "config" / "monitor.toml").read_bytes()
    assert (ROOT / "monitor" / "starter.toml").is_symlink()
    assert 'monitor = ["starter.toml"]' in (ROOT / "pyproject.toml").read_text()
