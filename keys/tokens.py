"""OAuth and OIDC tokens: RFC 9068 access tokens and OIDC ID tokens, signed and verified.

The identity provider signs them; the gateway (a relying party) and the identity provider
verify them. The JOSE work itself is ``keys.jose``'s.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from keys.errors import TokenError
from keys.jose import decode_token, encode_token, verify_token
from keys.records import SigningKey, VerificationKey

__all__ = [
    "ACCESS_TOKEN_TYP",
    "ACCESS_TOKEN_TYPES",
    "ID_TOKEN_TYP",
    "ID_TOKEN_TYPES",
    "MAX_ACCESS_TOKEN_LIFETIME",
    "AccessClaims",
    "AccessTokenPolicy",
    "TokenSigner",
    "verify_access_token",
    "verify_id_token",
]

ACCESS_TOKEN_TYP: Final = "at+jwt"  # noqa: S105 - a media type, not a secret
ID_TOKEN_TYP: Final = "JWT"  # noqa: S105 - a media type, not a secret
ID_TOKEN_TYPES: Final[tuple[str, ...]] = (ID_TOKEN_TYP, "")
"""OIDC Core fixes no ``typ`` for ID tokens: ours say ``JWT``, others (oidc-provider) send none
(``""`` stands for an absent ``typ``). Access tokens' types are never among these."""
ACCESS_TOKEN_TYPES: Final[tuple[str, ...]] = (ACCESS_TOKEN_TYP, "application/at+jwt")
"""RFC 9068 §4: a relying party accepts both spellings of the access-token media type."""
MAX_ACCESS_TOKEN_LIFETIME: Final = 900
MAX_ROLES: Final = 256
_URL_CLAIM_MARK: Final = "://"


@dataclass(frozen=True, slots=True)
class AccessTokenPolicy:
    """What a relying party accepts of an access token beyond the signature and ``iss``/``aud``.

    The defaults are RFC 9068 as our own identity provider issues it; other OpenID providers
    (Keycloak, Auth0…) need some of these widened, by the gateway's settings.
    """

    types: tuple[str, ...] = ACCESS_TOKEN_TYPES
    """Accepted JOSE header ``typ`` values (Keycloak sends ``JWT``)."""
    azp_fallback: bool = True
    """Take ``azp`` as the client id when ``client_id`` is absent (Keycloak, Auth0)."""
    roles_claim: str = "roles"
    """Where the roles are: a claim name, a dotted path (``realm_access.roles``), or a
    URL-named claim taken whole (``https://example.com/roles``, Auth0's namespaced claims)."""
    max_lifetime: int = MAX_ACCESS_TOKEN_LIFETIME
    """Longest accepted ``exp - iat``, in seconds."""

    def __post_init__(self) -> None:
        if not self.types or not all(self.types):
            raise ValueError("access token types must be at least one non-empty type")
        if not self.roles_claim or self.max_lifetime < 1:
            raise ValueError("roles_claim must be set and max_lifetime positive")

    def roles_path(self) -> tuple[str, ...]:
        """The claim names leading to the roles, outermost first."""
        if _URL_CLAIM_MARK in self.roles_claim:
            return (self.roles_claim,)
        return tuple(self.roles_claim.split("."))


DEFAULT_ACCESS_POLICY: Final = AccessTokenPolicy()


@dataclass(frozen=True, slots=True)
class AccessClaims:
    """The checked claims of an access token."""

    issuer: str
    subject: str
    audience: tuple[str, ...]
    client_id: str
    scope: tuple[str, ...]
    roles: tuple[str, ...]
    issued_at: int
    expires_at: int
    jti: str
    sid: str | None
    kid: str
    """The issuer's key that signed the token (a revoked ``kid`` revokes its tokens)."""

    def has_scope(self, scope: str) -> bool:
        """True when the token grants ``scope``."""
        return scope in self.scope


class TokenSigner:
    """Signs tokens for one issuer with the identity ring's active key."""

    def __init__(self, issuer: str, audience: str, *, access_lifetime: int = 900) -> None:
        if not 0 < access_lifetime <= MAX_ACCESS_TOKEN_LIFETIME:
            raise ValueError(f"access token lifetime must be 1..{MAX_ACCESS_TOKEN_LIFETIME} s")
        self.issuer = issuer
        self.audience = audience
        self.access_lifetime = access_lifetime

    def access_token(
        self,
        key: SigningKey,
        *,
        subject: str,
        client_id: str,
        scope: Sequence[str],
        roles: Sequence[str],
        sid: str | None = None,
        now: float | None = None,
    ) -> tuple[str, dict[str, Any]]:
        """A signed ``at+jwt`` and its claims."""
        issued = int(time.time() if now is None else now)
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": subject,
            "aud": self.audience,
            "client_id": client_id,
            "scope": " ".join(scope),
            "roles": list(roles),
            "iat": issued,
            "nbf": issued,
            "exp": issued + self.access_lifetime,
            "jti": uuid.uuid4().hex,
        }
        if sid is not None:
            claims["sid"] = sid
        return encode_token(key, claims, ACCESS_TOKEN_TYP), claims

    def id_token(
        self,
        key: SigningKey,
        *,
        subject: str,
        client_id: str,
        nonce: str | None,
        auth_time: int,
        lifetime: int,
        extra: Mapping[str, Any] | None = None,
        now: float | None = None,
    ) -> str:
        """A signed OIDC ID token for ``client_id``."""
        issued = int(time.time() if now is None else now)
        claims: dict[str, Any] = dict(extra or {})
        claims.update(
            {
                "iss": self.issuer,
                "sub": subject,
                "aud": client_id,
                "azp": client_id,
                "auth_time": auth_time,
                "iat": issued,
                "exp": issued + lifetime,
            }
        )
        if nonce is not None:
            claims["nonce"] = nonce
        return encode_token(key, claims, ID_TOKEN_TYP)


def _strings(value: object, name: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(value)
    raise TokenError("invalid", f"{name} must be a string or list of strings")


def _client_id(payload: Mapping[str, Any], policy: AccessTokenPolicy) -> str:
    client_id = payload.get("client_id")
    if client_id is None and policy.azp_fallback:
        client_id = payload.get("azp")
    if not isinstance(client_id, str) or not client_id:
        allowed = "client_id or azp" if policy.azp_fallback else "client_id"
        raise TokenError("invalid", f"{allowed} must be a non-empty string")
    return client_id


def _roles(payload: Mapping[str, Any], policy: AccessTokenPolicy) -> tuple[str, ...]:
    """The roles found at the policy's path; none when the path is absent."""
    value: object = payload
    for name in policy.roles_path():
        if not isinstance(value, Mapping) or name not in value:
            return ()
        value = value[name]
    roles = _strings(value, policy.roles_claim)
    if len(roles) > MAX_ROLES:
        raise TokenError("invalid", f"{policy.roles_claim} holds more than {MAX_ROLES} roles")
    return roles


def verify_access_token(
    token: str,
    keys: Iterable[VerificationKey],
    *,
    issuer: str,
    audience: str,
    leeway: float = 5,
    now: float | None = None,
    policy: AccessTokenPolicy = DEFAULT_ACCESS_POLICY,
) -> AccessClaims:
    """The claims of a valid access token for ``audience`` from ``issuer``; ``TokenError`` else.

    ``policy`` says which ``typ`` values, client-id claims, roles path and lifetime are accepted.
    """
    kid, payload = verify_token(
        token, keys, typ=policy.types, issuer=issuer, audience=audience, leeway=leeway, now=now
    )
    client_id = _client_id(payload, policy)
    jti, scope = payload.get("jti"), payload.get("scope", "")
    if not isinstance(jti, str) or not isinstance(scope, str):
        raise TokenError("invalid", "jti and scope must be strings")
    if int(payload["exp"]) - int(payload["iat"]) > policy.max_lifetime:
        raise TokenError("lifetime_too_long", "access token lives too long")
    sid = payload.get("sid")
    return AccessClaims(
        issuer=str(payload["iss"]),
        subject=str(payload["sub"]),
        audience=_strings(payload["aud"], "aud"),
        client_id=client_id,
        scope=tuple(scope.split()),
        roles=_roles(payload, policy),
        issued_at=int(payload["iat"]),
        expires_at=int(payload["exp"]),
        jti=jti,
        sid=sid if isinstance(sid, str) else None,
        kid=kid,
    )


def verify_id_token(
    token: str,
    keys: Iterable[VerificationKey],
    *,
    issuer: str,
    client_id: str,
    nonce: str | None,
    leeway: float = 5,
    now: float | None = None,
) -> dict[str, Any]:
    """The claims of a valid ID token for ``client_id``; the ``nonce`` must match when given."""
    payload = decode_token(
        token, keys, typ=ID_TOKEN_TYPES, issuer=issuer, audience=client_id, leeway=leeway, now=now
    )
    if nonce is not None and payload.get("nonce") != nonce:
        raise TokenError("nonce_mismatch", "nonce mismatch")
    return payload
