"""The Sealflow OpenID Connect provider: stores, token signing, and the aiohttp application."""

from __future__ import annotations

from identity.app import KEYS_KEY, SETTINGS_KEY, STORE_KEY, create_app
from identity.errors import (
    AccessDenied,
    IdentityError,
    InvalidClient,
    InvalidGrant,
    InvalidRequest,
    InvalidScope,
    InvalidToken,
    UnauthorizedClient,
    UnsupportedGrantType,
)
from identity.keysource import KeySource
from identity.pkce import s256_challenge, verify_pkce
from identity.roles import ROLE_SCOPES, ROLES, Role, grant_scopes, scopes_for_role
from identity.settings import IdentitySettings
from identity.store import (
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
    "GRANT_TYPES",
    "KEYS_KEY",
    "ROLES",
    "ROLE_SCOPES",
    "SETTINGS_KEY",
    "STORE_KEY",
    "AccessClaims",
    "AccessDenied",
    "AuthorizationCode",
    "Client",
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
    "RefreshGrant",
    "Role",
    "TokenSigner",
    "UnauthorizedClient",
    "UnsupportedGrantType",
    "User",
    "create_app",
    "grant_scopes",
    "s256_challenge",
    "scopes_for_role",
    "verify_access_token",
    "verify_id_token",
    "verify_pkce",
]
