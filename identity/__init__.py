"""The Sealflow OpenID Connect provider: stores, token signing, and the aiohttp application."""

from __future__ import annotations

from identity.access_tokens import LiveAccessToken
from identity.app import create_app
from identity.audit import AUDIT_FAILURES, AuditTrail, LogAuditSink
from identity.backends import (
    AnyIdentityStore,
    open_identity_store,
    upgrade_identity_schema,
)
from identity.clients import DEVICE_CODE_GRANT, GRANT_TYPES, Client, GrantType
from identity.codes import AuthorizationCode
from identity.context import (
    AUDIT_KEY,
    KEYS_KEY,
    REVOCATIONS_KEY,
    SETTINGS_KEY,
    SIGNIN_KEY,
    STORE_KEY,
)
from identity.control import (
    REVOCATION_LEEWAY,
    LogRevocationSink,
    RevocationOutbox,
    RevocationSink,
    RuntimeRevocationSink,
    broadcast_revocations,
    new_revocation,
)
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
    RevokedToken,
    SlowDown,
    TemporarilyUnavailable,
    TokenReuse,
    UnauthorizedClient,
    UnsupportedGrantType,
)
from identity.keysource import KeySource
from identity.names import reserved_name
from identity.pkce import s256_challenge, verify_pkce
from identity.postgres import PgIdentityStore
from identity.ratelimit import LoginLimiter, SlidingWindow
from identity.refresh_tokens import RefreshGrant
from identity.roles import ROLE_SCOPES, ROLES, Role, check_role, grant_scopes, scopes_for_role
from identity.settings import CLI_CLIENT_ID, IdentitySettings
from identity.signin import SignIn
from identity.store import IdentityStore
from identity.tokens import (
    ACCESS_TOKEN_TYP,
    AccessClaims,
    TokenSigner,
    verify_access_token,
    verify_id_token,
)
from identity.users import User

__all__ = [
    "ACCESS_TOKEN_TYP",
    "AUDIT_FAILURES",
    "AUDIT_KEY",
    "CLI_CLIENT_ID",
    "DEVICE_CODE_GRANT",
    "GRANT_TYPES",
    "KEYS_KEY",
    "REVOCATIONS_KEY",
    "REVOCATION_LEEWAY",
    "ROLES",
    "ROLE_SCOPES",
    "SETTINGS_KEY",
    "SIGNIN_KEY",
    "STORE_KEY",
    "USER_CODE_ALPHABET",
    "AccessClaims",
    "AccessDenied",
    "AnyIdentityStore",
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
    "LiveAccessToken",
    "LogAuditSink",
    "LogRevocationSink",
    "LoginLimiter",
    "PgIdentityStore",
    "RateLimited",
    "RefreshGrant",
    "RevocationOutbox",
    "RevocationSink",
    "RevokedToken",
    "Role",
    "RuntimeRevocationSink",
    "SignIn",
    "SlidingWindow",
    "SlowDown",
    "TemporarilyUnavailable",
    "TokenReuse",
    "TokenSigner",
    "UnauthorizedClient",
    "UnsupportedGrantType",
    "User",
    "broadcast_revocations",
    "check_role",
    "create_app",
    "format_user_code",
    "grant_scopes",
    "new_revocation",
    "normalize_user_code",
    "open_identity_store",
    "reserved_name",
    "s256_challenge",
    "scopes_for_role",
    "upgrade_identity_schema",
    "verify_access_token",
    "verify_id_token",
    "verify_pkce",
]
