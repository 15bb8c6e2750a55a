"""Settings of the audit service and its CLI, read from ``SEALFLOW_*`` (DESIGN §9)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from audit.anchor import FileAnchor, anchor_inside
from audit.errors import AuditLogError

__all__ = ["AuditSettings"]


class AuditSettings(BaseSettings):
    """Where the log and its anchor live, where the keys are, and how often checkpoints are
    signed."""

    model_config = SettingsConfigDict(env_prefix="SEALFLOW_", extra="ignore")

    data_dir: Path = Path("./var")
    keys_dir: Path = Path("./var/keys")
    checkpoint_every: int = Field(default=1000, ge=1, le=10_000_000)
    checkpoint_interval: float = Field(default=60.0, gt=0, le=86_400)
    segment_max_records: int = Field(default=100_000, ge=1, le=100_000_000)
    dedup_window: int = Field(default=1_000_000, ge=0, le=100_000_000)
    checkpoint_slack: float = Field(default=30.0, ge=0, le=86_400)
    """How much later than ``checkpoint_interval`` a checkpoint may come before ``verify``
    calls the unsigned tail stale."""
    audit_anchor_file: Path | None = None
    """``SEALFLOW_AUDIT_ANCHOR_FILE``: where the newest checkpoint is anchored. Default
    ``<data_dir>/audit-anchor.json``, beside the log directory; point it at another filesystem
    or owner to keep it out of reach of whoever can edit the log."""

    @property
    def anchor_path(self) -> Path:
        """The anchor file (never inside the log directory: :meth:`anchor` refuses that)."""
        return (
            self.audit_anchor_file
            if self.audit_anchor_file is not None
            else self.data_dir / "audit-anchor.json"
        )

    def anchor(self) -> FileAnchor:
        """The log's anchor; raises ``invalid_setting`` when it lies in the log directory."""
        path = self.anchor_path
        if anchor_inside(path, self.audit_dir):
            raise AuditLogError(
                f"the audit anchor {path} must be outside the log directory {self.audit_dir}",
                reason="invalid_setting",
            )
        return FileAnchor(path)

    @property
    def max_unsigned_age(self) -> float:
        """How old the first unsigned record may be before ``verify`` fails."""
        return self.checkpoint_interval + self.checkpoint_slack

    @property
    def audit_dir(self) -> Path:
        """The directory holding the segments and ``checkpoints.jsonl``."""
        return self.data_dir / "audit"
