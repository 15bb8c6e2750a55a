"""Access tokens for the gateway: from the cache (refreshed silently), or client credentials.

A user signs in once with the device flow; afterwards every command takes the cached access
token, refreshing it with the (rotated, single-use) refresh token when it is close to expiry.
Scripts set ``SEALFLOW_CLIENT_SECRET`` and get a client-credentials token instead, never
touching the cache.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import aiohttp
import structlog

from sealflow.client.cache import TokenCache, TokenSet
from sealflow.client.device import DeviceFlow
from sealflow.client.errors import (
    CacheError,
    ClientError,
    LoginRequired,
    OAuthError,
    TransportError,
)
from sealflow.client.oidc import DeviceAuthorization, OidcClient
from sealflow.client.settings import ClientSettings

__all__ = ["Authenticator"]

_log = structlog.get_logger("sealflow.client.auth")

_RUN_LOGIN = "run sealflow login"


class Authenticator:
    """Hands out a valid access token and renews it when the gateway rejects one."""

    def __init__(
        self,
        settings: ClientSettings,
        http: aiohttp.ClientSession,
        *,
        cache: TokenCache | None = None,
        oidc: OidcClient | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.cache = cache or TokenCache(settings.token_file)
        self.oidc = oidc or OidcClient(settings, http)
        self._clock = clock
        self._service_token: TokenSet | None = None

    @property
    def uses_client_credentials(self) -> bool:
        """True when ``SEALFLOW_CLIENT_SECRET`` is set: a script, not a signed-in user."""
        return self.settings.client_secret is not None

    # -- sign in and out ---------------------------------------------------------------------

    async def login(
        self, show: Callable[[DeviceAuthorization], None], flow: DeviceFlow | None = None
    ) -> TokenSet:
        """The device flow: ``show`` tells the user where to go; the tokens are then cached."""
        if self.uses_client_credentials:
            raise ClientError(
                "SEALFLOW_CLIENT_SECRET is set: commands use client credentials, no login needed"
            )
        previous = self._previous_sign_in()
        flow = flow or DeviceFlow(self.oidc)
        authorization = await flow.start(self.settings.client_scope)
        show(authorization)
        answer = await flow.poll(authorization)
        subject: str | None = None
        try:
            info = await self.oidc.userinfo(answer.access_token)
        except (OAuthError, TransportError) as error:
            _log.warning("userinfo_unavailable", error=str(error))
        else:
            subject = None if info is None else (info.preferred_username or info.sub)
        tokens = answer.token_set(
            issuer=self.settings.issuer,
            client_id=self.settings.client_id,
            subject=subject,
            now=self._clock(),
        )
        async with self.cache.locked():
            self.cache.save(tokens)
        if previous is not None and previous.refresh_token is not None:
            # the sign-in this one replaces should not stay usable by whoever copies it
            try:
                await self.oidc.revoke(previous.refresh_token, "refresh_token")
            except (OAuthError, TransportError) as error:
                _log.warning("previous_sign_in_not_revoked", error=str(error))
        return tokens

    def _previous_sign_in(self) -> TokenSet | None:
        """The sign-in a new login replaces, when it is for this provider and readable."""
        try:
            previous = self.cache.load()
        except CacheError as error:
            _log.warning("previous_sign_in_unreadable", error=str(error))
            return None
        if previous is None or previous.issuer != self.settings.issuer:
            return None
        return previous

    async def logout(self) -> bool:
        """Revoke the refresh token at the provider (RFC 7009), then delete the cache.

        False when nobody was signed in. If revocation fails the cache is kept, so that the
        user can try again rather than leave a live refresh token behind unknowingly.
        """
        async with self.cache.locked():
            tokens = self.cache.load()
            if tokens is None:
                return False
            if tokens.issuer != self.settings.issuer:
                raise ClientError(
                    f"the cached sign-in is for {tokens.issuer}; set SEALFLOW_ISSUER to it to "
                    "sign out there, or use --forget to delete the local tokens only"
                )
            if tokens.refresh_token is not None:
                await self.oidc.revoke(tokens.refresh_token, "refresh_token")
            self.cache.delete()
        return True

    def forget(self) -> bool:
        """Delete the cache without asking the provider (for a provider that is gone)."""
        return self.cache.delete()

    # -- tokens for the gateway --------------------------------------------------------------

    async def access_token(self) -> str:
        """A bearer token with at least ``refresh_margin`` seconds of life, if one can be had."""
        if self.uses_client_credentials:
            return (await self._client_credentials(renew=False)).access_token
        tokens = self._cached()
        if not tokens.expires_within(self.settings.refresh_margin, self._clock()):
            return tokens.access_token
        return (await self._refresh(stale=tokens.access_token, forced=False)).access_token

    async def renew(self, rejected: str) -> str:
        """A new token after the gateway refused ``rejected``; :class:`LoginRequired` if none."""
        if self.uses_client_credentials:
            return (await self._client_credentials(renew=True)).access_token
        return (await self._refresh(stale=rejected, forced=True)).access_token

    def _cached(self) -> TokenSet:
        tokens = self.cache.load()
        if tokens is None:
            raise LoginRequired(f"not signed in; {_RUN_LOGIN}")
        if tokens.issuer != self.settings.issuer or tokens.client_id != self.settings.client_id:
            raise LoginRequired(
                f"the cached sign-in is for {tokens.issuer} ({tokens.client_id}), not "
                f"{self.settings.issuer} ({self.settings.client_id}); {_RUN_LOGIN}"
            )
        return tokens

    async def _client_credentials(self, *, renew: bool) -> TokenSet:
        current = self._service_token
        if (
            not renew
            and current is not None
            and not current.expires_within(self.settings.refresh_margin, self._clock())
        ):
            return current
        try:
            answer = await self.oidc.client_credentials(self.settings.client_scope or None)
        except OAuthError as error:
            raise LoginRequired(
                f"client credentials for {self.settings.client_id} were refused ({error.error}: "
                f"{error.description}); check SEALFLOW_CLIENT_ID and SEALFLOW_CLIENT_SECRET"
            ) from error
        tokens = answer.token_set(
            issuer=self.settings.issuer,
            client_id=self.settings.client_id,
            subject=self.settings.client_id,
            now=self._clock(),
        )
        self._service_token = tokens
        return tokens

    async def _refresh(self, *, stale: str, forced: bool) -> TokenSet:
        """Refresh under the cache lock, unless another process already has."""
        async with self.cache.locked():
            tokens = self._cached()
            if tokens.access_token != stale and (
                forced or not tokens.expires_within(self.settings.refresh_margin, self._clock())
            ):
                return tokens
            if tokens.refresh_token is None:
                if not forced and not tokens.expires_within(0, self._clock()):
                    return tokens
                raise LoginRequired(f"the session has expired and cannot be renewed; {_RUN_LOGIN}")
            try:
                answer = await self.oidc.refresh(tokens.refresh_token)
            except OAuthError as error:
                raise LoginRequired(
                    f"the session could not be renewed ({error.error}); {_RUN_LOGIN}"
                ) from error
            except TransportError as error:
                if not forced and not tokens.expires_within(0, self._clock()):
                    _log.warning("refresh_failed_using_current_token", error=str(error))
                    return tokens
                raise
            renewed = answer.token_set(
                issuer=tokens.issuer, client_id=tokens.client_id, previous=tokens, now=self._clock()
            )
            self.cache.save(renewed)
            _log.debug("access_token_refreshed", expires_at=renewed.expires_at)
            return renewed
