"""Settings of the audit service and its CLI, read from ``SEALFLOW_*`` (DESIGN §9)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["AuditSettings"]


class AuditSettings(BaseSettings):
    """Where the log lives, where the keys are, and how often checkpoints are signed."""

    model_config = SettingsConfigDict(env_prefix="SEALFLOW_", extra="ignore")

    data_dir: Path = Path("./var")
    keys_dir: Path = Path("./var/keys")
    checkpoint_every: int = Field(default=1000, ge=1, le=10_000_000)
    checkpoint_interval: float = Field(default=60.0, gt=0, le=86_400)
    segment_max_records: int = Field(default=100_000, ge=1, le=100_000_000)
    dedup_window: int = Field(default=1_000_000, ge=0, le=100_000_000)

    @property
    def audit_dir(self) -> Path:
        """The directory holding the segments and ``checkpoints.jsonl``."""
        return self.data_dir / "audit"
