from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa, x25519

from keys import ALGORITHMS, DEFAULT_ALGORITHM, KeyMaterialError, algorithm_for_key
from keys import generate_private_key as generate


def test_default_algorithm_is_es256_and_allowed() -> None:
    assert DEFAULT_ALGORITHM == "ES256"
    assert set(ALGORITHMS) == {"ES256", "EdDSA", "RS256"}


def test_generate_es256_makes_a_p256_key() -> None:
    key = generate("ES256")
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert isinstance(key.curve, ec.SECP256R1)
    assert algorithm_for_key(key) == "ES256"


def test_generate_eddsa_makes_an_ed25519_key() -> None:
    key = generate("EdDSA")
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    assert algorithm_for_key(key.public_key()) == "EdDSA"


def test_generate_rs256_makes_an_rsa_3072_key(private_keys: dict[str, object]) -> None:
    key = private_keys["RS256"]
    assert isinstance(key, rsa.RSAPrivateKey)
    assert key.key_size == 3072
    assert key.public_key().public_numbers().e == 65537
    assert algorithm_for_key(key) == "RS256"


def test_generate_rejects_unknown_algorithm() -> None:
    with pytest.raises(KeyMaterialError) as caught:
        generate("HS256")  # type: ignore[arg-type]
    assert caught.value.reason == "unsupported_algorithm"


def test_algorithm_for_key_rejects_p384() -> None:
    with pytest.raises(KeyMaterialError) as caught:
        algorithm_for_key(ec.generate_private_key(ec.SECP384R1()))
    assert caught.value.reason == "unsupported_key"
    assert "secp384r1" in str(caught.value)


def test_algorithm_for_key_rejects_rsa_below_2048() -> None:
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(KeyMaterialError) as caught:
        algorithm_for_key(weak.public_key())
    assert caught.value.reason == "weak_key"


def test_algorithm_for_key_rejects_other_key_types() -> None:
    with pytest.raises(KeyMaterialError) as caught:
        algorithm_for_key(x25519.X25519PrivateKey.generate())  # type: ignore[arg-type]
    assert caught.value.reason == "unsupported_key"
