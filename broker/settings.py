"""Settings shared by every daemon that talks to the broker (DESIGN §9): ``SEALFLOW_*``."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["BrokerSettings"]


class BrokerSettings(BaseSettings):
    """Where the broker is, how names are prefixed, and the limits every consumer applies."""

    model_config = SettingsConfigDict(env_prefix="SEALFLOW_", extra="ignore")

    amqp_url: str = "amqp://guest:guest@localhost:5672/"
    namespace: str = Field(default="", pattern=r"^[A-Za-z0-9_.-]{0,64}$")
    data_dir: Path = Path("./var")
    keys_dir: Path = Path("./var/keys")
    database_url: str | None = Field(default=None, pattern=r"^(postgres(ql)?://.*)?$")
    """Unset: the embedded SQLite + files under ``data_dir``; ``postgresql://…``: PostgreSQL."""
    health_host: str = Field(default="127.0.0.1", min_length=1, max_length=255)
    """``SEALFLOW_HEALTH_HOST``: where every daemon's /healthz, /readyz and /metrics listen;
    0.0.0.0 in containers, where the engine's healthcheck and scrapers reach it."""
    policy_file: Path | None = None
    prefetch: int = Field(default=16, ge=1, le=1000)
    max_attempts: int = Field(default=5, ge=1, le=100)
    retry_base_delay: float = Field(default=0.5, gt=0, le=60)
    retry_max_delay: float = Field(default=30.0, gt=0, le=3600)
    envelope_lifetime: int = Field(default=300, ge=5, le=3600)
    leeway: int = Field(default=5, ge=0, le=120)
    max_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    spent_ids_entries: int = Field(default=200_000, ge=1)
    shutdown_grace: float = Field(default=30.0, ge=0)
    connect_timeout: float = Field(default=10.0, gt=0)
