"""Service tokens: one service calling another's HTTP API, signed with the caller's own key.

A service token is a compact JWS with its own JOSE ``typ`` (``sealflow-service+jwt``, never
an envelope's nor an access token's), checked as strictly as an envelope: the caller's key
(looked up by ``kid`` among the issuing service's keys only), ``iss``, ``aud``, a required
``scope``, a short lifetime, a ``jti`` the receiver spends on first sight, and ``req``, the
digest of the one request it was made for. The JOSE work is ``keys.jose``'s.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from keys.errors import TokenError
from keys.jose import decode_token, encode_token
from keys.records import SigningKey, VerificationKey

__all__ = [
    "MAX_SERVICE_TOKEN_LIFETIME",
    "SERVICE_TOKEN_TYP",
    "ServiceClaims",
    "issue_service_token",
    "request_digest",
    "verify_service_token",
]

SERVICE_TOKEN_TYP: Final = "sealflow-service+jwt"  # noqa: S105 - a media type, not a secret
MAX_SERVICE_TOKEN_LIFETIME: Final = 60
"""Longest lifetime (``exp - iat``) a receiver accepts, in seconds."""
_JTI: Final = re.compile(r"[0-9a-f]{32}")
_DIGEST: Final = re.compile(r"sha-256=[A-Za-z0-9_-]{43}")
_ACTOR: Final = 255


@dataclass(frozen=True, slots=True)
class ServiceClaims:
    """The checked claims of a service token."""

    issuer: str
    audience: str
    scope: tuple[str, ...]
    jti: str
    kid: str
    """The key that signed it (for revocation checks)."""
    issued_at: int
    expires_at: int
    request: str
    """``req``: the digest of the request the token was made for (:func:`request_digest`)."""
    actor: str | None
    """Whom the calling service acts for (``act.sub``), when it says."""


def request_digest(method: str, target: str) -> str:
    """``sha-256=`` and the base64url SHA-256 of ``"METHOD target"`` (target: path and query
    exactly as sent)."""
    digest = hashlib.sha256(f"{method.upper()} {target}".encode()).digest()
    return "sha-256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def issue_service_token(
    key: SigningKey,
    *,
    audience: str,
    scope: Sequence[str],
    request: str,
    lifetime: int = 30,
    actor: str | None = None,
    now: float | None = None,
) -> str:
    """A service token from ``key``'s service for one ``request`` (:func:`request_digest`)."""
    if not 0 < lifetime <= MAX_SERVICE_TOKEN_LIFETIME:
        raise ValueError(f"service token lifetime must be 1..{MAX_SERVICE_TOKEN_LIFETIME} s")
    issued = int(time.time() if now is None else now)
    claims: dict[str, Any] = {
        "iss": key.service,
        "sub": key.service,
        "aud": audience,
        "scope": " ".join(scope),
        "iat": issued,
        "nbf": issued,
        "exp": issued + lifetime,
        "jti": secrets.token_hex(16),
        "req": request,
    }
    if actor is not None:
        claims["act"] = {"sub": actor[:_ACTOR]}
    return encode_token(key, claims, SERVICE_TOKEN_TYP)


def _kid(token: str) -> str:
    """The ``kid`` of a token whose header ``decode_token`` has already checked."""
    header = token.split(".", 1)[0]
    kid = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4))).get("kid")
    if not isinstance(kid, str):
        raise TokenError("malformed", "malformed token")
    return kid


def _actor(payload: dict[str, Any]) -> str | None:
    """``act.sub``, whom the calling service acts for, when the token says."""
    act = payload.get("act")
    if act is None:
        return None
    sub = act.get("sub") if isinstance(act, dict) else None
    if not isinstance(sub, str) or not 0 < len(sub) <= _ACTOR or not sub.isprintable():
        raise TokenError("invalid", "act must be an object whose sub is a short string")
    return sub


def verify_service_token(
    token: str,
    keys: Iterable[VerificationKey],
    *,
    issuer: str,
    audience: str,
    scope: str,
    leeway: float = 5,
    max_lifetime: int = MAX_SERVICE_TOKEN_LIFETIME,
    now: float | None = None,
) -> ServiceClaims:
    """The claims of a valid service token from ``issuer`` for ``audience`` granting ``scope``.

    Only ``issuer``'s own keys are tried, so a key of another service never verifies one.
    Raises ``TokenError``; the caller still has to spend the ``jti`` and compare ``request``
    with the request in hand.
    """
    payload = decode_token(
        token,
        (key for key in keys if key.service == issuer),
        typ=SERVICE_TOKEN_TYP,
        issuer=issuer,
        audience=audience,
        leeway=leeway,
        now=now,
    )
    if payload["aud"] != audience:
        raise TokenError("wrong_audience", "a service token names exactly one audience")
    if payload["sub"] != issuer:
        raise TokenError("invalid", "a service token's sub is its issuer")
    jti, granted, request = payload.get("jti"), payload.get("scope"), payload.get("req")
    if not isinstance(jti, str) or _JTI.fullmatch(jti) is None:
        raise TokenError("invalid", "jti must be 32 lowercase hex digits")
    if not isinstance(request, str) or _DIGEST.fullmatch(request) is None:
        raise TokenError("invalid", "req must be a request digest")
    scopes = tuple(granted.split()) if isinstance(granted, str) else ()
    if scope not in scopes:
        raise TokenError("scope_missing", f"the token does not grant {scope}")
    issued_at, expires_at = int(payload["iat"]), int(payload["exp"])
    if expires_at - issued_at > max_lifetime:
        raise TokenError("lifetime_too_long", f"service tokens live at most {max_lifetime} s")
    return ServiceClaims(
        issuer=issuer,
        audience=audience,
        scope=scopes,
        jti=jti,
        kid=_kid(token),
        issued_at=issued_at,
        expires_at=expires_at,
        request=request,
        actor=_actor(payload),
    )
