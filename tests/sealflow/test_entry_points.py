"""Daemon entry points answer any Sealflow failure with one line, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from sealflow.cli import cli


@pytest.mark.parametrize("command", ["worker", "parser", "gateway", "audit"])
def test_missing_keys_is_one_line(
    command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A daemon started before ``sealflow keys init`` exits 1 naming the cause and its reason."""
    monkeypatch.setenv("SEALFLOW_KEYS_DIR", str(tmp_path / "no-keys"))
    monkeypatch.setenv("SEALFLOW_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("SEALFLOW_AMQP_URL", "amqp://guest:guest@127.0.0.1:1/")
    result = CliRunner().invoke(cli, [command])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert result.output.startswith("Error: ")
    assert len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize("command", ["worker", "parser"])
def test_bad_policy_is_one_line(
    command: str, keys_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A policy file that cannot be read is a ``SealflowError`` too: one line, exit 1."""
    monkeypatch.setenv("SEALFLOW_KEYS_DIR", str(keys_dir))
    monkeypatch.setenv("SEALFLOW_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("SEALFLOW_POLICY_FILE", str(tmp_path / "missing-policy.toml"))
    monkeypatch.setenv("SEALFLOW_AMQP_URL", "amqp://guest:guest@127.0.0.1:1/")
    result = CliRunner().invoke(cli, [command])
    assert result.exit_code == 1, result.output
    assert result.output.startswith("Error: ")
    assert "missing-policy.toml" in result.output
