"""The identity error hierarchy: each error carries an OAuth ``reason`` code and HTTP status."""

from __future__ import annotations

from schemas.errors import SealflowError

__all__ = [
    "AccessDenied",
    "AuthorizationPending",
    "DeviceAccessDenied",
    "ExpiredToken",
    "IdentityError",
    "InvalidClient",
    "InvalidGrant",
    "InvalidRequest",
    "InvalidScope",
    "InvalidToken",
    "RateLimited",
    "RevokedToken",
    "SlowDown",
    "TemporarilyUnavailable",
    "TokenReuse",
    "UnauthorizedClient",
    "UnsupportedGrantType",
]


class IdentityError(SealflowError):
    """An identity failure; ``reason`` is the RFC 6749 / 6750 error code sent to the caller."""

    reason = "server_error"
    status: int = 500

    @property
    def description(self) -> str:
        """The detail under its OAuth name (``error_description``, RFC 6749 §5.2)."""
        return self.detail

    def __str__(self) -> str:
        return f"{self.reason}: {self.detail}"


class InvalidRequest(IdentityError):
    """A parameter is missing, repeated, malformed or unsupported."""

    reason = "invalid_request"
    status = 400


class InvalidClient(IdentityError):
    """Client authentication failed (unknown client, wrong or missing secret)."""

    reason = "invalid_client"
    status = 401


class InvalidGrant(IdentityError):
    """The code, refresh token or credentials are invalid, expired, spent or not the client's."""

    reason = "invalid_grant"
    status = 400


class UnauthorizedClient(IdentityError):
    """The client may not use this grant type."""

    reason = "unauthorized_client"
    status = 400


class UnsupportedGrantType(IdentityError):
    """The provider does not know the grant type."""

    reason = "unsupported_grant_type"
    status = 400


class InvalidScope(IdentityError):
    """The requested scope is unknown or exceeds what the subject may have."""

    reason = "invalid_scope"
    status = 400


class AccessDenied(IdentityError):
    """The resource owner or the provider refused the request."""

    reason = "access_denied"
    status = 403


class InvalidToken(IdentityError):
    """A bearer token is missing, malformed, expired, revoked or not for this audience."""

    reason = "invalid_token"
    status = 401


class TokenReuse(InvalidGrant):
    """A spent code or refresh token was presented again; its whole family is now revoked."""

    def __init__(self, description: str, *, family_id: str) -> None:
        super().__init__(description)
        self.family_id = family_id


class RevokedToken(InvalidGrant):
    """A refresh token of a sign-in that was already revoked: refused, and no new alarm."""

    def __init__(self, description: str, *, family_id: str) -> None:
        super().__init__(description)
        self.family_id = family_id


class TemporarilyUnavailable(IdentityError):
    """The provider cannot take this request now (a bounded table is full); retry later."""

    reason = "temporarily_unavailable"
    status = 503


class RateLimited(IdentityError):
    """Too many failed sign-ins for this user or address; ``retry_after`` seconds to wait."""

    reason = "rate_limited"
    status = 429

    def __init__(self, description: str, *, retry_after: int, scope: str) -> None:
        super().__init__(description)
        self.retry_after = retry_after
        self.scope = scope


class AuthorizationPending(IdentityError):
    """Device flow (RFC 8628 §3.5): the user has not approved or denied the request yet."""

    reason = "authorization_pending"
    status = 400


class SlowDown(IdentityError):
    """Device flow: the client polls faster than its interval, which grows by 5 s."""

    reason = "slow_down"
    status = 400


class ExpiredToken(IdentityError):
    """Device flow: the device code expired before it was approved; start again."""

    reason = "expired_token"
    status = 400


class DeviceAccessDenied(IdentityError):
    """Device flow: the user denied the request (``access_denied`` at the token endpoint)."""

    reason = "access_denied"
    status = 400
