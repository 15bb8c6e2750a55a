"""Key settings read from the environment (``SEALFLOW_KEYS_DIR``, …; DESIGN §9)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["KeySettings"]


class KeySettings(BaseSettings):
    """Where the key rings live, and the envelope timing that sets the rotation grace."""

    model_config = SettingsConfigDict(env_prefix="SEALFLOW_", extra="ignore")

    keys_dir: Path = Path("./var/keys")
    envelope_lifetime: int = Field(default=300, ge=1, le=86_400)
    leeway: int = Field(default=5, ge=0, le=3_600)

    @property
    def grace_seconds(self) -> int:
        """How long a retired key stays trusted: every envelope it signed has expired by then."""
        return self.envelope_lifetime + self.leeway
