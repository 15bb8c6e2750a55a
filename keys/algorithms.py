"""The signature algorithms Sealflow allows, their key types, and key generation."""

from __future__ import annotations

from typing import Final, Literal, TypeAlias, get_args

from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from keys.errors import KeyMaterialError

__all__ = [
    "ALGORITHMS",
    "DEFAULT_ALGORITHM",
    "MAX_RSA_BITS",
    "MIN_RSA_BITS",
    "RSA_GENERATED_BITS",
    "Algorithm",
    "PrivateKey",
    "PublicKey",
    "algorithm_for_key",
    "check_algorithm",
    "generate_private_key",
]

Algorithm = Literal["ES256", "EdDSA", "RS256"]
ALGORITHMS: Final[tuple[Algorithm, ...]] = get_args(Algorithm)
DEFAULT_ALGORITHM: Final[Algorithm] = "ES256"

PrivateKey: TypeAlias = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey
PublicKey: TypeAlias = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | rsa.RSAPublicKey

MIN_RSA_BITS: Final = 2048
# An upper bound too: verifying with a huge untrusted modulus costs time for nothing.
MAX_RSA_BITS: Final = 8192
RSA_GENERATED_BITS: Final = 3072
_RSA_EXPONENT: Final = 65537


def check_algorithm(alg: object) -> Algorithm:
    """``alg`` itself when it is one of :data:`ALGORITHMS`; otherwise an error naming them."""
    for allowed in ALGORITHMS:
        if alg == allowed:
            return allowed
    raise KeyMaterialError(
        "unsupported_algorithm",
        f"unsupported algorithm {alg!r}: expected one of {', '.join(ALGORITHMS)}",
    )


def generate_private_key(alg: Algorithm) -> PrivateKey:
    """A fresh private key for ``alg``: P-256 for ES256, Ed25519 for EdDSA, RSA-3072 for RS256."""
    alg = check_algorithm(alg)
    if alg == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if alg == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    return rsa.generate_private_key(public_exponent=_RSA_EXPONENT, key_size=RSA_GENERATED_BITS)


def algorithm_for_key(key: PrivateKey | PublicKey) -> Algorithm:
    """The one algorithm ``key`` may be used with; raises for other curves and weak RSA keys."""
    if isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        return "EdDSA"
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        if isinstance(key.curve, ec.SECP256R1):
            return "ES256"
        raise KeyMaterialError(
            "unsupported_key", f"unsupported elliptic curve {key.curve.name}: only P-256 (ES256)"
        )
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise KeyMaterialError(
                "weak_key", f"RSA key of {key.key_size} bits is too weak: at least {MIN_RSA_BITS}"
            )
        if key.key_size > MAX_RSA_BITS:
            raise KeyMaterialError(
                "unsupported_key",
                f"RSA key of {key.key_size} bits is too large: at most {MAX_RSA_BITS}",
            )
        return "RS256"
    raise KeyMaterialError(
        "unsupported_key",
        f"unsupported key type {type(key).__name__}: expected P-256, Ed25519 or RSA",
    )
