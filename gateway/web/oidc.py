"""The gateway as an OpenID Connect relying party for browsers: authorization code + PKCE.

It reads the issuer's discovery document like any relying party (over HTTP, bounded in time
and size; the gateway never imports the identity provider), builds the authorization URL
with ``state``, ``nonce`` and an S256 challenge, redeems the code, refreshes, revokes, and
names the end-session URL. ID tokens are checked with ``keys.verify_id_token`` against the
issuer's JWKS (the same keys the API's bearer tokens are checked with).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlencode, urlsplit

import aiohttp
import structlog
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway.issuer import DISCOVERY_PATH, IssuerError, IssuerKeys
from gateway.web.sessions import PendingLogin, TokenSet
from gateway.web.settings import WebSettings
from keys import TokenError, verify_id_token
from schemas import SealflowError

__all__ = ["Discovery", "OidcClient", "OidcError", "TokenResponse", "s256"]

_log = structlog.get_logger("sealflow.gateway.web.oidc")

_DISCOVERY_SECONDS: Final = 300.0


class OidcError(SealflowError):
    """A step of sign-in, refresh or sign-out failed; ``reason`` is a short code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message, reason=reason)


def s256(verifier: str) -> str:
    """The PKCE S256 challenge of ``verifier`` (RFC 7636 §4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@dataclass(frozen=True, slots=True)
class Discovery:
    """The endpoints of the issuer this gateway uses."""

    issuer: str
    """Exactly as the document names it (``iss`` of ID tokens and of the callback, RFC 9207)."""
    authorization_endpoint: str
    token_endpoint: str
    revocation_endpoint: str | None
    end_session_endpoint: str | None


class TokenResponse(BaseModel):
    """A token endpoint's success answer (RFC 6749 §5.1, OIDC Core §3.1.3.3)."""

    model_config = ConfigDict(extra="ignore")

    access_token: str = Field(min_length=1, max_length=16_384)
    token_type: str = Field(max_length=32)
    expires_in: int = Field(ge=1, le=86_400)
    refresh_token: str | None = Field(default=None, max_length=4096)
    id_token: str | None = Field(default=None, max_length=16_384)
    scope: str | None = Field(default=None, max_length=4096)

    def token_set(self, now: float, previous: TokenSet | None = None) -> TokenSet:
        """As kept in a session; a refresh answer without a new token keeps the old ones."""
        return TokenSet(
            access_token=self.access_token,
            expires_at=now + self.expires_in,
            refresh_token=self.refresh_token
            or (previous.refresh_token if previous is not None else None),
            id_token=self.id_token or (previous.id_token if previous is not None else None),
        )


def _url(value: object, what: str, *, required: bool = True) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or len(value) > 2048:
        raise OidcError("bad_discovery", f"{what} must be a URL")
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise OidcError("bad_discovery", f"{what} must be an http(s) URL")
    return value


class OidcClient:
    """One issuer, one client (``settings.client_id``); its HTTP session opens on first use."""

    def __init__(self, issuer: str, keys: IssuerKeys, settings: WebSettings) -> None:
        self.issuer = issuer.rstrip("/")
        self.keys = keys
        self.settings = settings
        self._session: aiohttp.ClientSession | None = None
        self._discovery: Discovery | None = None
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.settings.http_timeout),
                headers={"Accept": "application/json"},
            )
        return self._session

    async def discovery(self) -> Discovery:
        """The issuer's endpoints (cached for five minutes)."""
        if self._discovery is not None and time.monotonic() - self._fetched_at < _DISCOVERY_SECONDS:
            return self._discovery
        async with self._lock:
            if (
                self._discovery is not None
                and time.monotonic() - self._fetched_at < _DISCOVERY_SECONDS
            ):
                return self._discovery
            # Back-channel calls go to the internal URL (SEALFLOW_ISSUER_INTERNAL_URL); the
            # endpoints the browser is sent to stay public.
            status, document = await self._request(
                "GET", self.keys.internal(self.issuer + DISCOVERY_PATH)
            )
            if status != 200:
                raise OidcError("issuer_unavailable", f"discovery answered HTTP {status}")
            named = document.get("issuer")
            # As gateway/issuer.py: the issuer asked for, up to a trailing "/" (Auth0's ends
            # with one, the setting may not); what follows is checked against the exact name.
            if not isinstance(named, str) or named.rstrip("/") != self.issuer:
                raise OidcError("issuer_mismatch", "the discovery document names another issuer")
            found = Discovery(
                issuer=named,
                authorization_endpoint=str(
                    _url(document.get("authorization_endpoint"), "authorization_endpoint")
                ),
                token_endpoint=self.keys.internal(
                    str(_url(document.get("token_endpoint"), "token_endpoint"))
                ),
                revocation_endpoint=self._internal_or_none(
                    _url(document.get("revocation_endpoint"), "revocation_endpoint", required=False)
                ),
                end_session_endpoint=_url(
                    document.get("end_session_endpoint"), "end_session_endpoint", required=False
                ),
            )
            self._discovery, self._fetched_at = found, time.monotonic()
            return found

    async def is_issuer(self, value: str) -> bool:
        """True when ``value`` (a callback's ``iss``) is exactly the discovered issuer."""
        try:
            return value == (await self.discovery()).issuer
        except OidcError as error:
            _log.warning("web.discovery_unavailable", reason=error.reason)
            return False

    def _internal_or_none(self, url: str | None) -> str | None:
        return None if url is None else self.keys.internal(url)

    async def authorization_url(self, login: PendingLogin) -> str:
        """Where to send the browser to sign in (``response_type=code``, PKCE S256)."""
        endpoint = (await self.discovery()).authorization_endpoint
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self.settings.client_id,
                "redirect_uri": self.settings.redirect_uri,
                "scope": self.settings.scope,
                "state": login.state,
                "nonce": login.nonce,
                "code_challenge": s256(login.verifier),
                "code_challenge_method": "S256",
            }
        )
        return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}"

    async def exchange_code(self, code: str, login: PendingLogin) -> tuple[TokenResponse, str]:
        """Redeem ``code``; returns the tokens and the verified ID token's subject."""
        tokens = await self._token(
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": self.settings.redirect_uri,
                "code_verifier": login.verifier,
            }
        )
        if tokens.id_token is None:
            raise OidcError("no_id_token", "the issuer sent no ID token")
        claims = await self.verify_id_token(tokens.id_token, nonce=login.nonce)
        return tokens, str(claims["sub"])

    async def refresh(self, refresh_token: str) -> TokenResponse:
        """New tokens for a refresh token (which the issuer rotates: the old one is spent)."""
        return await self._token({"grant_type": "refresh_token", "refresh_token": refresh_token})

    async def verify_id_token(self, token: str, *, nonce: str | None) -> dict[str, Any]:
        """The claims of an ID token for this client; :class:`OidcError` otherwise."""
        issuer = (await self.discovery()).issuer
        try:
            keys = await self.keys.keys()
        except IssuerError as error:
            raise OidcError("issuer_unavailable", error.detail) from error
        try:
            return verify_id_token(
                token, keys, issuer=issuer, client_id=self.settings.client_id, nonce=nonce
            )
        except TokenError as error:
            if error.reason == "unknown_kid" and await self.keys.refresh_for_unknown_kid(keys):
                try:
                    return verify_id_token(
                        token,
                        self.keys.current(),
                        issuer=issuer,
                        client_id=self.settings.client_id,
                        nonce=nonce,
                    )
                except TokenError as retry:
                    raise OidcError("bad_id_token", retry.detail) from retry
            raise OidcError("bad_id_token", error.detail) from error

    async def revoke(self, token: str, hint: str) -> bool:
        """Revoke ``token`` at the issuer (RFC 7009); False (logged) when that failed."""
        try:
            endpoint = (await self.discovery()).revocation_endpoint
            if endpoint is None:
                return False
            status, _ = await self._request(
                "POST", endpoint, form={"token": token, "token_type_hint": hint}
            )
        except OidcError as error:
            _log.warning("web.revoke_failed", reason=error.reason, error=error.detail)
            return False
        if status != 200:
            _log.warning("web.revoke_failed", reason="http_status", status=status)
        return status == 200

    async def end_session_url(self, id_token: str | None) -> str | None:
        """The issuer's end-session URL for this sign-out, or None when it has none."""
        try:
            endpoint = (await self.discovery()).end_session_endpoint
        except OidcError as error:
            _log.warning("web.end_session_unavailable", reason=error.reason)
            return None
        if endpoint is None:
            return None
        params = {
            "client_id": self.settings.client_id,
            "post_logout_redirect_uri": self.settings.signed_out_uri,
        }
        if id_token is not None:
            params["id_token_hint"] = id_token
        return f"{endpoint}{'&' if '?' in endpoint else '?'}{urlencode(params)}"

    async def _token(self, form: dict[str, str]) -> TokenResponse:
        endpoint = (await self.discovery()).token_endpoint
        status, body = await self._request("POST", endpoint, form=form)
        if status != 200:
            reason = body.get("error") if isinstance(body.get("error"), str) else "http_status"
            raise OidcError(str(reason)[:64], f"the token endpoint answered HTTP {status}")
        try:
            tokens = TokenResponse.model_validate(body)
        except ValidationError as error:
            raise OidcError("bad_token_response", "the token response is malformed") from error
        if tokens.token_type.lower() != "bearer":
            raise OidcError("bad_token_response", "the token type is not Bearer")
        return tokens

    async def _request(
        self, method: str, url: str, *, form: dict[str, str] | None = None
    ) -> tuple[int, dict[str, Any]]:
        """``(status, JSON object)``; bodies that are not JSON objects read as ``{}``."""
        data = dict(form) if form is not None else None
        auth = None
        if data is not None:
            secret = self.settings.client_secret
            if secret is None:
                data["client_id"] = self.settings.client_id
            else:
                auth = aiohttp.BasicAuth(self.settings.client_id, secret.get_secret_value())
        try:
            async with self._http().request(
                method, url, data=data, auth=auth, allow_redirects=False
            ) as response:
                raw = await self._read_bounded(response)
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as error:
            raise OidcError("issuer_unavailable", f"{type(error).__name__} from {url}") from error
        try:
            document = json.loads(raw) if raw else {}
        except (UnicodeDecodeError, json.JSONDecodeError):
            document = {}
        return status, document if isinstance(document, dict) else {}

    async def _read_bounded(self, response: aiohttp.ClientResponse) -> bytes:
        limit = self.settings.max_response_bytes
        if response.content_length is not None and response.content_length > limit:
            raise OidcError("too_large", f"the issuer's answer is larger than {limit} bytes")
        parts: list[bytes] = []
        size = 0
        async for chunk in response.content.iter_chunked(64 * 1024):
            size += len(chunk)
            if size > limit:
                raise OidcError("too_large", f"the issuer's answer is larger than {limit} bytes")
            parts.append(chunk)
        return b"".join(parts)
