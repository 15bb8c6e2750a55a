"""The identity provider's view of tokens: ``keys.tokens`` with failures as OAuth errors.

Signing and verification live in ``keys`` (shared with the gateway, a relying party); here a
``TokenError`` becomes the ``invalid_token`` error the provider answers with.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from identity.errors import InvalidToken
from keys import ACCESS_TOKEN_TYP, AccessClaims, TokenError, TokenSigner, VerificationKey
from keys import verify_access_token as _verify_access_token
from keys import verify_id_token as _verify_id_token

__all__ = [
    "ACCESS_TOKEN_TYP",
    "AccessClaims",
    "TokenSigner",
    "verify_access_token",
    "verify_id_token",
]


def verify_access_token(
    token: str,
    keys: Iterable[VerificationKey],
    *,
    issuer: str,
    audience: str,
    leeway: float = 5,
    now: float | None = None,
) -> AccessClaims:
    """The claims of a valid ``at+jwt``; ``InvalidToken`` otherwise."""
    try:
        return _verify_access_token(
            token, keys, issuer=issuer, audience=audience, leeway=leeway, now=now
        )
    except TokenError as error:
        raise InvalidToken(str(error)) from error


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
    """The claims of a valid ID token for ``client_id``; ``InvalidToken`` otherwise."""
    try:
        return _verify_id_token(
            token, keys, issuer=issuer, client_id=client_id, nonce=nonce, leeway=leeway, now=now
        )
    except TokenError as error:
        raise InvalidToken(str(error)) from error
