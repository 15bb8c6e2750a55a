"""Signing and verifying identity tokens: RFC 9068 access tokens and OIDC ID tokens.

This is the only module of ``identity`` that imports PyJWT. Every decode names its algorithm
allow-list (the ``alg`` of the one key the header's ``kid`` selects), checks the header
``typ``, and requires ``iss``, ``aud``, ``exp``, ``iat`` and ``sub``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import jwt

from identity.errors import InvalidToken
from keys import SigningKey, VerificationKey

__all__ = [
    "ACCESS_TOKEN_TYP",
    "ID_TOKEN_TYP",
    "MAX_ACCESS_TOKEN_LIFETIME",
    "AccessClaims",
    "TokenSigner",
    "verify_access_token",
    "verify_id_token",
]

ACCESS_TOKEN_TYP: Final = "at+jwt"  # noqa: S105 - a media type, not a secret
ID_TOKEN_TYP: Final = "JWT"  # noqa: S105 - a media type, not a secret
MAX_ACCESS_TOKEN_LIFETIME: Final = 900
_MAX_TOKEN_CHARS: Final = 8192
_REQUIRED: Final = ["iss", "aud", "sub", "iat", "exp"]


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
        return _encode(key, claims, ACCESS_TOKEN_TYP), claims

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
        return _encode(key, claims, ID_TOKEN_TYP)


def _encode(key: SigningKey, claims: Mapping[str, Any], typ: str) -> str:
    return jwt.encode(
        dict(claims), key.private_key, algorithm=key.alg, headers={"kid": key.kid, "typ": typ}
    )


def _decode(
    token: str,
    keys: Iterable[VerificationKey],
    *,
    typ: str,
    issuer: str,
    audience: str,
    leeway: float,
    now: float | None,
) -> dict[str, Any]:
    if not isinstance(token, str) or not token or len(token) > _MAX_TOKEN_CHARS:
        raise InvalidToken("malformed token")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as error:
        raise InvalidToken("malformed token") from error
    if header.get("typ") != typ:
        raise InvalidToken(f"token type must be {typ}")
    kid = header.get("kid")
    moment = time.time() if now is None else now
    key = next(
        (k for k in keys if isinstance(kid, str) and k.kid == kid and k.accepts_at(moment)), None
    )
    if key is None:
        raise InvalidToken("unknown signing key")
    if header.get("alg") != key.alg:
        raise InvalidToken("algorithm does not match the key")
    try:
        payload: dict[str, Any] = jwt.decode(
            token,
            key.key,
            algorithms=[key.alg],
            audience=audience,
            issuer=issuer,
            leeway=leeway,
            options={
                "require": _REQUIRED,
                "verify_exp": now is None,
                "verify_iat": now is None,
                "verify_nbf": now is None,
            },
        )
    except jwt.PyJWTError as error:
        raise InvalidToken(f"token rejected: {error}") from error
    if now is not None:
        exp, iat = payload.get("exp"), payload.get("iat")
        if not isinstance(exp, int) or now >= exp + leeway:
            raise InvalidToken("token expired")
        if not isinstance(iat, int) or iat > now + leeway:
            raise InvalidToken("token issued in the future")
    if not isinstance(payload.get("sub"), str):
        raise InvalidToken("sub must be a string")
    return payload


def _strings(value: object, name: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(value)
    raise InvalidToken(f"{name} must be a string or list of strings")


def verify_access_token(
    token: str,
    keys: Iterable[VerificationKey],
    *,
    issuer: str,
    audience: str,
    leeway: float = 5,
    now: float | None = None,
) -> AccessClaims:
    """The claims of a valid ``at+jwt`` for ``audience`` from ``issuer``; ``InvalidToken`` else."""
    payload = _decode(
        token, keys, typ=ACCESS_TOKEN_TYP, issuer=issuer, audience=audience, leeway=leeway, now=now
    )
    client_id, jti, scope = payload.get("client_id"), payload.get("jti"), payload.get("scope", "")
    if not isinstance(client_id, str) or not isinstance(jti, str) or not isinstance(scope, str):
        raise InvalidToken("client_id, jti and scope must be strings")
    if int(payload["exp"]) - int(payload["iat"]) > MAX_ACCESS_TOKEN_LIFETIME:
        raise InvalidToken("access token lives too long")
    sid = payload.get("sid")
    return AccessClaims(
        issuer=str(payload["iss"]),
        subject=str(payload["sub"]),
        audience=_strings(payload["aud"], "aud"),
        client_id=client_id,
        scope=tuple(scope.split()),
        roles=_strings(payload.get("roles", []), "roles"),
        issued_at=int(payload["iat"]),
        expires_at=int(payload["exp"]),
        jti=jti,
        sid=sid if isinstance(sid, str) else None,
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
    payload = _decode(
        token, keys, typ=ID_TOKEN_TYP, issuer=issuer, audience=client_id, leeway=leeway, now=now
    )
    if nonce is not None and payload.get("nonce") != nonce:
        raise InvalidToken("nonce mismatch")
    return payload
