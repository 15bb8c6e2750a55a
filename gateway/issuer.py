"""The token issuer's public keys, read the way any relying party reads them (DESIGN §5).

``{issuer}/.well-known/openid-configuration`` names the ``jwks_uri``; the JWKS there holds the
keys access tokens are verified with. Both are fetched over HTTP with a time limit and a size
cap, cached for ``cache_seconds``, and refetched early when a token names an unknown ``kid`` —
at most once per ``refetch_interval``, so a flood of made-up kids cannot make us hammer the
issuer. The gateway never imports the identity provider: it only speaks HTTP to it.

Where the gateway reaches the provider by another address than browsers do (a container
network), ``internal_url`` is where both documents are fetched from; the discovery document
must still name the public issuer, and a ``jwks_uri`` under the public issuer is fetched under
``internal_url`` instead.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Mapping
from typing import Any, Final
from urllib.parse import urlsplit

import aiohttp
import structlog

from keys import ALGORITHMS, Algorithm, KeyMaterialError, VerificationKey
from keys.keyset import parse_verification_jwk
from schemas import SealflowError

__all__ = ["DISCOVERY_PATH", "IssuerError", "IssuerKeys"]

_log = structlog.get_logger("sealflow.gateway.issuer")

DISCOVERY_PATH: Final = "/.well-known/openid-configuration"
MAX_KEYS: Final = 64


class IssuerError(SealflowError):
    """The issuer's discovery document or JWKS cannot be fetched or is not acceptable."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message, reason=reason)


def _http_url(value: object, what: str) -> str:
    if not isinstance(value, str) or len(value) > 2048:
        raise IssuerError("bad_document", f"{what} must be a URL")
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise IssuerError("bad_document", f"{what} must be an http(s) URL")
    return value


class IssuerKeys:
    """Discovery + JWKS of one issuer, cached; :meth:`keys` is what verification uses."""

    def __init__(
        self,
        issuer: str,
        *,
        internal_url: str | None = None,
        timeout: float = 5.0,
        max_bytes: int = 256 * 1024,
        cache_seconds: float = 300.0,
        refetch_interval: float = 30.0,
        algorithms: tuple[Algorithm, ...] = ALGORITHMS,
        inferred_algorithms: tuple[Algorithm, ...] = ("ES256", "EdDSA"),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.issuer = issuer.rstrip("/")
        self.token_issuer = self.issuer
        """The ``iss`` tokens must carry: exactly as the discovery document names it."""
        self.internal_url = (internal_url or issuer).rstrip("/")
        """Where discovery and the JWKS are fetched from (the issuer itself unless set)."""
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.cache_seconds = cache_seconds
        self.refetch_interval = refetch_interval
        self.algorithms = algorithms
        """The allow-list: JWKs of other algorithms are skipped."""
        self.inferred_algorithms = inferred_algorithms
        """What a JWK without ``alg`` may be taken as (``keys.load_public_jwk``'s ``infer``)."""
        self._clock = clock
        self._keys: tuple[VerificationKey, ...] = ()
        self._fetched_at: float | None = None
        self._last_forced: float | None = None
        self._jwks_uri: str | None = None
        self._lock = asyncio.Lock()
        self._session: aiohttp.ClientSession | None = None
        self.fetches = 0
        """JWKS fetches so far (tests and metrics)."""

    async def close(self) -> None:
        """Close the HTTP session (it is opened on first use)."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    def current(self) -> tuple[VerificationKey, ...]:
        """The keys fetched last (possibly none, possibly stale)."""
        return self._keys

    async def keys(self) -> tuple[VerificationKey, ...]:
        """The keys, fetched when there are none yet or the cache has lapsed.

        When a periodic refetch fails, the keys already held stay in use (and the failure is
        logged); only when there are none at all does this raise :class:`IssuerError`.
        """
        fetched = self._fetched_at
        if fetched is not None and self._clock() - fetched < self.cache_seconds:
            return self._keys
        async with self._lock:
            fetched = self._fetched_at
            if fetched is not None and self._clock() - fetched < self.cache_seconds:
                return self._keys
            try:
                await self._refresh()
            except IssuerError as error:
                if not self._keys:
                    raise
                _log.warning("issuer.refresh_failed", reason=error.reason, error=error.detail)
                self._fetched_at = self._clock()
        return self._keys

    async def refresh_for_unknown_kid(self, seen: tuple[VerificationKey, ...]) -> bool:
        """Refetch because a token named a kid missing from ``seen`` (the keys it was checked
        against); True when there are new keys to try, False if a refetch was tried too recently.
        """
        async with self._lock:
            if self._keys is not seen:
                return True  # another request refetched while this one waited
            last = self._last_forced
            if last is not None and self._clock() - last < self.refetch_interval:
                return False
            self._last_forced = self._clock()
            try:
                await self._refresh()
            except IssuerError as error:
                _log.warning("issuer.refresh_failed", reason=error.reason, error=error.detail)
                return False
        return True

    async def _refresh(self) -> None:
        if self._jwks_uri is None:
            document = await self._get_json(
                self.internal_url + DISCOVERY_PATH, "discovery document"
            )
            named = document.get("issuer")
            if not isinstance(named, str) or named.rstrip("/") != self.issuer:
                # OIDC Discovery §4.3: the document must name the issuer we asked (up to a
                # trailing "/", which Auth0's issuers end with and the setting may not).
                raise IssuerError("issuer_mismatch", "discovery document names another issuer")
            self.token_issuer = named
            self._jwks_uri = self.internal(_http_url(document.get("jwks_uri"), "jwks_uri"))
        jwks = await self._get_json(self._jwks_uri, "JWKS")
        entries = jwks.get("keys")
        if not isinstance(entries, list) or len(entries) > MAX_KEYS:
            raise IssuerError("bad_document", f"JWKS must hold a list of at most {MAX_KEYS} keys")
        keys: list[VerificationKey] = []
        for entry in entries:
            if not isinstance(entry, Mapping):
                continue
            try:
                keys.append(
                    parse_verification_jwk(
                        "identity",
                        entry,
                        thumbprint_kid=False,
                        algorithms=self.algorithms,
                        infer=self.inferred_algorithms,
                    )
                )
            except KeyMaterialError as error:
                _log.warning("issuer.jwk_skipped", reason=error.reason, error=str(error))
        self._keys = tuple(keys)
        self._fetched_at = self._clock()
        self.fetches += 1
        _log.info("issuer.keys_fetched", kids=[key.kid for key in keys])

    def internal(self, url: str) -> str:
        """``url`` with the public issuer prefix replaced by the internal base, for back-channel
        calls (JWKS, token endpoint); other URLs as they are."""
        if url == self.issuer or url.startswith(self.issuer + "/"):
            return self.internal_url + url[len(self.issuer) :]
        return url

    async def _get_json(self, url: str, what: str) -> dict[str, Any]:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                headers={"Accept": "application/json"},
            )
        try:
            async with self._session.get(url, allow_redirects=False) as response:
                if response.status != 200:
                    raise IssuerError("http_status", f"{what} answered HTTP {response.status}")
                body = await self._read_bounded(response, what)
        except (aiohttp.ClientError, TimeoutError) as error:
            raise IssuerError(
                "unreachable", f"{what} unreachable: {type(error).__name__}"
            ) from error
        try:
            document = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise IssuerError("bad_document", f"{what} is not JSON") from error
        if not isinstance(document, dict):
            raise IssuerError("bad_document", f"{what} must be a JSON object")
        return document

    async def _read_bounded(self, response: aiohttp.ClientResponse, what: str) -> bytes:
        """The body, refused as soon as it grows past ``max_bytes``."""
        declared = response.content_length
        if declared is not None and declared > self.max_bytes:
            raise IssuerError("too_large", f"{what} is larger than {self.max_bytes} bytes")
        parts: list[bytes] = []
        size = 0
        async for chunk in response.content.iter_chunked(64 * 1024):
            size += len(chunk)
            if size > self.max_bytes:
                raise IssuerError("too_large", f"{what} is larger than {self.max_bytes} bytes")
            parts.append(chunk)
        return b"".join(parts)
