"""Where the client finds the gateway and the identity provider (``SEALFLOW_…``, DESIGN §9)."""

from __future__ import annotations

from pathlib import Path

from platformdirs import user_config_dir
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["DEFAULT_SCOPE", "ClientSettings"]

# What `sealflow login` asks for; the provider grants the subset the user's role allows.
DEFAULT_SCOPE = "openid offline_access jobs:read jobs:write jobs:admin audit:read"


def _default_config_dir() -> Path:
    return Path(user_config_dir("sealflow"))


class ClientSettings(BaseSettings):
    """The command-line client's settings, read from the environment."""

    model_config = SettingsConfigDict(env_prefix="SEALFLOW_", extra="ignore")

    gateway_url: str = "http://localhost:8080"
    issuer: str = "http://localhost:8081"
    client_id: str = Field(default="sealflow-cli", min_length=1, max_length=200)
    client_secret: SecretStr | None = None
    client_scope: str = Field(default=DEFAULT_SCOPE, max_length=1024)
    config_dir: Path = Field(default_factory=_default_config_dir)
    http_timeout: float = Field(default=30.0, gt=0, le=600)
    connect_timeout: float = Field(default=10.0, gt=0, le=120)
    # Refresh the access token when it has fewer seconds than this left.
    refresh_margin: float = Field(default=60.0, ge=0, le=600)
    client_log_level: str = Field(default="warning", pattern=r"(?i)^(debug|info|warning|error)$")

    @field_validator("gateway_url", "issuer")
    @classmethod
    def _http_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @field_validator("client_secret")
    @classmethod
    def _blank_is_none(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value():
            return None
        return value

    @property
    def token_file(self) -> Path:
        """The token cache, ``tokens.json`` in the user's config directory."""
        return self.config_dir / "tokens.json"
