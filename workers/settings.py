"""Settings of the job worker (``SEALFLOW_WORKER_*``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["WorkerSettings"]


class WorkerSettings(BaseSettings):
    """The worker's own knobs; broker-wide ones live in ``broker.BrokerSettings``."""

    model_config = SettingsConfigDict(env_prefix="SEALFLOW_WORKER_", extra="ignore")

    health_port: int = Field(default=9101, ge=0, le=65535)
