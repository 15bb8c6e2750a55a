"""The Sealflow OpenID Connect provider: stores, token signing, and the aiohttp application."""

from __future__ import annotations

from identity.app import create_app
from identity.audit import AUDIT_FAILURES, AuditTrail, LogAuditSink
from identity.context import AUDIT_KEY, KEYS_KEY, SETTINGS_KEY, SIGNIN_KEY, STORE_KEY
from identity.devices import (
    USER_CODE_ALPHABET,
    DeviceAuthorization,
    DeviceCodes,
    DeviceGrant,
    DeviceRequest,
    format_user_code,
    normalize_user_code,
)
from identity.errors import (
    AccessDenied,
    AuthorizationPending,
    DeviceAccessDenied,
    ExpiredToken,
    IdentityError,
    InvalidClient,
    InvalidGrant,
    InvalidRequest,
    InvalidScope,
    InvalidToken,
    RateLimited,
    SlowDown,
    TemporarilyUnavailable,
    TokenReuse,
    UnauthorizedClient,
    UnsupportedGrantType,
)
from identity.keysource import KeySource
from identity.pkce import s256_challenge, verify_pkce
from identity.ratelimit import LoginLimiter, SlidingWindow
from identity.roles import ROLE_SCOPES, ROLES, Role, check_role, grant_scopes, scopes_for_role
from identity.settings import CLI_CLIENT_ID, IdentitySettings
from identity.signin import SignIn
from identity.store import (
    DEVICE_CODE_GRANT,
    GRANT_TYPES,
    AuthorizationCode,
    Client,
    GrantType,
    IdentityStore,
    RefreshGrant,
    User,
)
from identity.tokens import (
    ACCESS_TOKEN_TYP,
    AccessClaims,
    TokenSigner,
    verify_access_token,
    verify_id_token,
)

__all__ = [
    "ACCESS_TOKEN_TYP",
    "AUDIT_FAILURES",
    "AUDIT_KEY",
    "CLI_CLIENT_ID",
    "DEVICE_CODE_GRANT",
    "GRANT_TYPES",
    "KEYS_KEY",
    "ROLES",
    "ROLE_SCOPES",
    "SETTINGS_KEY",
    "SIGNIN_KEY",
    "STORE_KEY",
    "USER_CODE_ALPHABET",
    "AccessClaims",
    "AccessDenied",
    "AuditTrail",
    "AuthorizationCode",
    "AuthorizationPending",
    "Client",
    "DeviceAccessDenied",
    "DeviceAuthorization",
    "DeviceCodes",
    "DeviceGrant",
    "DeviceRequest",
    "ExpiredToken",
    "GrantType",
    "IdentityError",
    "IdentitySettings",
    "IdentityStore",
    "InvalidClient",
    "InvalidGrant",
    "InvalidRequest",
    "InvalidScope",
    "InvalidToken",
    "KeySource",
    "LogAuditSink",
    "LoginLimiter",
    "RateLimited",
    "RefreshGrant",
    "Role",
    "SignIn",
    "SlidingWindow",
    "SlowDown",
    "TemporarilyUnavailable",
    "TokenReuse",
    "TokenSigner",
    "UnauthorizedClient",
    "UnsupportedGrantType",
    "User",
    "check_role",
    "create_app",
    "format_user_code",
    "grant_scopes",
    "normalize_user_code",
    "s256_challenge",
    "scopes_for_role",
    "verify_access_token",
    "verify_id_token",
    "verify_pkce",
]
