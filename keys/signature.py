"""Detached signatures over raw bytes with a service key (no JOSE), e.g. audit checkpoints.

ES256 signatures are raw ``r || s`` (64 bytes, as in JWS), EdDSA is Ed25519 (64 bytes), and
RS256 is RSASSA-PKCS1-v1_5 with SHA-256 (the modulus length).
"""

from __future__ import annotations

from typing import Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from keys.errors import KeyMaterialError
from keys.records import SigningKey, VerificationKey

__all__ = ["sign", "verify"]

_P256_BYTES: Final = 32
_ED25519_SIGNATURE_BYTES: Final = 64


def _mismatch(kid: str, alg: str, key: object) -> KeyMaterialError:
    return KeyMaterialError(
        "key_type_mismatch", f"key {kid} is recorded as {alg} but is a {type(key).__name__}"
    )


def sign(key: SigningKey, data: bytes) -> bytes:
    """Sign ``data`` with ``key`` according to its algorithm."""
    private = key.private_key
    if key.alg == "ES256" and isinstance(private, ec.EllipticCurvePrivateKey):
        r, s = decode_dss_signature(private.sign(data, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(_P256_BYTES, "big") + s.to_bytes(_P256_BYTES, "big")
    if key.alg == "EdDSA" and isinstance(private, ed25519.Ed25519PrivateKey):
        return private.sign(data)
    if key.alg == "RS256" and isinstance(private, rsa.RSAPrivateKey):
        return private.sign(data, padding.PKCS1v15(), hashes.SHA256())
    raise _mismatch(key.kid, key.alg, private)


def verify(key: VerificationKey, data: bytes, signature: bytes) -> bool:
    """True when ``signature`` is ``key``'s signature of ``data``; False for any bad signature.

    Raises only for a programmer error (a key whose type does not match its algorithm).
    """
    public = key.key
    try:
        if key.alg == "ES256" and isinstance(public, ec.EllipticCurvePublicKey):
            if len(signature) != 2 * _P256_BYTES:
                return False
            r = int.from_bytes(signature[:_P256_BYTES], "big")
            s = int.from_bytes(signature[_P256_BYTES:], "big")
            public.verify(encode_dss_signature(r, s), data, ec.ECDSA(hashes.SHA256()))
        elif key.alg == "EdDSA" and isinstance(public, ed25519.Ed25519PublicKey):
            if len(signature) != _ED25519_SIGNATURE_BYTES:
                return False
            public.verify(signature, data)
        elif key.alg == "RS256" and isinstance(public, rsa.RSAPublicKey):
            if len(signature) != (public.key_size + 7) // 8:
                return False
            public.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
        else:
            raise _mismatch(key.kid, key.alg, public)
    except InvalidSignature:
        return False
    return True
