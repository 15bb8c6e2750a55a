from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from keys import KeySettings


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SEALFLOW_KEYS_DIR", "SEALFLOW_ENVELOPE_LIFETIME", "SEALFLOW_LEEWAY"):
        monkeypatch.delenv(name, raising=False)
    settings = KeySettings()
    assert settings.keys_dir == Path("./var/keys")
    assert (settings.envelope_lifetime, settings.leeway) == (300, 5)
    assert settings.grace_seconds == 305


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SEALFLOW_KEYS_DIR", str(tmp_path))
    monkeypatch.setenv("SEALFLOW_ENVELOPE_LIFETIME", "60")
    monkeypatch.setenv("SEALFLOW_LEEWAY", "2")
    monkeypatch.setenv("SEALFLOW_AMQP_URL", "amqp://elsewhere/")  # another part's setting
    settings = KeySettings()
    assert settings.keys_dir == tmp_path
    assert settings.grace_seconds == 62


def test_rejects_a_non_positive_lifetime(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEALFLOW_ENVELOPE_LIFETIME", "0")
    with pytest.raises(ValidationError):
        KeySettings()
