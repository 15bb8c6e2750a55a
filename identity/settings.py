"""Identity provider settings read from the environment (``SEALFLOW_…``, DESIGN §9)."""

from __future__ import annotations

from pathlib import Path
from typing import Self
from urllib.parse import urlsplit

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["CLI_CLIENT_ID", "IdentitySettings"]

CLI_CLIENT_ID = "sealflow-cli"
"""The public client ``sealflow login`` uses (device flow + refresh tokens)."""


class IdentitySettings(BaseSettings):
    """Where the provider lives and keeps its state, and how long what it issues lasts."""

    model_config = SettingsConfigDict(env_prefix="SEALFLOW_", extra="ignore")

    issuer: str = "http://localhost:8081"
    data_dir: Path = Path("./var")
    keys_dir: Path = Path("./var/keys")
    api_audience: str = "sealflow-gateway"
    database_url: str | None = Field(default=None, pattern=r"^(postgres(ql)?://.*)?$")
    """``SEALFLOW_DATABASE_URL``: unset, the SQLite file under ``data_dir`` and rate limits in
    memory; ``postgresql://…``, the identity's tables and rate-limit counters there, shared by
    every identity instance."""
    access_token_lifetime: int = Field(default=900, ge=1, le=900)
    id_token_lifetime: int = Field(default=900, ge=1, le=3_600)
    code_lifetime: int = Field(default=60, ge=1, le=60)
    refresh_token_lifetime: int = Field(default=14 * 86_400, ge=60, le=90 * 86_400)

    identity_host: str | None = None
    """``SEALFLOW_IDENTITY_HOST``: the address to bind; default the issuer URL's host."""
    identity_port: int | None = Field(default=None, ge=0, le=65_535)
    """``SEALFLOW_IDENTITY_PORT``: the port to bind; default the issuer URL's port."""
    identity_health_port: int = Field(default=9104, ge=0, le=65_535)
    """``SEALFLOW_IDENTITY_HEALTH_PORT``: /healthz, /readyz, /metrics on ``SEALFLOW_HEALTH_HOST``;
    0 = off."""

    device_code_lifetime: int = Field(default=600, ge=60, le=1_800)
    device_poll_interval: int = Field(default=5, ge=1, le=60)
    device_max_pending: int = Field(default=10_000, ge=1)
    """Pending device requests at most, all clients together."""
    device_max_pending_per_client: int = Field(default=1_000, ge=1)
    """``SEALFLOW_DEVICE_MAX_PENDING_PER_CLIENT``: pending requests at most for one client."""
    device_max_pending_per_address: int = Field(default=5, ge=1)
    """``SEALFLOW_DEVICE_MAX_PENDING_PER_ADDRESS``: pending requests at most from one address;
    kept below the per-client cap, so that one address cannot fill a client's."""
    device_requests_per_address: int = Field(default=10, ge=1, le=10_000)
    """``SEALFLOW_DEVICE_REQUESTS_PER_ADDRESS``: ``/device_authorization`` calls one address
    may make per ``device_request_window_seconds``."""
    device_request_window_seconds: float = Field(default=600.0, gt=0, le=86_400)
    seed_cli_client: bool = True
    """Register the public ``sealflow-cli`` client at start when it does not exist."""

    login_failures_per_user: int = Field(default=5, ge=1, le=1_000)
    login_failures_per_address: int = Field(default=20, ge=1, le=100_000)
    login_window_seconds: float = Field(default=60.0, gt=0, le=86_400)
    rate_limit_max_keys: int = Field(default=10_000, ge=1, le=10_000_000)
    audit_queue_size: int = Field(default=10_000, ge=1)

    @model_validator(mode="after")
    def _one_address_cannot_fill_a_client(self) -> Self:
        """The per-address pending cap must stay below the per-client one."""
        if self.device_max_pending_per_address >= self.device_max_pending_per_client:
            raise ValueError(
                "device_max_pending_per_address must be below device_max_pending_per_client"
            )
        return self

    @property
    def issuer_url(self) -> str:
        """The issuer without a trailing slash, as it appears in ``iss``."""
        return self.issuer.rstrip("/")

    @property
    def database_path(self) -> Path:
        """The SQLite file holding users, clients, codes and refresh tokens."""
        return self.data_dir / "identity" / "identity.sqlite3"

    @property
    def secure_cookies(self) -> bool:
        """Cookies get ``Secure`` when the issuer is served over HTTPS."""
        return self.issuer_url.startswith("https://")

    def bind(self) -> tuple[str, int]:
        """Host and port to listen on: the overrides, else the issuer URL's."""
        parts = urlsplit(self.issuer_url)
        host = self.identity_host or parts.hostname or "127.0.0.1"
        if self.identity_port is not None:
            return host, self.identity_port
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return host, port
