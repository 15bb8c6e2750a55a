"""The browser side's settings (``SEALFLOW_…``): where the gateway is reached, its OAuth client,
and the limits of its sessions."""

from __future__ import annotations

from typing import Final
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["WEB_CLIENT_ID", "WEB_GRANT_TYPES", "WEB_SCOPE", "WebSettings"]

WEB_CLIENT_ID: Final = "sealflow-web"
"""The gateway's browser client at the identity (``sealflow up`` registers it)."""
WEB_GRANT_TYPES: Final = ("authorization_code", "refresh_token")
WEB_SCOPE: Final = "openid offline_access jobs:read jobs:write jobs:admin audit:read"
"""What sign-in asks for; the identity grants what the user's role allows."""


class WebSettings(BaseSettings):
    """How the gateway serves browsers (a backend-for-frontend: tokens never reach the page)."""

    model_config = SettingsConfigDict(env_prefix="SEALFLOW_", extra="ignore", populate_by_name=True)

    url: str = Field(default="http://localhost:8080", validation_alias="SEALFLOW_GATEWAY_URL")
    """The address browsers use to reach the gateway: the redirect URI is ``{url}/callback``."""
    client_id: str = Field(
        default=WEB_CLIENT_ID,
        min_length=1,
        max_length=128,
        validation_alias="SEALFLOW_WEB_CLIENT_ID",
    )
    client_secret: SecretStr | None = Field(
        default=None, validation_alias="SEALFLOW_WEB_CLIENT_SECRET"
    )
    """Set for a confidential client; without it the client is public (PKCE either way)."""
    scope: str = Field(default=WEB_SCOPE, max_length=1024, validation_alias="SEALFLOW_WEB_SCOPE")
    session_secret: SecretStr | None = Field(
        default=None, validation_alias="SEALFLOW_SESSION_SECRET"
    )
    """The cookie key; when unset, ``web-session.key`` under the keys dir (made on first start)."""

    session_idle_seconds: int = Field(default=8 * 3600, ge=60, le=30 * 86_400)
    session_max_seconds: int = Field(default=7 * 86_400, ge=60, le=90 * 86_400)
    max_sessions: int = Field(default=10_000, ge=1, le=10_000_000)
    max_pending_logins: int = Field(default=10_000, ge=1, le=10_000_000)
    login_seconds: int = Field(default=600, ge=30, le=3600)
    """How long a sign-in started at ``/login`` may take to come back to ``/callback``."""
    refresh_margin: int = Field(default=60, ge=0, le=600)
    """Refresh the access token when it has fewer seconds than this left."""
    http_timeout: float = Field(default=10.0, gt=0, le=120)
    max_response_bytes: int = Field(default=256 * 1024, ge=1024)
    stream_max_jobs: int = Field(default=50, ge=1, le=200)
    """How many of the newest jobs the jobs page's live stream follows."""

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        parts = urlsplit(value)
        if parts.scheme not in {"http", "https"} or not parts.netloc or parts.path:
            raise ValueError("must be an http:// or https:// origin without a path")
        return value

    @property
    def redirect_uri(self) -> str:
        """Where the identity sends the browser back with the code."""
        return f"{self.url}/callback"

    @property
    def signed_out_uri(self) -> str:
        """Where the identity sends the browser after ending its session."""
        return f"{self.url}/signed-out"

    @property
    def secure_cookies(self) -> bool:
        """The session cookie is ``Secure`` when the gateway is served over HTTPS."""
        return self.url.startswith("https://")
