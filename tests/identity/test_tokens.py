"""Token signing and verification: typ, algorithm allow-list, lifetime, keys, rotation."""

from __future__ import annotations

import time
from pathlib import Path

import jwt as pyjwt
import pytest

from identity import InvalidToken, KeySource, TokenSigner, verify_access_token, verify_id_token
from keys import KeyRing

ISS = "https://id.example"
AUD = "sealflow-gateway"


@pytest.fixture
def ring(tmp_path: Path) -> KeyRing:
    return KeyRing.create(tmp_path, "identity")


def _access(ring: KeyRing, **kwargs: object) -> str:
    token, _ = TokenSigner(ISS, AUD).access_token(
        ring.signing_key(),
        subject="alice",
        client_id="web",
        scope=["jobs:read"],
        roles=["viewer"],
        **kwargs,  # type: ignore[arg-type]
    )
    return token


def test_round_trip_and_header(ring: KeyRing) -> None:
    token = _access(ring)
    header = pyjwt.get_unverified_header(token)
    assert header == {"alg": "ES256", "kid": ring.signing_key().kid, "typ": "at+jwt"}
    claims = verify_access_token(token, ring.verification_keys(), issuer=ISS, audience=AUD)
    assert claims.subject == "alice"
    assert claims.expires_at - claims.issued_at == 900


@pytest.mark.parametrize("alg", ["EdDSA", "RS256"])
def test_other_algorithms(tmp_path: Path, alg: str) -> None:
    ring = KeyRing.create(tmp_path, "identity", alg)  # type: ignore[arg-type]
    verify_access_token(_access(ring), ring.verification_keys(), issuer=ISS, audience=AUD)


def test_rejections(ring: KeyRing, tmp_path: Path) -> None:
    keys = ring.verification_keys()
    now = time.time()
    with pytest.raises(InvalidToken):
        verify_access_token(_access(ring, now=now - 1000), keys, issuer=ISS, audience=AUD)
    with pytest.raises(InvalidToken):
        verify_access_token(_access(ring), keys, issuer="https://other", audience=AUD)
    other = KeyRing.create(tmp_path / "other", "identity")
    with pytest.raises(InvalidToken):
        verify_access_token(_access(other), keys, issuer=ISS, audience=AUD)
    unsigned = pyjwt.encode(
        {
            "iss": ISS,
            "aud": AUD,
            "sub": "x",
            "iat": int(now),
            "exp": int(now) + 60,
            "client_id": "web",
            "jti": "j",
        },
        None,
        algorithm="none",
        headers={"typ": "at+jwt", "kid": ring.signing_key().kid},
    )
    with pytest.raises(InvalidToken):
        verify_access_token(unsigned, keys, issuer=ISS, audience=AUD)
    key = ring.signing_key()
    too_long = pyjwt.encode(
        {
            "iss": ISS,
            "aud": AUD,
            "sub": "x",
            "iat": int(now),
            "exp": int(now) + 3600,
            "client_id": "web",
            "jti": "j",
        },
        key.private_key,
        algorithm="ES256",
        headers={"typ": "at+jwt", "kid": key.kid},
    )
    with pytest.raises(InvalidToken):
        verify_access_token(too_long, keys, issuer=ISS, audience=AUD)
    with pytest.raises(InvalidToken):
        verify_access_token("x" * 10_000, keys, issuer=ISS, audience=AUD)


def test_id_token_nonce(ring: KeyRing) -> None:
    token = TokenSigner(ISS, AUD).id_token(
        ring.signing_key(),
        subject="alice",
        client_id="web",
        nonce="n1",
        auth_time=5,
        lifetime=300,
    )
    keys = ring.verification_keys()
    assert verify_id_token(token, keys, issuer=ISS, client_id="web", nonce="n1")["auth_time"] == 5
    with pytest.raises(InvalidToken):
        verify_id_token(token, keys, issuer=ISS, client_id="web", nonce="n2")
    with pytest.raises(InvalidToken):
        verify_id_token(token, keys, issuer=ISS, client_id="other", nonce="n1")


def test_lifetime_bounded() -> None:
    with pytest.raises(ValueError, match="lifetime"):
        TokenSigner(ISS, AUD, access_lifetime=901)


def test_key_source_picks_up_rotation(tmp_path: Path) -> None:
    KeyRing.create(tmp_path, "identity")
    source = KeySource(tmp_path)
    first = source.signing_key().kid
    ring = KeyRing.load(tmp_path, "identity")
    ring.add_next()
    ring.promote_next(grace_seconds=60)
    assert source.signing_key().kid != first
    assert first in {key.kid for key in source.verification_keys()}
