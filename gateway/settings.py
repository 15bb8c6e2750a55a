"""The gateway's settings (``SEALFLOW_*``, DESIGN §9); broker-wide ones are ``BrokerSettings``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Final

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from keys import (
    ACCESS_TOKEN_TYPES,
    ALGORITHMS,
    MAX_ACCESS_TOKEN_LIFETIME,
    AccessTokenPolicy,
    Algorithm,
)
from schemas.formats import DOCUMENT_TYPES
from schemas.limits import MAX_DOCUMENT_BYTES

__all__ = ["DEFAULT_CONTENT_TYPES", "GatewaySettings"]

DEFAULT_CONTENT_TYPES: Final[tuple[str, ...]] = DOCUMENT_TYPES
"""What the parser can extract text from (``schemas.formats``)."""


class GatewaySettings(BaseSettings):
    """Where the gateway listens, whom it trusts for tokens, and the limits on what it accepts."""

    model_config = SettingsConfigDict(env_prefix="SEALFLOW_", extra="ignore", populate_by_name=True)

    host: str = Field(default="127.0.0.1", validation_alias="SEALFLOW_GATEWAY_HOST")
    port: int = Field(default=8080, ge=0, le=65535, validation_alias="SEALFLOW_GATEWAY_PORT")
    health_port: int = Field(
        default=9105, ge=0, le=65535, validation_alias="SEALFLOW_GATEWAY_HEALTH_PORT"
    )
    issuer: str = "http://localhost:8081"
    issuer_internal_url: str | None = Field(default=None, pattern=r"^https?://[^?#]+$")
    """``SEALFLOW_ISSUER_INTERNAL_URL``: where the gateway fetches the issuer's discovery
    document and JWKS (unset: ``SEALFLOW_ISSUER``); tokens' ``iss`` is still ``SEALFLOW_ISSUER``."""
    api_audience: str = "sealflow-gateway"
    access_token_types: tuple[str, ...] = Field(default=ACCESS_TOKEN_TYPES, min_length=1)
    """``SEALFLOW_ACCESS_TOKEN_TYPES``: accepted JOSE ``typ`` of access tokens (RFC 9068's two
    spellings; add ``JWT`` for Keycloak and Auth0, whose access tokens are plain JWTs)."""
    access_token_azp_fallback: bool = True
    """``SEALFLOW_ACCESS_TOKEN_AZP_FALLBACK``: take ``azp`` as the client id when a token has
    no ``client_id`` (Keycloak, Auth0)."""
    access_token_roles_claim: str = Field(default="roles", min_length=1, max_length=256)
    """``SEALFLOW_ACCESS_TOKEN_ROLES_CLAIM``: where the roles are: a claim, a dotted path
    (``realm_access.roles``) or a URL-named claim taken whole; absent means no roles."""
    access_token_max_lifetime: int = Field(default=MAX_ACCESS_TOKEN_LIFETIME, ge=1, le=86_400)
    """``SEALFLOW_ACCESS_TOKEN_MAX_LIFETIME``: longest accepted ``exp - iat``, in seconds."""
    issuer_algorithms: tuple[Algorithm, ...] = Field(default=ALGORITHMS, min_length=1)
    """``SEALFLOW_ISSUER_ALGORITHMS``: the issuer's JWKs with another ``alg`` are skipped."""
    issuer_inferred_algorithms: tuple[Algorithm, ...] = ("ES256", "EdDSA")
    """``SEALFLOW_ISSUER_INFERRED_ALGORITHMS``: for a JWK without ``alg``, the algorithms that
    may be inferred from its ``kty``/``crv`` (P-256 → ES256, Ed25519 → EdDSA; add RS256 to take
    an RSA key without ``alg`` as RS256 — RSA alone does not say which algorithm)."""
    data_dir: Path = Path("./var")
    keys_dir: Path = Path("./var/keys")
    database_url: str | None = Field(default=None, pattern=r"^(postgres(ql)?://.*)?$")
    """Unset: the embedded SQLite + files under ``data_dir``; ``postgresql://…``: PostgreSQL."""

    max_upload_bytes: int = Field(default=MAX_DOCUMENT_BYTES, ge=1)
    """Largest accepted file, per file; text formats are bounded lower, by the parser's output
    limit (``schemas.formats.max_input_bytes``)."""
    max_request_bytes: int = Field(default=64 * 1024 * 1024, ge=1)
    """Largest accepted multipart body, all files together."""
    max_files_per_upload: int = Field(default=16, ge=1, le=1000)
    max_jobs_in_flight_per_user: int = Field(default=100, ge=1, le=500)
    """Most jobs one user may have queued or processing; an upload past it is ``429``."""
    quota_retry_after: int = Field(default=30, ge=1, le=3600)
    """The ``Retry-After`` (seconds) of an upload refused for the quota."""
    allowed_content_types: tuple[str, ...] = DEFAULT_CONTENT_TYPES
    client_max_size: int = Field(default=64 * 1024, ge=1024)
    """Largest non-streamed request body (JSON, forms); uploads stream past it."""

    token_leeway: int = Field(default=5, ge=0, le=120)
    token_cache_entries: int = Field(default=10_000, ge=1)
    issuer_timeout: float = Field(default=5.0, gt=0, le=60)
    """Time limit of one discovery or JWKS fetch."""
    issuer_max_bytes: int = Field(default=256 * 1024, ge=1024)
    """Largest discovery or JWKS document read."""
    jwks_cache_seconds: float = Field(default=300.0, gt=0)
    """How long fetched keys are used before they are fetched again."""
    jwks_refetch_interval: float = Field(default=30.0, ge=0)
    """An unknown ``kid`` triggers a refetch at most this often."""

    sse_heartbeat_seconds: float = Field(default=15.0, gt=0)
    sse_max_seconds: float = Field(default=600.0, gt=0)
    sse_poll_seconds: float = Field(default=5.0, gt=0)
    """A live stream re-reads the store this often even without an event (events may be missed
    when several gateways share ``gateway.events``)."""
    sse_max_streams: int = Field(default=1_000, ge=1)
    """Most live event streams open at once, every user together (``429`` beyond)."""
    sse_max_streams_per_user: int = Field(default=10, ge=1)
    """Most live event streams one subject may hold open (``429`` beyond)."""

    audit_url: str = Field(default="http://127.0.0.1:8082", pattern=r"^https?://[^/?#]+/?$")
    """``SEALFLOW_AUDIT_URL``: the audit daemon's query API (scheme, host and port), the only
    way the gateway reads the audit log."""
    audit_timeout: float = Field(default=10.0, gt=0, le=120)
    """Longest one audit query may take, connecting included."""

    header_timeout: float = Field(default=10.0, gt=0, le=300)
    """A connection must send a whole request head within this many seconds of opening (or of
    its previous answer) or it is closed: slow-header clients cannot hold sockets open. An idle
    keep-alive connection is closed after it too."""
    request_timeout: float = Field(default=60.0, gt=0)
    """Longest a non-streaming request may take."""
    upload_timeout: float = Field(default=300.0, gt=0)
    """Longest an upload request may take, reading included."""
    shutdown_timeout: float = Field(default=10.0, ge=0)

    swagger_ui_dir: Path = Field(
        default_factory=lambda: Path(sys.prefix) / "share" / "sealflow" / "swagger-ui"
    )
    """An unpacked ``swagger-ui-dist`` for ``/docs`` (``make install`` puts one here)."""

    @property
    def issuer_url(self) -> str:
        """The issuer without a trailing slash, as it appears in ``iss``."""
        return self.issuer.rstrip("/")

    @property
    def access_policy(self) -> AccessTokenPolicy:
        """What the gateway accepts of an access token, from the ``ACCESS_TOKEN_*`` settings."""
        return AccessTokenPolicy(
            types=self.access_token_types,
            azp_fallback=self.access_token_azp_fallback,
            roles_claim=self.access_token_roles_claim,
            max_lifetime=self.access_token_max_lifetime,
        )
