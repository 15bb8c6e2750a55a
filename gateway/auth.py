"""The relying party: bearer access tokens checked, the verified ``Principal``, route guards.

A token is verified once (one signature check via ``keys.verify_access_token``: ``iss``,
``aud``, ``exp``, ``nbf``, algorithm bound to the key, and the ``AccessTokenPolicy``'s ``typ``,
client id, roles and lifetime) and its principal is then cached by the token string until the
token's ``exp``, so a repeated token costs a dict lookup. Revocations broadcast on
``sealflow.control`` (the ``sub``, the token's ``jti`` or the issuer's signing ``kid``) are
checked on every request, cached or not.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final, Protocol

import structlog
from aiohttp import web

from gateway.errors import Forbidden, InsufficientScope, Unauthorized, Unavailable
from gateway.issuer import IssuerError, IssuerKeys
from gateway.operations import Auth
from keys import AccessClaims, AccessTokenPolicy, TokenError, VerificationKey, verify_access_token

__all__ = [
    "PRINCIPAL_KEY",
    "Authenticator",
    "Principal",
    "RevocationCheck",
    "bearer_token",
    "require",
]

_log = structlog.get_logger("sealflow.gateway.auth")

MAX_AUTHORIZATION_CHARS: Final = 8192 + 16
_AUDIT_JTI: Final = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling, as the verified access token says."""

    subject: str
    client_id: str
    scopes: tuple[str, ...]
    roles: tuple[str, ...]
    token_jti: str
    expires_at: int
    kid: str = ""
    """The issuer's key that signed the token."""

    @property
    def is_admin(self) -> bool:
        """The admin role: may see everyone's jobs, the audit log and dead letters."""
        return "admin" in self.roles

    @property
    def audit_jti(self) -> str:
        """The token's ``jti`` in the audit log's shape (32 lowercase hex): as it is when it has
        that shape (our identity's), else the first 32 hex digits of its SHA-256 (other
        providers' ids are longer or not hex; hash theirs to find it in the log)."""
        if _AUDIT_JTI.fullmatch(self.token_jti):
            return self.token_jti
        return hashlib.sha256(self.token_jti.encode()).hexdigest()[:32]

    def has_scope(self, scope: str) -> bool:
        """True when the token grants ``scope``."""
        return scope in self.scopes

    @classmethod
    def from_claims(cls, claims: AccessClaims) -> Principal:
        return cls(
            subject=claims.subject,
            client_id=claims.client_id,
            scopes=claims.scope,
            roles=claims.roles,
            token_jti=claims.jti,
            expires_at=claims.expires_at,
            kid=claims.kid,
        )


PRINCIPAL_KEY: Final = web.RequestKey("sealflow_principal", Principal)
"""``request[PRINCIPAL_KEY]``: the caller, set by the guard of an authenticated route."""


class RevocationCheck(Protocol):
    """``broker.RevocationList``'s lookup: the kind of revocation that applies, or None."""

    def revoked(self, *, kid: str, jti: str, sub: str, now: float) -> str | None: ...


class Authenticator:
    """Verifies access tokens against the issuer's keys and caches the principals."""

    def __init__(
        self,
        keys: IssuerKeys,
        *,
        audience: str,
        leeway: int = 5,
        max_entries: int = 10_000,
        revocations: RevocationCheck | None = None,
        policy: AccessTokenPolicy | None = None,
    ) -> None:
        self.keys = keys
        self.policy = AccessTokenPolicy() if policy is None else policy
        """Accepted ``typ``, client-id claims, roles path, lifetime (the gateway's settings)."""
        self.audience = audience
        self.leeway = leeway
        self.max_entries = max_entries
        self.revocations = revocations
        self._cache: dict[str, Principal] = {}

    async def authenticate(self, token: str, *, now: float | None = None) -> Principal:
        """The principal of a valid token; :class:`Unauthorized` otherwise (``now``: tests)."""
        moment = time.time() if now is None else now
        principal = self._cache.get(token)
        if principal is None or moment >= principal.expires_at:
            if principal is not None:
                del self._cache[token]
            principal = await self._verify(token, now)
            self._remember(token, principal, moment)
        if self.revocations is not None:
            kind = self.revocations.revoked(
                kid=principal.kid, jti=principal.token_jti, sub=principal.subject, now=moment
            )
            if kind is not None:
                raise Unauthorized(f"token revoked ({kind})")
        return principal

    async def _verify(self, token: str, now: float | None) -> Principal:
        try:
            keys = await self.keys.keys()
        except IssuerError as error:
            _log.error("auth.issuer_unavailable", reason=error.reason, error=error.detail)
            raise Unavailable("the token issuer cannot be reached") from error
        try:
            claims = self._check(token, keys, now)
        except TokenError as error:
            if error.reason != "unknown_kid" or not await self.keys.refresh_for_unknown_kid(keys):
                raise _refused(error) from error
            try:
                claims = self._check(token, self.keys.current(), now)
            except TokenError as retry_error:
                raise _refused(retry_error) from retry_error
        return Principal.from_claims(claims)

    def _check(
        self, token: str, keys: tuple[VerificationKey, ...], now: float | None
    ) -> AccessClaims:
        return verify_access_token(
            token,
            keys,
            issuer=self.keys.token_issuer,
            audience=self.audience,
            leeway=self.leeway,
            now=now,
            policy=self.policy,
        )

    def _remember(self, token: str, principal: Principal, now: float) -> None:
        cache = self._cache
        if len(cache) >= self.max_entries:
            for stale in [t for t, p in cache.items() if p.expires_at <= now]:
                del cache[stale]
            while len(cache) >= self.max_entries:
                del cache[next(iter(cache))]  # the oldest entry
        cache[token] = principal


def _refused(error: TokenError) -> Unauthorized:
    """The 401 for a refused token, logged as one line naming the reason (never the token)."""
    _log.info("auth.token_refused", reason=error.reason)
    return Unauthorized(error.detail)


def bearer_token(request: web.Request) -> str | None:
    """The bearer token of ``Authorization``, None when there is no such header."""
    values = request.headers.getall("Authorization", [])
    if not values:
        return None
    if len(values) > 1:
        raise Unauthorized("more than one Authorization header")
    header = values[0]
    if len(header) > MAX_AUTHORIZATION_CHARS:
        raise Unauthorized("Authorization header is too long")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise Unauthorized("expected Authorization: Bearer <access token>")
    return token


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Denied = Callable[[web.Request, Principal, str], Awaitable[None]]


def require(
    authenticator: Callable[[web.Request], Authenticator],
    handler: Handler,
    *,
    auth: Auth,
    scopes: tuple[str, ...] = (),
    roles: tuple[str, ...] = (),
    on_denied: Denied | None = None,
) -> Handler:
    """``handler`` behind the route's authentication: ``auth``, then ``scopes``, then ``roles``.

    ``optional`` routes run without a principal when no token is sent, but a token that is
    sent must be valid. ``on_denied`` is told about every 403 (to audit it).
    """
    if auth == "none":
        return handler

    async def guarded(request: web.Request) -> web.StreamResponse:
        token = bearer_token(request)
        if token is None:
            if auth == "optional":
                return await handler(request)
            raise Unauthorized("a bearer access token is required", token_given=False)
        principal = await authenticator(request).authenticate(token)
        missing = [scope for scope in scopes if not principal.has_scope(scope)]
        if missing:
            if on_denied is not None:
                await on_denied(request, principal, f"missing scope {' '.join(missing)}")
            raise InsufficientScope(
                f"this needs the scope {' '.join(missing)}", scopes=tuple(scopes)
            )
        if roles and not any(role in principal.roles for role in roles):
            if on_denied is not None:
                await on_denied(request, principal, f"needs role {' or '.join(roles)}")
            raise Forbidden(f"this needs the role {' or '.join(roles)}")
        request[PRINCIPAL_KEY] = principal
        return await handler(request)

    return guarded
