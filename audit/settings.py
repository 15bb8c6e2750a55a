"""Settings of the audit service and its CLI, read from ``SEALFLOW_*`` (DESIGN §9)."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Final

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from audit.anchor import CheckpointAnchor, FileAnchor, PgAnchor, anchor_inside
from audit.errors import AuditLogError
from store.backends import backend_of
from store.errors import StoreError
from store.postgres.audit_anchors import upgrade_audit_anchor_schema

__all__ = ["AuditSettings"]

_MAX_LOG_ID_BYTES: Final = 512
"""Longest anchor row key (``audit_anchors.log_id`` checks the same)."""


class AuditSettings(BaseSettings):
    """Where the log and its anchor live, where the keys are, and how often checkpoints are
    signed.

    The anchor is a row of PostgreSQL when ``SEALFLOW_DATABASE_URL`` is a postgresql:// URL
    (keyed by namespace and log name), else the anchor file.
    """

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

    database_url: str | None = Field(default=None, pattern=r"^(postgres(ql)?://.*)?$")
    """``SEALFLOW_DATABASE_URL``: a postgresql:// URL anchors the log in that database."""
    namespace: str = Field(default="", pattern=r"^[A-Za-z0-9_.-]{0,64}$")
    audit_log_name: str | None = Field(default=None, pattern=r"^[^\x00-\x1f\x7f]{1,256}$")
    """``SEALFLOW_AUDIT_LOG_NAME``: the name this log is anchored under in PostgreSQL. Default
    ``<host name>:<absolute log directory>``; every log (a standby keeps its own) needs its own,
    the same for as long as the log lives (set it where the host name changes, in containers)."""

    @property
    def log_id(self) -> str:
        """The key of this log's anchor row: ``<namespace>/<log name>``."""
        name = self.audit_log_name
        if name is None:
            name = f"{socket.gethostname()}:{self.audit_dir.resolve()}"
        return f"{self.namespace}/{name}"

    @property
    def anchor_path(self) -> Path:
        """The anchor file (never inside the log directory: :meth:`anchor` refuses that)."""
        return (
            self.audit_anchor_file
            if self.audit_anchor_file is not None
            else self.data_dir / "audit-anchor.json"
        )

    def anchor(self) -> CheckpointAnchor:
        """The log's anchor: its PostgreSQL row, or the anchor file (``invalid_setting`` when
        that lies in the log directory)."""
        if backend_of(self.database_url) == "postgresql":
            assert self.database_url is not None
            log_id = self.log_id
            if len(log_id.encode()) > _MAX_LOG_ID_BYTES:
                raise AuditLogError(
                    f"the audit log name {log_id!r} is longer than {_MAX_LOG_ID_BYTES} bytes: "
                    "set a shorter "
                    "SEALFLOW_AUDIT_LOG_NAME",
                    reason="invalid_setting",
                )
            return PgAnchor(self.database_url, log_id)
        path = self.anchor_path
        if anchor_inside(path, self.audit_dir):
            raise AuditLogError(
                f"the audit anchor {path} must be outside the log directory {self.audit_dir}",
                reason="invalid_setting",
            )
        return FileAnchor(path)

    async def open_anchor(self) -> CheckpointAnchor:
        """The log's anchor, its PostgreSQL table created or migrated first; raises
        ``anchor_unavailable`` when the database cannot be used."""
        try:
            await upgrade_audit_anchor_schema(self.database_url)
        except StoreError as exc:
            raise AuditLogError(
                f"cannot prepare the audit anchor table: {exc.detail}",
                reason="anchor_unavailable",
            ) from exc
        return self.anchor()

    @property
    def max_unsigned_age(self) -> float:
        """How old the first unsigned record may be before ``verify`` fails."""
        return self.checkpoint_interval + self.checkpoint_slack

    @property
    def audit_dir(self) -> Path:
        """The directory holding the segments and ``checkpoints.jsonl``."""
        return self.data_dir / "audit"
