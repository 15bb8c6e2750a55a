from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st
from jwcrypto.jwk import JWK
from jwcrypto.jws import JWS

from keys import (
    ALGORITHMS,
    KeyMaterialError,
    PrivateKey,
    SigningKey,
    VerificationKey,
    generate_private_key,
    sign,
    thumbprint,
    verify,
)
from keys.jwk import b64url_encode

SIGNATURE_LENGTH = {"ES256": 64, "EdDSA": 64, "RS256": 384}


def _pair(alg: str, private: PrivateKey) -> tuple[SigningKey, VerificationKey]:
    kid = thumbprint(private.public_key())
    signing = SigningKey(service="audit", kid=kid, alg=alg, private_key=private)  # type: ignore[arg-type]
    verification = VerificationKey(
        service="audit",
        kid=kid,
        alg=alg,  # type: ignore[arg-type]
        key=private.public_key(),
        state="active",
        not_after=None,
    )
    return signing, verification


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_sign_then_verify(alg: str, private_keys: dict[str, PrivateKey]) -> None:
    signing, verification = _pair(alg, private_keys[alg])
    signature = sign(signing, b"checkpoint 42")
    assert len(signature) == SIGNATURE_LENGTH[alg]
    assert verify(verification, b"checkpoint 42", signature) is True


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_verify_rejects_tampered_data(alg: str, private_keys: dict[str, PrivateKey]) -> None:
    signing, verification = _pair(alg, private_keys[alg])
    signature = sign(signing, b"checkpoint 42")
    assert verify(verification, b"checkpoint 43", signature) is False


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_verify_rejects_tampered_signature(alg: str, private_keys: dict[str, PrivateKey]) -> None:
    signing, verification = _pair(alg, private_keys[alg])
    signature = bytearray(sign(signing, b"data"))
    signature[len(signature) // 2] ^= 0x01
    assert verify(verification, b"data", bytes(signature)) is False


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_verify_rejects_malformed_signature_bytes(
    alg: str, private_keys: dict[str, PrivateKey]
) -> None:
    signing, verification = _pair(alg, private_keys[alg])
    signature = sign(signing, b"data")
    for bad in (b"", signature[:-1], signature + b"\x00", b"\x00" * len(signature), b"\xff" * 64):
        assert verify(verification, b"data", bad) is False


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_verify_rejects_another_keys_signature(
    alg: str, private_keys: dict[str, PrivateKey]
) -> None:
    _, verification = _pair(alg, private_keys[alg])
    other, _ = _pair(alg, generate_private_key(alg))  # type: ignore[arg-type]
    assert verify(verification, b"data", sign(other, b"data")) is False


_ES256_KEY = generate_private_key("ES256")


@settings(max_examples=200, deadline=None)
@given(signature=st.binary(max_size=80), data=st.binary(max_size=64))
def test_verify_never_raises_on_arbitrary_signatures(signature: bytes, data: bytes) -> None:
    _, verification = _pair("ES256", _ES256_KEY)
    assert verify(verification, data, signature) is False


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_signatures_are_jws_compatible(alg: str, private_keys: dict[str, PrivateKey]) -> None:
    """An independent JOSE library accepts our bytes as a JWS signature (raw r||s for ES256)."""
    signing, _ = _pair(alg, private_keys[alg])
    header = b64url_encode(f'{{"alg":"{alg}"}}'.encode())
    payload = b64url_encode(b"checkpoint")
    signature = sign(signing, f"{header}.{payload}".encode())
    token = JWS()
    token.deserialize(f"{header}.{payload}.{b64url_encode(signature)}")
    token.verify(JWK.from_pyca(private_keys[alg].public_key()), alg=alg)
    assert token.payload == b"checkpoint"


def test_sign_with_a_key_whose_type_does_not_match_its_alg_raises() -> None:
    private = generate_private_key("EdDSA")
    signing = SigningKey(service="audit", kid="k", alg="ES256", private_key=private)
    with pytest.raises(KeyMaterialError) as caught:
        sign(signing, b"data")
    assert caught.value.reason == "key_type_mismatch"


def test_verify_with_a_key_whose_type_does_not_match_its_alg_raises() -> None:
    public = ec.generate_private_key(ec.SECP256R1()).public_key()
    key = VerificationKey(
        service="audit", kid="k", alg="RS256", key=public, state="active", not_after=None
    )
    with pytest.raises(KeyMaterialError):
        verify(key, b"data", b"\x00" * 64)
