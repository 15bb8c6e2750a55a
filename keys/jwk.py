"""Public keys as JSON Web Keys (RFC 7517/7518/8037) and their RFC 7638 thumbprints.

Encoded by hand on top of ``cryptography`` so that PyJWT stays confined to the envelope module.
Loading is strict: a JWK that is private, inconsistent, non-canonical or weak is refused.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Final

from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from keys.algorithms import (
    ALGORITHMS,
    MAX_RSA_BITS,
    Algorithm,
    PublicKey,
    algorithm_for_key,
    check_algorithm,
)
from keys.errors import JWKError, KeyMaterialError

__all__ = [
    "PublicJWK",
    "b64url_decode",
    "b64url_encode",
    "load_public_jwk",
    "public_jwk",
    "thumbprint",
]

_B64URL: Final = re.compile(r"[A-Za-z0-9_-]*")
_COORDINATE_BYTES: Final = 32
_PRIVATE_MEMBERS: Final = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_KTY_ALG: Final[dict[str, Algorithm]] = {"EC": "ES256", "OKP": "EdDSA", "RSA": "RS256"}
_KTY_MEMBERS: Final[dict[str, frozenset[str]]] = {
    "EC": frozenset({"crv", "x", "y"}),
    "OKP": frozenset({"crv", "x"}),
    "RSA": frozenset({"n", "e"}),
}
_ALL_KEY_MEMBERS: Final = frozenset().union(*_KTY_MEMBERS.values())
_MAX_KID_CHARS: Final = 128
# base64url characters of the largest member we accept (an RSA modulus of MAX_RSA_BITS).
_MAX_MODULUS_CHARS: Final = -(-(MAX_RSA_BITS // 8) * 4 // 3)
_MAX_EXPONENT_BYTES: Final = 8


@dataclass(frozen=True, slots=True)
class PublicJWK:
    """A validated public JWK: its ``kid`` (the RFC 7638 thumbprint), algorithm and key."""

    kid: str
    alg: Algorithm
    key: PublicKey


def b64url_encode(data: bytes) -> str:
    """Base64url without padding (RFC 7515 §2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(value: object, *, member: str, max_chars: int) -> bytes:
    """Decode a canonical unpadded base64url string; anything else is a :class:`JWKError`."""
    if not isinstance(value, str):
        raise JWKError("malformed_jwk", f"JWK member {member!r} must be a string")
    if len(value) > max_chars:
        raise JWKError("malformed_jwk", f"JWK member {member!r} is too long ({len(value)} chars)")
    if not _B64URL.fullmatch(value) or len(value) % 4 == 1:
        raise JWKError("malformed_jwk", f"JWK member {member!r} is not unpadded base64url")
    data = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    if b64url_encode(data) != value:
        raise JWKError("malformed_jwk", f"JWK member {member!r} is not canonical base64url")
    return data


def _int_bytes(value: int) -> bytes:
    """Big-endian, minimal length (RFC 7518 §6.3.1)."""
    return value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big")


def _key_members(key: PublicKey) -> dict[str, str]:
    """The RFC 7638 required members of ``key``, in lexicographic order."""
    if isinstance(key, ec.EllipticCurvePublicKey):
        algorithm_for_key(key)
        numbers = key.public_numbers()
        return {
            "crv": "P-256",
            "kty": "EC",
            "x": b64url_encode(numbers.x.to_bytes(_COORDINATE_BYTES, "big")),
            "y": b64url_encode(numbers.y.to_bytes(_COORDINATE_BYTES, "big")),
        }
    if isinstance(key, ed25519.Ed25519PublicKey):
        return {"crv": "Ed25519", "kty": "OKP", "x": b64url_encode(key.public_bytes_raw())}
    if isinstance(key, rsa.RSAPublicKey):
        algorithm_for_key(key)
        rsa_numbers = key.public_numbers()
        return {
            "e": b64url_encode(_int_bytes(rsa_numbers.e)),
            "kty": "RSA",
            "n": b64url_encode(_int_bytes(rsa_numbers.n)),
        }
    raise KeyMaterialError("unsupported_key", f"not a supported public key: {type(key).__name__}")


def _thumbprint_of_members(members: Mapping[str, str]) -> str:
    canonical = json.dumps(dict(sorted(members.items())), separators=(",", ":"))
    return b64url_encode(hashlib.sha256(canonical.encode("utf-8")).digest())


def thumbprint(key: PublicKey) -> str:
    """The RFC 7638 SHA-256 thumbprint of ``key``: Sealflow's ``kid``."""
    return _thumbprint_of_members(_key_members(key))


def public_jwk(key: PublicKey, *, kid: str | None = None) -> dict[str, str]:
    """``key`` as a public signing JWK with ``alg``, ``use`` and ``kid`` (the thumbprint)."""
    members = _key_members(key)
    jwk = {"kty": members["kty"]}
    for name in ("crv", "x", "y", "n", "e"):
        if name in members:
            jwk[name] = members[name]
    jwk["alg"] = algorithm_for_key(key)
    jwk["use"] = "sig"
    jwk["kid"] = _thumbprint_of_members(members) if kid is None else kid
    return jwk


def _string_member(jwk: Mapping[str, object], name: str) -> str:
    value = jwk.get(name)
    if not isinstance(value, str):
        raise JWKError("malformed_jwk", f"JWK member {name!r} is missing or not a string")
    return value


def _load_ec(jwk: Mapping[str, object]) -> PublicKey:
    if jwk.get("crv") != "P-256":
        raise JWKError("wrong_curve", f"EC JWK must have crv 'P-256', not {jwk.get('crv')!r}")
    coordinates = [b64url_decode(jwk.get(name), member=name, max_chars=64) for name in ("x", "y")]
    if any(len(c) != _COORDINATE_BYTES for c in coordinates):
        raise JWKError("malformed_jwk", "EC JWK coordinates must be 32 bytes each")
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(
            ec.SECP256R1(), b"\x04" + coordinates[0] + coordinates[1]
        )
    except ValueError as error:
        raise JWKError("invalid_key", "EC JWK point is not on the P-256 curve") from error


def _load_okp(jwk: Mapping[str, object]) -> PublicKey:
    if jwk.get("crv") != "Ed25519":
        raise JWKError("wrong_curve", f"OKP JWK must have crv 'Ed25519', not {jwk.get('crv')!r}")
    raw = b64url_decode(jwk.get("x"), member="x", max_chars=64)
    if len(raw) != _COORDINATE_BYTES:
        raise JWKError("malformed_jwk", "Ed25519 JWK member 'x' must be 32 bytes")
    try:
        return ed25519.Ed25519PublicKey.from_public_bytes(raw)
    except ValueError as error:
        raise JWKError("invalid_key", "Ed25519 JWK member 'x' is not a valid key") from error


def _load_rsa(jwk: Mapping[str, object]) -> PublicKey:
    n_bytes = b64url_decode(jwk.get("n"), member="n", max_chars=_MAX_MODULUS_CHARS)
    e_bytes = b64url_decode(jwk.get("e"), member="e", max_chars=16)
    for name, raw in (("n", n_bytes), ("e", e_bytes)):
        if not raw or raw[0] == 0:
            raise JWKError("malformed_jwk", f"RSA JWK member {name!r} is not a minimal integer")
    if len(e_bytes) > _MAX_EXPONENT_BYTES:
        raise JWKError("invalid_key", "RSA JWK exponent is too large")
    n, e = int.from_bytes(n_bytes, "big"), int.from_bytes(e_bytes, "big")
    if n.bit_length() > MAX_RSA_BITS:
        raise JWKError("unsupported_key", f"RSA key of {n.bit_length()} bits is too large")
    try:
        return rsa.RSAPublicNumbers(e, n).public_key()
    except ValueError as error:
        raise JWKError("invalid_key", "RSA JWK is not a valid public key") from error


def load_public_jwk(
    jwk: Mapping[str, object],
    *,
    thumbprint_kid: bool = True,
    algorithms: Collection[Algorithm] = ALGORITHMS,
    infer: Collection[Algorithm] = (),
) -> PublicJWK:
    """Validate a public signing JWK and return its key; ``kid`` must be its RFC 7638 thumbprint.

    Unknown members are ignored (RFC 7517 §4), except private-key members, which are refused.
    ``thumbprint_kid=False`` accepts any bounded ``kid``: other OpenID providers (Keycloak,
    Auth0…) name their keys freely, and a relying party must take their JWKS as published.
    ``algorithms`` is the allow-list; a JWK without ``alg`` (optional in RFC 7517 §4.4) gets
    the one its ``kty``/``crv`` implies only when that algorithm is in ``infer``.
    """
    if not isinstance(jwk, Mapping):
        raise JWKError("malformed_jwk", "a JWK must be a JSON object")
    private = sorted(name for name in _PRIVATE_MEMBERS if name in jwk)
    if private:
        raise JWKError(
            "private_member",
            f"JWK carries private member(s) {', '.join(private)}: only public keys are accepted",
        )
    kty = _string_member(jwk, "kty")
    expected_alg = _KTY_ALG.get(kty)
    if expected_alg is None:
        raise JWKError("unsupported_key", f"unsupported JWK kty {kty!r}")
    foreign = sorted((_ALL_KEY_MEMBERS - _KTY_MEMBERS[kty]) & jwk.keys())
    if foreign:
        raise JWKError("malformed_jwk", f"{kty} JWK has members of another key type: {foreign}")
    if "alg" in jwk:
        try:
            alg = check_algorithm(_string_member(jwk, "alg"))
        except KeyMaterialError as error:
            raise JWKError(error.reason, f"JWK {error}") from error
        if alg != expected_alg:
            raise JWKError(
                "alg_mismatch", f"JWK alg {alg} does not match kty {kty} ({expected_alg})"
            )
    elif expected_alg in infer:
        alg = expected_alg
    else:
        raise JWKError("malformed_jwk", f"{kty} JWK has no alg and {expected_alg} is not inferred")
    if alg not in algorithms:
        raise JWKError("alg_not_allowed", f"JWK alg {alg} is not allowed here")
    if "use" in jwk and jwk["use"] != "sig":
        raise JWKError("wrong_use", f"JWK use must be 'sig', not {jwk['use']!r}")
    key_ops = jwk.get("key_ops")
    if key_ops is not None and key_ops != ["verify"]:
        raise JWKError("wrong_use", "JWK key_ops must be ['verify'] for a public signing key")
    kid = _string_member(jwk, "kid")
    if len(kid) > _MAX_KID_CHARS:
        raise JWKError("malformed_jwk", f"JWK kid is too long ({len(kid)} chars)")

    loaders = {"EC": _load_ec, "OKP": _load_okp, "RSA": _load_rsa}
    key = loaders[kty](jwk)
    try:
        algorithm_for_key(key)
    except KeyMaterialError as error:
        raise JWKError(error.reason, f"JWK {error}") from error
    expected_kid = thumbprint(key)
    if thumbprint_kid and kid != expected_kid:
        raise JWKError(
            "kid_mismatch", f"JWK kid {kid!r} is not the key's RFC 7638 thumbprint {expected_kid}"
        )
    return PublicJWK(kid=kid, alg=alg, key=key)
