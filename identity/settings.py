"""Identity provider settings read from the environment (``SEALFLOW_…``, DESIGN §9)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["IdentitySettings"]


class IdentitySettings(BaseSettings):
    """Where the provider lives and keeps its state, and how long what it issues lasts."""

    model_config = SettingsConfigDict(env_prefix="SEALFLOW_", extra="ignore")

    issuer: str = "http://localhost:8081"
    data_dir: Path = Path("./var")
    keys_dir: Path = Path("./var/keys")
    api_audience: str = "sealflow-gateway"
    access_token_lifetime: int = Field(default=900, ge=1, le=900)
    id_token_lifetime: int = Field(default=900, ge=1, le=3_600)
    code_lifetime: int = Field(default=60, ge=1, le=60)
    refresh_token_lifetime: int = Field(default=14 * 86_400, ge=60, le=90 * 86_400)

    @property
    def issuer_url(self) -> str:
        """The issuer without a trailing slash, as it appears in ``iss``."""
        return self.issuer.rstrip("/")

    @property
    def database_path(self) -> Path:
        """The SQLite file holding users, clients, codes and refresh tokens."""
        return self.data_dir / "identity" / "identity.sqlite3"
