"""Service tokens: a gateway's token for the audit API verifies, and every kind of wrong one is
refused with its own reason."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from joserfc import jws
from joserfc.jwk import KeySet

from keys import (
    ACCESS_TOKEN_TYP,
    SERVICE_TOKEN_TYP,
    KeyRing,
    SigningKey,
    TokenError,
    TrustStore,
    VerificationKey,
    issue_service_token,
    request_digest,
    verify_service_token,
)
from keys.jose import encode_token

REQUEST = request_digest("GET", "/v1/records?limit=10")


@pytest.fixture
def rings(tmp_path: Path) -> dict[str, SigningKey]:
    return {
        service: KeyRing.create(tmp_path, service).signing_key()
        for service in ("gateway", "worker", "audit")
    }


@pytest.fixture
def trusted(tmp_path: Path, rings: dict[str, SigningKey]) -> list[VerificationKey]:
    return TrustStore.from_rings(tmp_path, tuple(rings)).verification_keys()


def _verify(token: str, keys: list[VerificationKey], **kwargs: Any) -> Any:
    return verify_service_token(
        token, keys, issuer="gateway", audience="audit", scope="audit:read", **kwargs
    )


def _claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": "gateway",
        "sub": "gateway",
        "aud": "audit",
        "scope": "audit:read",
        "iat": now,
        "nbf": now,
        "exp": now + 30,
        "jti": "a" * 32,
        "req": REQUEST,
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def test_a_gateway_token_for_the_audit_api_verifies(rings, trusted) -> None:
    token = issue_service_token(
        rings["gateway"], audience="audit", scope=["audit:read"], request=REQUEST, actor="root"
    )
    claims = _verify(token, trusted)
    assert (claims.issuer, claims.audience, claims.request, claims.actor) == (
        "gateway",
        "audit",
        REQUEST,
        "root",
    )
    assert claims.expires_at - claims.issued_at == 30
    assert len(claims.jti) == 32


def test_an_independent_jose_library_verifies_the_token_and_its_typ(rings, tmp_path) -> None:
    token = issue_service_token(rings["gateway"], audience="audit", scope=["a"], request=REQUEST)
    jwks = KeyRing.load(tmp_path, "gateway").jwks()
    obj = jws.deserialize_compact(token, KeySet.import_key_set(jwks), algorithms=["ES256"])
    assert obj.protected["typ"] == SERVICE_TOKEN_TYP


def test_request_digests_differ_by_method_and_target() -> None:
    assert request_digest("GET", "/v1/records?limit=1") != request_digest(
        "GET", "/v1/records?limit=2"
    )
    assert request_digest("get", "/a") == request_digest("GET", "/a")
    assert request_digest("POST", "/a") != request_digest("GET", "/a")


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"aud": "gateway"}, "wrong_audience"),
        ({"aud": ["audit", "worker"]}, "wrong_audience"),
        ({"iss": "identity"}, "wrong_issuer"),
        ({"scope": "jobs:read"}, "scope_missing"),
        ({"scope": None}, "scope_missing"),
        ({"exp": int(time.time()) - 60, "iat": int(time.time()) - 90}, "expired"),
        ({"exp": int(time.time()) + 3600}, "lifetime_too_long"),
        ({"jti": None}, "invalid"),
        ({"jti": "not-hex"}, "invalid"),
        ({"req": None}, "invalid"),
        ({"sub": "root"}, "invalid"),
        ({"exp": None}, "invalid"),
    ],
)
def test_a_wrong_claim_is_refused(rings, trusted, overrides, reason) -> None:
    token = encode_token(rings["gateway"], _claims(**overrides), SERVICE_TOKEN_TYP)
    with pytest.raises(TokenError) as caught:
        _verify(token, trusted)
    assert caught.value.reason == reason


@pytest.mark.parametrize("typ", [ACCESS_TOKEN_TYP, "sealflow-envelope+jwt", "JWT"])
def test_a_token_of_another_typ_is_refused(rings, trusted, typ) -> None:
    token = encode_token(rings["gateway"], _claims(), typ)
    with pytest.raises(TokenError) as caught:
        _verify(token, trusted)
    assert caught.value.reason == "wrong_typ"


def test_another_services_key_never_verifies_a_gateway_token(rings, trusted) -> None:
    token = encode_token(rings["worker"], _claims(), SERVICE_TOKEN_TYP)
    with pytest.raises(TokenError) as caught:
        _verify(token, trusted)
    assert caught.value.reason == "unknown_kid"


def test_an_expired_token_is_refused_past_the_leeway_only(rings, trusted) -> None:
    token = issue_service_token(
        rings["gateway"], audience="audit", scope=["audit:read"], request=REQUEST
    )
    claims = _verify(token, trusted)
    assert _verify(token, trusted, now=claims.expires_at + 4, leeway=5)
    with pytest.raises(TokenError) as caught:
        _verify(token, trusted, now=claims.expires_at + 5, leeway=5)
    assert caught.value.reason == "expired"


def test_lifetimes_are_bounded_when_issuing(rings) -> None:
    with pytest.raises(ValueError, match="lifetime"):
        issue_service_token(
            rings["gateway"], audience="audit", scope=["audit:read"], request=REQUEST, lifetime=61
        )
