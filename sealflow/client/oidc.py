"""Talking to the OpenID Connect provider: discovery, the token endpoint, revocation, userinfo.

Only standard endpoints from the discovery document are used, so the client works against any
provider that implements RFC 8414/OIDC Discovery, RFC 6749, RFC 7009 and RFC 8628.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import quote_plus

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from sealflow.client.cache import TokenSet
from sealflow.client.errors import OAuthError, TransportError
from sealflow.client.http import read_body, read_json, transport_errors
from sealflow.client.settings import ClientSettings

__all__ = [
    "DEVICE_CODE_GRANT",
    "DeviceAuthorization",
    "OidcClient",
    "ProviderMetadata",
    "TokenResponse",
    "UserInfo",
]

DEVICE_CODE_GRANT: Final = "urn:ietf:params:oauth:grant-type:device_code"
_MAX_OAUTH_BODY: Final = 256 * 1024
_MAX_DESCRIPTION: Final = 300


def _check_url(value: str | None) -> str | None:
    if value is not None and not value.startswith(("http://", "https://")):
        raise ValueError("must be an http(s) URL")
    return value


class ProviderMetadata(BaseModel):
    """The parts of the discovery document the client needs."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    issuer: str = Field(max_length=2048)
    token_endpoint: str = Field(max_length=2048)
    device_authorization_endpoint: str | None = Field(default=None, max_length=2048)
    revocation_endpoint: str | None = Field(default=None, max_length=2048)
    userinfo_endpoint: str | None = Field(default=None, max_length=2048)

    _urls = field_validator(
        "token_endpoint",
        "device_authorization_endpoint",
        "revocation_endpoint",
        "userinfo_endpoint",
    )(_check_url)


class TokenResponse(BaseModel):
    """A successful token endpoint answer (RFC 6749 §5.1)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    access_token: str = Field(min_length=1, max_length=16_384)
    token_type: str = Field(max_length=40)
    expires_in: int | None = Field(default=None, gt=0, le=366 * 86_400)
    refresh_token: str | None = Field(default=None, min_length=1, max_length=4096)
    scope: str | None = Field(default=None, max_length=2048)

    @field_validator("token_type")
    @classmethod
    def _bearer(cls, value: str) -> str:
        if value.lower() != "bearer":
            raise ValueError("only Bearer tokens are supported")
        return "Bearer"

    def token_set(
        self,
        *,
        issuer: str,
        client_id: str,
        previous: TokenSet | None = None,
        subject: str | None = None,
        now: float | None = None,
    ) -> TokenSet:
        """The cache entry for this answer; a refresh without a new refresh token keeps the old."""
        issued = time.time() if now is None else now
        lifetime = self.expires_in if self.expires_in is not None else 300
        refresh = self.refresh_token
        if refresh is None and previous is not None:
            refresh = previous.refresh_token
        return TokenSet(
            issuer=issuer,
            client_id=client_id,
            access_token=self.access_token,
            token_type=self.token_type,
            expires_at=issued + lifetime,
            refresh_token=refresh,
            scope=self.scope if self.scope is not None else (previous.scope if previous else ""),
            subject=subject if subject is not None else (previous.subject if previous else None),
        )


class DeviceAuthorization(BaseModel):
    """A device authorization response (RFC 8628 §3.2)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    device_code: str = Field(min_length=1, max_length=1024)
    user_code: str = Field(min_length=1, max_length=64)
    verification_uri: str = Field(max_length=2048)
    verification_uri_complete: str | None = Field(default=None, max_length=2048)
    expires_in: int = Field(gt=0, le=86_400)
    interval: int = Field(default=5, ge=0, le=300)

    _urls = field_validator("verification_uri", "verification_uri_complete")(_check_url)


class UserInfo(BaseModel):
    """Who the access token belongs to, from the userinfo endpoint."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    sub: str = Field(max_length=256)
    preferred_username: str | None = Field(default=None, max_length=256)
    roles: list[str] = Field(default_factory=list, max_length=32)


def _oauth_error(status: int, body: Any) -> OAuthError:
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        description = body.get("error_description")
        text = description[:_MAX_DESCRIPTION] if isinstance(description, str) else None
        return OAuthError(body["error"][:100], text, status=status)
    return OAuthError("server_error", f"HTTP {status} without an OAuth error body", status=status)


class OidcClient:
    """The identity provider as the CLI sees it: a public client, or confidential with a secret."""

    def __init__(self, settings: ClientSettings, http: aiohttp.ClientSession) -> None:
        self.settings = settings
        self.http = http
        self._metadata: ProviderMetadata | None = None

    async def metadata(self) -> ProviderMetadata:
        """The discovery document (fetched once), whose ``issuer`` must be the configured one."""
        if self._metadata is not None:
            return self._metadata
        issuer = self.settings.issuer
        url = f"{issuer}/.well-known/openid-configuration"
        what = f"the identity provider at {issuer}"
        with transport_errors(f"cannot reach {what}"):
            async with self.http.get(url, headers={"Accept": "application/json"}) as response:
                raw = await read_body(response, _MAX_OAUTH_BODY)
                status = response.status
        if status != 200:
            raise TransportError(f"{what} answered {status} for its discovery document")
        try:
            metadata = ProviderMetadata.model_validate(read_json(raw, what))
        except ValidationError as error:
            raise TransportError(f"{what} sent an invalid discovery document") from error
        if metadata.issuer.rstrip("/") != issuer:
            raise TransportError(
                f"{what} calls itself {metadata.issuer!r}; refusing it (SEALFLOW_ISSUER={issuer})"
            )
        self._metadata = metadata
        return metadata

    async def _post(self, url: str, form: Mapping[str, str], what: str) -> Any:
        """POST a form with client authentication; the JSON answer, or :class:`OAuthError`."""
        data = dict(form)
        headers = {"Accept": "application/json"}
        secret = self.settings.client_secret
        if secret is not None:
            # RFC 6749 §2.3.1: both parts form-encoded before the Basic encoding
            headers["Authorization"] = aiohttp.encode_basic_auth(
                quote_plus(self.settings.client_id), quote_plus(secret.get_secret_value())
            )
        else:
            data["client_id"] = self.settings.client_id
        with transport_errors(f"cannot reach the {what} endpoint {url}"):
            async with self.http.post(url, data=data, headers=headers) as response:
                raw = await read_body(response, _MAX_OAUTH_BODY)
                status = response.status
        if status == 200:
            return read_json(raw, f"the {what} endpoint") if raw else None
        try:
            body = json.loads(raw)
        except (UnicodeDecodeError, ValueError):
            raise TransportError(f"the {what} endpoint answered HTTP {status}") from None
        raise _oauth_error(status, body)

    async def token(self, form: Mapping[str, str]) -> TokenResponse:
        """Call the token endpoint with ``form`` (the grant and its parameters)."""
        metadata = await self.metadata()
        body = await self._post(metadata.token_endpoint, form, "token")
        try:
            return TokenResponse.model_validate(body)
        except ValidationError as error:
            raise TransportError("the token endpoint sent an invalid token response") from error

    async def device_authorization(self, scope: str) -> DeviceAuthorization:
        """Start a device authorization (RFC 8628 §3.1)."""
        metadata = await self.metadata()
        endpoint = metadata.device_authorization_endpoint
        if endpoint is None:
            raise TransportError(
                f"the identity provider at {metadata.issuer} does not offer the device flow"
            )
        body = await self._post(endpoint, {"scope": scope}, "device authorization")
        try:
            return DeviceAuthorization.model_validate(body)
        except ValidationError as error:
            raise TransportError(
                "the device authorization endpoint sent an invalid answer"
            ) from error

    async def refresh(self, refresh_token: str) -> TokenResponse:
        """Trade a refresh token for new tokens (RFC 6749 §6); the old one is spent."""
        return await self.token({"grant_type": "refresh_token", "refresh_token": refresh_token})

    async def client_credentials(self, scope: str | None) -> TokenResponse:
        """A token for the client itself (RFC 6749 §4.4); needs ``SEALFLOW_CLIENT_SECRET``."""
        form = {"grant_type": "client_credentials"}
        if scope:
            form["scope"] = scope
        return await self.token(form)

    async def revoke(self, token: str, hint: str = "refresh_token") -> None:
        """Revoke ``token`` (RFC 7009); an unknown token is not an error."""
        metadata = await self.metadata()
        if metadata.revocation_endpoint is None:
            raise TransportError(f"the identity provider at {metadata.issuer} cannot revoke tokens")
        await self._post(
            metadata.revocation_endpoint, {"token": token, "token_type_hint": hint}, "revocation"
        )

    async def userinfo(self, access_token: str) -> UserInfo | None:
        """Who ``access_token`` belongs to; None when the provider has no userinfo endpoint."""
        metadata = await self.metadata()
        if metadata.userinfo_endpoint is None:
            return None
        url = metadata.userinfo_endpoint
        with transport_errors(f"cannot reach the userinfo endpoint {url}"):
            async with self.http.get(
                url, headers={"Authorization": f"Bearer {access_token}"}
            ) as response:
                raw = await read_body(response, _MAX_OAUTH_BODY)
                status = response.status
        body = read_json(raw, "the userinfo endpoint") if raw else None
        if status != 200:
            raise _oauth_error(status, body)
        try:
            return UserInfo.model_validate(body)
        except ValidationError as error:
            raise TransportError("the userinfo endpoint sent an invalid answer") from error
