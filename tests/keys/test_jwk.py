from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import given, settings
from hypothesis import strategies as st
from jwcrypto.jwk import JWK

from keys import (
    ALGORITHMS,
    Algorithm,
    JWKError,
    PrivateKey,
    generate_private_key,
    load_public_jwk,
    public_jwk,
    thumbprint,
)
from keys.jwk import b64url_decode, b64url_encode

# RFC 7638 §3.1: the example RSA key and its SHA-256 thumbprint.
RFC7638_N = (
    "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECP"
    "ebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY"
    "368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0f"
    "M4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
)
RFC7638_E = "AQAB"
RFC7638_THUMBPRINT = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def _int(member: str) -> int:
    return int.from_bytes(base64.urlsafe_b64decode(member + "=" * (-len(member) % 4)), "big")


def test_thumbprint_matches_rfc7638_example() -> None:
    key = rsa.RSAPublicNumbers(_int(RFC7638_E), _int(RFC7638_N)).public_key()
    assert thumbprint(key) == RFC7638_THUMBPRINT


def test_public_jwk_of_rfc7638_key_has_its_members() -> None:
    key = rsa.RSAPublicNumbers(_int(RFC7638_E), _int(RFC7638_N)).public_key()
    jwk = public_jwk(key)
    assert jwk == {
        "kty": "RSA",
        "n": RFC7638_N,
        "e": RFC7638_E,
        "alg": "RS256",
        "use": "sig",
        "kid": RFC7638_THUMBPRINT,
    }


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_thumbprint_matches_jwcrypto(alg: str, private_keys: dict[str, PrivateKey]) -> None:
    public = private_keys[alg].public_key()
    assert thumbprint(public) == JWK.from_pyca(public).thumbprint()


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_public_jwk_is_read_by_jwcrypto_as_the_same_key(
    alg: str, private_keys: dict[str, PrivateKey]
) -> None:
    public = private_keys[alg].public_key()
    ours = public_jwk(public)
    theirs = json.loads(JWK.from_pyca(public).export_public())
    for member, value in theirs.items():
        assert ours[member] == value
    assert ours["alg"] == alg
    assert ours["use"] == "sig"
    assert ours["kid"] == thumbprint(public)


def test_public_jwk_pads_p256_coordinates_to_32_bytes() -> None:
    # Find a key whose x has a leading zero byte: the JWK must still carry 32 bytes.
    for _ in range(2000):
        key = ec.generate_private_key(ec.SECP256R1()).public_key()
        if key.public_numbers().x < 2**248:
            break
    else:
        pytest.skip("no P-256 key with a short x coordinate found")
    jwk = public_jwk(key)
    assert len(b64url_decode(jwk["x"], member="x", max_chars=64)) == 32
    assert jwk["x"] == json.loads(JWK.from_pyca(key).export_public())["x"]


def test_public_jwk_takes_an_explicit_kid() -> None:
    key = generate_private_key("EdDSA").public_key()
    assert public_jwk(key, kid="custom")["kid"] == "custom"


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_jwk_round_trip(alg: str, private_keys: dict[str, PrivateKey]) -> None:
    public = private_keys[alg].public_key()
    loaded = load_public_jwk(public_jwk(public))
    assert loaded.alg == alg
    assert loaded.kid == thumbprint(public)
    assert loaded.key == public


@settings(max_examples=20, deadline=None)
@given(alg=st.sampled_from(["ES256", "EdDSA"]))
def test_jwk_round_trip_property(alg: str) -> None:
    public = generate_private_key(alg).public_key()  # type: ignore[arg-type]
    jwk = public_jwk(public)
    loaded = load_public_jwk(jwk)
    assert loaded.key == public
    assert public_jwk(loaded.key) == jwk


def test_load_public_jwk_accepts_unknown_members() -> None:
    jwk: dict[str, Any] = dict(public_jwk(generate_private_key("ES256").public_key()))
    jwk["x5t"] = "ignored"
    assert load_public_jwk(jwk).alg == "ES256"


def _rejects(jwk: object, reason: str) -> JWKError:
    with pytest.raises(JWKError) as caught:
        load_public_jwk(jwk)  # type: ignore[arg-type]
    assert caught.value.reason == reason, str(caught.value)
    assert "\n" not in str(caught.value)
    return caught.value


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_load_public_jwk_rejects_private_members(
    alg: str, private_keys: dict[str, PrivateKey]
) -> None:
    private = json.loads(JWK.from_pyca(private_keys[alg]).export_private())
    private.update(alg=alg, kid=thumbprint(private_keys[alg].public_key()))
    error = _rejects(private, "private_member")
    assert "d" in str(error)


def test_load_public_jwk_rejects_mismatched_kid() -> None:
    jwk = public_jwk(generate_private_key("ES256").public_key())
    jwk["kid"] = thumbprint(generate_private_key("ES256").public_key())
    _rejects(jwk, "kid_mismatch")


def test_load_public_jwk_rejects_missing_kid() -> None:
    jwk = public_jwk(generate_private_key("EdDSA").public_key())
    del jwk["kid"]
    _rejects(jwk, "malformed_jwk")


def test_load_public_jwk_rejects_wrong_curve() -> None:
    jwk = public_jwk(generate_private_key("ES256").public_key())
    jwk["crv"] = "P-384"
    _rejects(jwk, "wrong_curve")


def test_load_public_jwk_rejects_p384_key() -> None:
    p384 = json.loads(
        JWK.from_pyca(ec.generate_private_key(ec.SECP384R1()).public_key()).export_public()
    )
    p384.update(alg="ES256", kid="x")
    _rejects(p384, "wrong_curve")


def test_load_public_jwk_rejects_okp_with_x25519_curve() -> None:
    jwk = public_jwk(generate_private_key("EdDSA").public_key())
    jwk["crv"] = "X25519"
    _rejects(jwk, "wrong_curve")


def test_load_public_jwk_rejects_rsa_1024() -> None:
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()
    jwk = json.loads(JWK.from_pyca(weak).export_public())
    jwk.update(alg="RS256", kid=JWK.from_pyca(weak).thumbprint())
    _rejects(jwk, "weak_key")


def test_load_public_jwk_rejects_alg_inconsistent_with_kty() -> None:
    jwk = public_jwk(generate_private_key("ES256").public_key())
    jwk["alg"] = "EdDSA"
    _rejects(jwk, "alg_mismatch")


@pytest.mark.parametrize("alg", ["none", "HS256", "ES384", "PS256"])
def test_load_public_jwk_rejects_algorithms_outside_the_allow_list(alg: str) -> None:
    jwk = public_jwk(generate_private_key("ES256").public_key())
    jwk["alg"] = alg
    _rejects(jwk, "unsupported_algorithm")


def test_load_public_jwk_rejects_missing_alg() -> None:
    jwk = public_jwk(generate_private_key("ES256").public_key())
    del jwk["alg"]
    _rejects(jwk, "malformed_jwk")


def test_load_public_jwk_rejects_symmetric_keys() -> None:
    _rejects({"kty": "oct", "k": "c2VjcmV0", "alg": "HS256", "kid": "k"}, "private_member")
    _rejects({"kty": "oct", "alg": "HS256", "kid": "k"}, "unsupported_key")


def test_load_public_jwk_rejects_encryption_use() -> None:
    jwk = public_jwk(generate_private_key("EdDSA").public_key())
    jwk["use"] = "enc"
    _rejects(jwk, "wrong_use")


def test_load_public_jwk_rejects_members_of_another_key_type() -> None:
    jwk = public_jwk(generate_private_key("ES256").public_key())
    jwk["n"] = "AQAB"
    _rejects(jwk, "malformed_jwk")


def test_load_public_jwk_rejects_point_off_the_curve() -> None:
    jwk = public_jwk(generate_private_key("ES256").public_key())
    jwk["y"] = b64url_encode(b"\x01" * 32)
    _rejects(jwk, "invalid_key")


def test_load_public_jwk_rejects_short_coordinate() -> None:
    jwk = public_jwk(generate_private_key("ES256").public_key())
    jwk["x"] = b64url_encode(b"\x01" * 31)
    _rejects(jwk, "malformed_jwk")


@pytest.mark.parametrize("bad", ["AQAB=", "AQ+B", "AQ/B", "A", " AQAB", "AQ AB"])
def test_b64url_decode_rejects_padded_or_non_url_alphabet(bad: str) -> None:
    with pytest.raises(JWKError):
        b64url_decode(bad, member="e", max_chars=8)


def test_b64url_decode_rejects_non_canonical_trailing_bits() -> None:
    # "AR" decodes to b"\x01" but the canonical encoding of b"\x01" is "AQ".
    with pytest.raises(JWKError):
        b64url_decode("AR", member="e", max_chars=8)


def test_load_public_jwk_rejects_rsa_modulus_with_leading_zero(
    private_keys: dict[str, PrivateKey],
) -> None:
    jwk = public_jwk(private_keys["RS256"].public_key())
    jwk["n"] = b64url_encode(b"\x00" + b64url_decode(jwk["n"], member="n", max_chars=2000))
    _rejects(jwk, "malformed_jwk")


def test_load_public_jwk_rejects_oversized_member() -> None:
    jwk = {"kty": "RSA", "n": "A" * 5000, "e": "AQAB", "alg": "RS256", "kid": "k"}
    _rejects(jwk, "malformed_jwk")


def test_load_public_jwk_rejects_non_objects() -> None:
    _rejects(["kty", "EC"], "malformed_jwk")


def test_thumbprint_is_sha256_of_required_members_in_order() -> None:
    key = generate_private_key("EdDSA").public_key()
    jwk = public_jwk(key)
    canonical = f'{{"crv":"Ed25519","kty":"OKP","x":"{jwk["x"]}"}}'
    expected = b64url_encode(hashlib.sha256(canonical.encode()).digest())
    assert thumbprint(key) == expected


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=10,
)


@settings(max_examples=300, deadline=None)
@given(
    jwk=st.dictionaries(
        st.sampled_from(["kty", "crv", "x", "y", "n", "e", "alg", "use", "kid", "key_ops", "z"]),
        st.sampled_from(
            ["EC", "OKP", "RSA", "P-256", "Ed25519", "ES256", "EdDSA", "RS256", "sig", "AQAB"]
        )
        | _json_values,
    )
)
def test_load_public_jwk_raises_only_jwk_errors(jwk: dict[str, Any]) -> None:
    try:
        loaded = load_public_jwk(jwk)
    except JWKError as error:
        reason, message = error.reason, str(error)
    else:  # only a real public key gets through, and then its kid is its thumbprint
        reason, message = "accepted", loaded.kid
        assert thumbprint(loaded.key) == loaded.kid
    assert reason
    assert "\n" not in message


@pytest.mark.parametrize(("alg", "crv"), [("ES256", "P-256"), ("EdDSA", "Ed25519")])
def test_alg_inferred_from_kty_and_crv_when_allowed(
    alg: str, crv: str, private_keys: dict[str, PrivateKey]
) -> None:
    """RFC 7517 §4.4: ``alg`` is optional; P-256 means ES256 and Ed25519 means EdDSA."""
    jwk = public_jwk(private_keys[alg].public_key(), kid="k1")
    del jwk["alg"]
    assert jwk["crv"] == crv
    assert load_public_jwk(jwk, thumbprint_kid=False, infer=("ES256", "EdDSA")).alg == alg
    with pytest.raises(JWKError, match="no alg"):
        load_public_jwk(jwk, thumbprint_kid=False)


def test_rsa_alg_inferred_only_when_configured(private_keys: dict[str, PrivateKey]) -> None:
    """An RSA key does not say RS256 (it could be PS256): inferred only when configured."""
    jwk = public_jwk(private_keys["RS256"].public_key(), kid="k1")
    del jwk["alg"]
    with pytest.raises(JWKError, match="RS256 is not inferred"):
        load_public_jwk(jwk, thumbprint_kid=False, infer=("ES256", "EdDSA"))
    rs256: tuple[Algorithm, ...] = ("RS256",)
    assert load_public_jwk(jwk, thumbprint_kid=False, infer=rs256).alg == "RS256"


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_alg_outside_the_allow_list_is_refused(
    alg: str, private_keys: dict[str, PrivateKey]
) -> None:
    """A key whose (stated or inferred) alg is not allowed is refused."""
    jwk = public_jwk(private_keys[alg].public_key(), kid="k1")
    others = tuple(a for a in ALGORITHMS if a != alg)
    with pytest.raises(JWKError) as caught:
        load_public_jwk(jwk, thumbprint_kid=False, algorithms=others)
    assert caught.value.reason == "alg_not_allowed"
    del jwk["alg"]
    with pytest.raises(JWKError) as inferred:
        load_public_jwk(
            jwk,
            thumbprint_kid=False,
            algorithms=others,
            infer=ALGORITHMS,
        )
    assert inferred.value.reason == "alg_not_allowed"


def test_inference_does_not_override_a_stated_alg(private_keys: dict[str, PrivateKey]) -> None:
    """A stated ``alg`` that contradicts the key stays refused, inference or not."""
    jwk = public_jwk(private_keys["ES256"].public_key(), kid="k1")
    jwk["alg"] = "EdDSA"
    with pytest.raises(JWKError) as caught:
        load_public_jwk(jwk, thumbprint_kid=False, infer=ALGORITHMS)
    assert caught.value.reason == "alg_mismatch"


def test_inferred_p384_key_is_still_refused() -> None:
    """Inference takes ``kty`` EC as ES256, and the curve check still refuses P-384."""
    jwk: dict[str, Any] = json.loads(
        JWK.from_pyca(ec.generate_private_key(ec.SECP384R1()).public_key()).export_public()
    )
    jwk["kid"] = "k1"
    with pytest.raises(JWKError) as caught:
        load_public_jwk(jwk, thumbprint_kid=False, infer=ALGORITHMS)
    assert caught.value.reason == "wrong_curve"
