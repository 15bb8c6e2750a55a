"""The gateway as relying party: which bearer tokens it accepts, and how it learns new keys."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time

import pytest
import structlog
from aiohttp.test_utils import TestClient, TestServer
from gateway_testing import AUDIENCE, Gateway, error_body, issue_client_token

from broker import BrokerSettings, Sealer, make_audit_event
from gateway import AUTH_KEY, ISSUER_KEY, GatewaySettings, create_app
from gateway.auth import Principal
from keys import KeyRing, SigningKey, TokenSigner, generate_private_key, thumbprint
from keys.jwk import public_jwk

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _segments(header: dict[str, object], claims: dict[str, object]) -> str:
    return _b64(json.dumps(header).encode()) + "." + _b64(json.dumps(claims).encode())


def _kid(token: str) -> str:
    header = token.split(".")[0]
    return str(json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"])


def _claims(gateway: Gateway, **overrides: object) -> dict[str, object]:
    now = int(time.time())
    claims: dict[str, object] = {
        "iss": gateway.issuer.url,
        "sub": "alice",
        "aud": AUDIENCE,
        "client_id": "sealflow-cli",
        "scope": "jobs:read jobs:write",
        "roles": ["user"],
        "iat": now,
        "nbf": now,
        "exp": now + 300,
        "jti": "f" * 32,
    }
    claims.update(overrides)
    return claims


def _identity_key(gateway: Gateway) -> SigningKey:
    return KeyRing.load(gateway.issuer.keys_dir, "identity").signing_key()


async def _status(gateway: Gateway, token: str) -> int:
    response = await gateway.client.get("/api/jobs", headers={"Authorization": f"Bearer {token}"})
    return response.status


async def _rejected(gateway: Gateway, token: str) -> dict[str, object]:
    response = await gateway.client.get("/api/jobs", headers={"Authorization": f"Bearer {token}"})
    body = await error_body(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="sealflow", error="invalid_token"'
    return body


async def test_a_valid_token_is_accepted_and_a_missing_one_is_401(gateway: Gateway) -> None:
    assert await _status(gateway, gateway.issuer.token("alice", "user")) == 200
    response = await gateway.client.get("/api/jobs")
    await error_body(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="sealflow"'


async def test_a_token_from_the_real_token_endpoint_is_accepted(gateway: Gateway) -> None:
    token = await issue_client_token(gateway.issuer, "partner-system", "user")
    response = await gateway.client.get("/api/status", headers={"Authorization": f"Bearer {token}"})
    assert response.status == 200
    body = await response.json()
    assert body["subject"] == "partner-system"
    assert "jobs:write" in body["scopes"]


@pytest.mark.parametrize(
    "header",
    ["Basic YWxpY2U6cHc=", "Bearer", "Bearer a b", "bearer", "Token abc"],
)
async def test_malformed_authorization_headers_are_401(gateway: Gateway, header: str) -> None:
    response = await gateway.client.get("/api/jobs", headers={"Authorization": header})
    await error_body(response, 401, "unauthorized")


async def test_expired_token_is_401(gateway: Gateway) -> None:
    body = await _rejected(gateway, gateway.issuer.token(now=time.time() - 2_000))
    assert "expired" in str(body["detail"])


async def test_wrong_audience_is_401(gateway: Gateway) -> None:
    await _rejected(gateway, gateway.issuer.token(audience="another-api"))


async def test_wrong_issuer_is_401(gateway: Gateway) -> None:
    await _rejected(gateway, gateway.issuer.token(issuer="http://evil.example"))


async def test_alg_none_is_401(gateway: Gateway) -> None:
    kid = _identity_key(gateway).kid
    token = _segments({"alg": "none", "typ": "at+jwt", "kid": kid}, _claims(gateway)) + "."
    await _rejected(gateway, token)


async def test_hs256_signed_with_the_public_key_is_401(gateway: Gateway) -> None:
    """The classic key-confusion attack: HMAC keyed with the issuer's public JWK/PEM."""
    key = _identity_key(gateway)
    from cryptography.hazmat.primitives import serialization

    pem = key.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    for secret in (pem, json.dumps(public_jwk(key.private_key.public_key())).encode()):
        signing_input = _segments(
            {"alg": "HS256", "typ": "at+jwt", "kid": key.kid}, _claims(gateway)
        )
        mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        await _rejected(gateway, signing_input + "." + _b64(mac))


async def test_tampered_claims_are_401(gateway: Gateway) -> None:
    token = gateway.issuer.token("alice", "viewer")
    header, _, signature = token.split(".")
    forged = _b64(json.dumps(_claims(gateway, scope="jobs:read jobs:write jobs:admin")).encode())
    await _rejected(gateway, f"{header}.{forged}.{signature}")


async def test_an_id_token_is_not_an_access_token(gateway: Gateway) -> None:
    signer = TokenSigner(gateway.issuer.url, AUDIENCE)
    id_token = signer.id_token(
        _identity_key(gateway),
        subject="alice",
        client_id=AUDIENCE,  # even with the API as audience
        nonce="n",
        auth_time=int(time.time()),
        lifetime=300,
        extra={"scope": "jobs:read jobs:write", "client_id": AUDIENCE, "jti": "a" * 32},
    )
    body = await _rejected(gateway, id_token)
    assert "at+jwt" in str(body["detail"])


async def test_a_sealflow_envelope_is_not_an_access_token(gateway: Gateway) -> None:
    sealed = Sealer(_identity_key(gateway)).seal(
        make_audit_event(source="identity", type="user.login", action="login", outcome="success"),
        typ="audit.user.login",
        aud="audit",
        sub="alice",
    )
    await _rejected(gateway, sealed.token)


async def test_a_key_the_issuer_does_not_publish_is_401(gateway: Gateway) -> None:
    private = generate_private_key("ES256")
    rogue = SigningKey("identity", thumbprint(private.public_key()), "ES256", private)
    token, _ = TokenSigner(gateway.issuer.url, AUDIENCE).access_token(
        rogue, subject="alice", client_id="x", scope=["jobs:read"], roles=["user"]
    )
    await _rejected(gateway, token)


async def test_a_viewer_may_read_but_not_upload_and_the_refusal_says_which_scope(
    gateway: Gateway,
) -> None:
    assert (await gateway.client.get("/api/jobs", headers=gateway.auth("vera"))).status == 200
    response = await gateway.upload([("a.txt", "text/plain", b"hello")], who="vera")
    await error_body(response, 403, "insufficient_scope")
    assert 'error="insufficient_scope"' in response.headers["WWW-Authenticate"]
    assert 'scope="jobs:write"' in response.headers["WWW-Authenticate"]
    assert await gateway.all_jobs() == []
    assert gateway.blob_files() == []


async def test_a_repeated_token_is_verified_once(gateway: Gateway) -> None:
    token = gateway.issuer.token("alice", "user")
    authenticator = gateway.app[AUTH_KEY]
    first = await authenticator.authenticate(token)
    assert await authenticator.authenticate(token) is first


async def test_unknown_kid_refetches_once_per_interval_and_picks_up_a_rotation(
    gateway_settings: GatewaySettings, broker_settings: BrokerSettings, gateway: Gateway
) -> None:
    settings = gateway_settings.model_copy(update={"jwks_refetch_interval": 3600.0})
    app = create_app(settings, broker_settings=broker_settings)
    async with TestClient(TestServer(app)) as client:
        issuer_keys = app[ISSUER_KEY]

        async def call(token: str) -> int:
            headers = {"Authorization": f"Bearer {token}"}
            return (await client.get("/api/jobs", headers=headers)).status

        before = gateway.issuer.token()
        assert await call(before) == 200
        assert issuer_keys.fetches == 1

        ring = KeyRing.load(gateway.issuer.keys_dir, "identity")
        ring.add_next()
        ring.promote_next(grace_seconds=600)
        rotated = gateway.issuer.token()
        assert _kid(rotated) != _kid(before)
        assert await call(rotated) == 200  # the new kid was unknown: one refetch found it
        assert issuer_keys.fetches == 2

        private = generate_private_key("ES256")
        rogue = SigningKey("identity", thumbprint(private.public_key()), "ES256", private)
        for _ in range(5):
            token, _ = TokenSigner(gateway.issuer.url, AUDIENCE).access_token(
                rogue, subject="alice", client_id="x", scope=["jobs:read"], roles=["user"]
            )
            assert await call(token) == 401
        assert issuer_keys.fetches == 2  # made-up kids do not make us hammer the issuer


async def _raw_status(gateway: Gateway, token: bytes) -> int:
    """The status of ``GET /api/jobs`` sent with ``token`` as raw bytes (no client encoding)."""
    server = gateway.client.server
    reader, writer = await asyncio.open_connection(server.host, server.port)
    try:
        writer.write(
            b"GET /api/jobs HTTP/1.1\r\nHost: gateway\r\nConnection: close\r\n"
            b"Authorization: Bearer " + token + b"\r\n\r\n"
        )
        await writer.drain()
        async with asyncio.timeout(10):
            status_line = await reader.readline()
            await reader.read()
    finally:
        writer.close()
    return int(status_line.split()[1])


def _malformed_tokens(gateway: Gateway) -> dict[str, bytes]:
    token = gateway.issuer.token("alice", "user")
    header, payload, signature = token.split(".")
    canonical_last = _ALPHABET.index(signature[-1])
    return {
        "nested_header": _b64(b"[" * 5000).encode() + b".e30.c2ln",
        "non_ascii_payload": f"{header}.".encode() + "été".encode() + f".{signature}".encode(),
        "undecodable_payload": f"{header}.".encode() + b"e30\xff" + f".{signature}".encode(),
        "non_canonical_signature": (
            f"{header}.{payload}.{signature[:-1]}{_ALPHABET[canonical_last | 0b1]}".encode()
        ),
    }


_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


@pytest.mark.parametrize(
    "kind", ["nested_header", "non_ascii_payload", "undecodable_payload", "non_canonical_signature"]
)
async def test_a_malformed_token_is_401_with_one_short_log_line(
    gateway: Gateway, kind: str
) -> None:
    """Each of these was a 500 with a traceback per request (or, for a second spelling of a
    valid token, accepted and cached as another token)."""
    token = _malformed_tokens(gateway)[kind]
    assert await _raw_status(gateway, gateway.issuer.token().encode()) == 200  # keys fetched
    with structlog.testing.capture_logs() as logs:
        assert await _raw_status(gateway, token) == 401
    assert [entry["event"] for entry in logs] == ["auth.token_refused"]
    assert logs[0]["reason"] == "malformed"
    assert "exc_info" not in logs[0]
    assert len(repr(logs[0])) < 200


def test_the_audit_log_gets_every_token_jti_in_its_own_shape() -> None:
    """Our identity's 32-hex ``jti`` is kept; another provider's (longer, base64url) is hashed
    to 32 hex, so that a sign-in audit event can carry it (it failed validation before)."""
    ours = Principal("alice", "c", (), (), "0" * 31 + "a", 0)
    assert ours.audit_jti == ours.token_jti
    foreign = Principal("ada", "c", (), (), "Yx3J-8pQ_long-oidc-provider-jti-value-123456", 0)
    expected = hashlib.sha256(foreign.token_jti.encode()).hexdigest()[:32]
    assert foreign.audit_jti == expected
    make_audit_event(
        source="gateway",
        type="session.started",
        action="a",
        outcome="success",
        actor="ada",
        subject="ada",
        jti=foreign.audit_jti,
    )
