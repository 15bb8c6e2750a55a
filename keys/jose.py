"""Every use of PyJWT in Sealflow, kept in one module so that it stays easy to audit.

Two things live here: the JWS algorithm objects the envelope signs and verifies with (it uses
them directly for speed), and the checked encode/decode of OAuth and OIDC tokens. Every decode
names its algorithm allow-list (the ``alg`` of the one key the header's ``kid`` selects),
checks the header ``typ``, and requires ``iss``, ``aud``, ``exp``, ``iat`` and ``sub``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any, Final

import jwt
from jwt.algorithms import Algorithm as JWSAlgorithm
from jwt.algorithms import get_default_algorithms

from keys.errors import TokenError
from keys.records import SigningKey, VerificationKey

__all__ = [
    "ALLOWED_ALGORITHMS",
    "JWS_ALGORITHMS",
    "MAX_TOKEN_CHARS",
    "JWSAlgorithm",
    "decode_token",
    "encode_token",
]

ALLOWED_ALGORITHMS: Final = frozenset({"ES256", "EdDSA", "RS256"})
MAX_TOKEN_CHARS: Final = 8192
_REQUIRED: Final = ["iss", "aud", "sub", "iat", "exp"]
_FORBIDDEN_HEADER_PARAMS: Final = frozenset({"jku", "x5u", "jwk", "x5c", "crit"})

JWS_ALGORITHMS: Final[Mapping[str, JWSAlgorithm]] = {
    name: algorithm
    for name, algorithm in get_default_algorithms().items()
    if name in ALLOWED_ALGORITHMS
}


def encode_token(key: SigningKey, claims: Mapping[str, Any], typ: str) -> str:
    """A compact JWS of ``claims`` signed with ``key``, its header naming ``kid`` and ``typ``."""
    return jwt.encode(
        dict(claims), key.private_key, algorithm=key.alg, headers={"kid": key.kid, "typ": typ}
    )


def decode_token(
    token: str,
    keys: Iterable[VerificationKey],
    *,
    typ: str,
    issuer: str,
    audience: str,
    leeway: float,
    now: float | None = None,
) -> dict[str, Any]:
    """The verified claims of ``token``; ``TokenError`` for any failed check."""
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_CHARS:
        raise TokenError("malformed", "malformed token")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as error:
        raise TokenError("malformed", "malformed token") from error
    if header.get("typ") != typ:
        raise TokenError("wrong_typ", f"token type must be {typ}")
    if _FORBIDDEN_HEADER_PARAMS & header.keys():
        raise TokenError("forbidden_header_param", "token header names a key to fetch")
    alg, kid = header.get("alg"), header.get("kid")
    if alg not in ALLOWED_ALGORITHMS:
        raise TokenError("alg_not_allowed", "token algorithm is not allowed")
    moment = time.time() if now is None else now
    key = next(
        (k for k in keys if isinstance(kid, str) and k.kid == kid and k.accepts_at(moment)), None
    )
    if key is None:
        raise TokenError("unknown_kid", "unknown signing key")
    if alg != key.alg:
        raise TokenError("alg_key_mismatch", "algorithm does not match the key")
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
    except jwt.ExpiredSignatureError as error:
        raise TokenError("expired", "token expired") from error
    except jwt.InvalidAudienceError as error:
        raise TokenError("wrong_audience", "token is not for this audience") from error
    except jwt.InvalidIssuerError as error:
        raise TokenError("wrong_issuer", "token is from another issuer") from error
    except jwt.InvalidSignatureError as error:
        raise TokenError("bad_signature", "token signature does not verify") from error
    except jwt.PyJWTError as error:
        raise TokenError("invalid", f"token rejected: {error}") from error
    if now is not None:
        exp, iat = payload.get("exp"), payload.get("iat")
        if not isinstance(exp, int) or now >= exp + leeway:
            raise TokenError("expired", "token expired")
        if not isinstance(iat, int) or iat > now + leeway:
            raise TokenError("issued_in_future", "token issued in the future")
    if not isinstance(payload.get("sub"), str):
        raise TokenError("invalid", "sub must be a string")
    return payload
