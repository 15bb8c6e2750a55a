"""Settings of the job worker (``SEALFLOW_WORKER_*``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["WorkerSettings"]


class WorkerSettings(BaseSettings):
    """The worker's own knobs; broker-wide ones live in ``broker.BrokerSettings``."""

    model_config = SettingsConfigDict(env_prefix="SEALFLOW_WORKER_", extra="ignore")

    health_port: int = Field(default=9101, ge=0, le=65535)
    sweep_interval: float = Field(default=30.0, gt=0, le=3600)
    """Seconds between two looks for stuck jobs."""
    stuck_after: float = Field(default=360.0, gt=0, le=86_400)
    """Seconds a ``processing`` job may wait on its parse request before the sweeper acts.

    Must exceed the envelope lifetime (300 s by default: a request may wait that long in the
    queue) plus the parser's timeout (20 s); the worker refuses to start otherwise.
    """
    max_rerequests: int = Field(default=2, ge=0, le=10)
    """Parse requests the sweeper sends after the first before it fails the job."""
