"""Every use of PyJWT in Sealflow, kept in one module so that it stays easy to audit.

Two things live here: the JWS algorithm objects the envelope signs and verifies with (it uses
them directly for speed), and the checked encode/decode of OAuth and OIDC tokens. Every decode
names its algorithm allow-list (the ``alg`` of the one key the header's ``kid`` selects),
checks the header ``typ``, and requires ``iss``, ``aud``, ``exp``, ``iat`` and ``sub``.
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, NamedTuple

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
    "VerifiedToken",
    "decode_signed",
    "decode_token",
    "encode_token",
    "verify_token",
]

ALLOWED_ALGORITHMS: Final = frozenset({"ES256", "EdDSA", "RS256"})
MAX_TOKEN_CHARS: Final = 8192
_REQUIRED: Final = ["iss", "aud", "sub", "iat", "exp"]
_FORBIDDEN_HEADER_PARAMS: Final = frozenset({"jku", "x5u", "jwk", "x5c", "crit"})
_B64URL_ALPHABET: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_B64URL: Final = re.compile(r"[A-Za-z0-9_-]*")
# The last character of a segment whose length is 2 or 3 mod 4 carries unused low bits; a
# canonical encoding leaves them zero, so each byte string has exactly one spelling.
_CANONICAL_LAST: Final = {
    2: frozenset(c for i, c in enumerate(_B64URL_ALPHABET) if i & 0b1111 == 0),
    3: frozenset(c for i, c in enumerate(_B64URL_ALPHABET) if i & 0b11 == 0),
}

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


def _check_segment(data: str) -> None:
    """Strict canonical base64url: alphabet only, no padding, no stray trailing bits."""
    remainder = len(data) % 4
    if remainder == 1 or not _B64URL.fullmatch(data):
        raise TokenError("malformed", "malformed token")
    if remainder and data[-1] not in _CANONICAL_LAST[remainder]:
        raise TokenError("malformed", "token is not canonical base64url")


def _segment(data: str) -> bytes:
    """The bytes of one segment that :func:`_check_segment` has passed."""
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


def _json_object(data: str) -> dict[str, Any]:
    try:
        value = json.loads(_segment(data))
    except (ValueError, RecursionError) as error:  # UnicodeDecodeError is a ValueError
        raise TokenError("malformed", "malformed token") from error
    if not isinstance(value, dict):
        raise TokenError("malformed", "malformed token")
    return value


def _int_claim(payload: Mapping[str, Any], name: str) -> int | None:
    value = payload.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TokenError("invalid", f"{name} must be an integer")
    return value


class VerifiedToken(NamedTuple):
    """A token whose header and signature held: the ``kid`` that signed it, and its claims."""

    kid: str
    claims: dict[str, Any]


def _verified_payload(
    token: str,
    *,
    typ: str | tuple[str, ...],
    max_chars: int,
    pick: Callable[[object], VerificationKey | None],
) -> VerifiedToken:
    """The signing key's id and the payload of compact JWS ``token`` once its header and
    signature have held.

    Nothing of the header but ``typ``, ``alg`` and ``kid`` is looked at before the signature
    has held; ``pick`` chooses the one key the header's ``kid`` names (or None).
    """
    if not isinstance(token, str) or not token or len(token) > max_chars:
        raise TokenError("malformed", "malformed token")
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenError("malformed", "malformed token")
    # Every segment is canonical base64url before anything is decoded: a non-ASCII payload
    # would otherwise escape as UnicodeEncodeError when the signing input is built, and a
    # token would have several spellings (each cached and verified on its own).
    for part in parts:
        _check_segment(part)
    header_part, payload_part, signature_part = parts
    header = _json_object(header_part)
    accepted = (typ,) if isinstance(typ, str) else typ
    # An absent typ reads as "": accepted only where the caller lists "" (ID tokens).
    if header.get("typ", "") not in accepted:
        named = " or ".join(kind or "absent" for kind in accepted)
        raise TokenError("wrong_typ", f"token type must be {named}")
    if _FORBIDDEN_HEADER_PARAMS & header.keys():
        raise TokenError("forbidden_header_param", "token header names a key to fetch")
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in ALLOWED_ALGORITHMS:
        raise TokenError("alg_not_allowed", "token algorithm is not allowed")
    key = pick(header.get("kid"))
    if key is None:
        raise TokenError("unknown_kid", "unknown signing key")
    if alg != key.alg:
        raise TokenError("alg_key_mismatch", "algorithm does not match the key")
    signature = _segment(signature_part)
    signing_input = f"{header_part}.{payload_part}".encode("ascii")
    if not JWS_ALGORITHMS[alg].verify(signing_input, key.key, signature):
        raise TokenError("bad_signature", "token signature does not verify")
    return VerifiedToken(key.kid, _json_object(payload_part))


def decode_signed(token: str, key: VerificationKey, *, typ: str, max_chars: int) -> dict[str, Any]:
    """The payload of a compact JWS that ``key`` alone may have signed (e.g. a trust bundle).

    The same header and signature checks as :func:`decode_token`; the claims are the
    caller's to check.
    """
    return _verified_payload(
        token, typ=typ, max_chars=max_chars, pick=lambda kid: key if kid == key.kid else None
    ).claims


def decode_token(
    token: str,
    keys: Iterable[VerificationKey],
    *,
    typ: str | tuple[str, ...],
    issuer: str,
    audience: str,
    leeway: float,
    now: float | None = None,
) -> dict[str, Any]:
    """The verified claims of ``token``; ``TokenError`` for any failed check."""
    return verify_token(
        token, keys, typ=typ, issuer=issuer, audience=audience, leeway=leeway, now=now
    ).claims


def verify_token(
    token: str,
    keys: Iterable[VerificationKey],
    *,
    typ: str | tuple[str, ...],
    issuer: str,
    audience: str,
    leeway: float,
    now: float | None = None,
) -> VerifiedToken:
    """The signing ``kid`` and verified claims of ``token``; ``TokenError`` for any failed check.

    Verification uses PyJWT's algorithm objects directly, as the envelope does: each segment
    is parsed once, and nothing of the header but ``typ``, ``alg`` and ``kid`` is looked at
    before the signature has held.
    """
    moment = time.time() if now is None else now
    candidates = tuple(keys)

    def pick(kid: object) -> VerificationKey | None:
        return next(
            (
                k
                for k in candidates
                if isinstance(kid, str) and k.kid == kid and k.accepts_at(moment)
            ),
            None,
        )

    kid, payload = _verified_payload(token, typ=typ, max_chars=MAX_TOKEN_CHARS, pick=pick)
    missing = [name for name in _REQUIRED if name not in payload]
    if missing:
        raise TokenError("invalid", f"token lacks required claim(s) {', '.join(missing)}")
    if payload["iss"] != issuer:
        raise TokenError("wrong_issuer", "token is from another issuer")
    aud = payload["aud"]
    audiences = [aud] if isinstance(aud, str) else aud
    if not isinstance(audiences, list) or not all(isinstance(a, str) for a in audiences):
        raise TokenError("invalid", "aud must be a string or a list of strings")
    if audience not in audiences:
        raise TokenError("wrong_audience", "token is not for this audience")
    exp, iat, nbf = (_int_claim(payload, name) for name in ("exp", "iat", "nbf"))
    if exp is None or iat is None:
        raise TokenError("invalid", "exp and iat must be integers")
    if moment >= exp + leeway:
        raise TokenError("expired", "token expired")
    if iat > moment + leeway:
        raise TokenError("issued_in_future", "token issued in the future")
    if nbf is not None and nbf > moment + leeway:
        raise TokenError("not_yet_valid", "token is not valid yet")
    if not isinstance(payload["sub"], str):
        raise TokenError("invalid", "sub must be a string")
    return VerifiedToken(kid, payload)
