"""Another OpenID provider as the issuer: Keycloak- and Auth0-shaped access tokens, signed by a
key whose JWKS a small issuer serves, are accepted with the right settings and upload a file."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient, TestServer
from gateway_testing import AUDIENCE
from oidc_testing import (
    AUTH0_ROLES_CLAIM,
    auth0_claims,
    foreign_jwks,
    foreign_key,
    keycloak_claims,
    serve_foreign_issuer,
    sign,
)

from broker import BrokerSettings
from gateway import GatewaySettings, create_app
from keys import SigningKey

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

KEYCLOAK_SETTINGS: dict[str, Any] = {
    "access_token_types": ("at+jwt", "application/at+jwt", "JWT"),
    "access_token_roles_claim": "realm_access.roles",
    "issuer_inferred_algorithms": ("ES256", "EdDSA", "RS256"),
}
AUTH0_SETTINGS: dict[str, Any] = {
    "access_token_types": ("at+jwt", "application/at+jwt", "JWT"),
    "access_token_roles_claim": AUTH0_ROLES_CLAIM,
    "access_token_max_lifetime": 86400,
}


@pytest.fixture(scope="module")
def rsa_key() -> SigningKey:
    return foreign_key("RS256", kid="Hq3ZpXKc1lY-provider")


async def _upload_status(
    gateway_settings: GatewaySettings,
    broker_settings: BrokerSettings,
    *,
    jwks: dict[str, Any],
    trailing_slash: bool,
    settings: dict[str, Any],
    token_for: Callable[[str], str],
) -> tuple[int, dict[str, Any]]:
    """Serve ``jwks`` as an issuer, run a gateway trusting it with ``settings``, upload once
    with ``token_for(iss)``; the status and JSON body."""
    async with serve_foreign_issuer(jwks, trailing_slash=trailing_slash) as provider:
        configured = gateway_settings.model_copy(update={"issuer": provider.url, **settings})
        app = create_app(configured, broker_settings=broker_settings)
        async with TestClient(TestServer(app)) as client:
            form = FormData()
            form.add_field(
                "file", b"hello harbour", filename="notes.txt", content_type="text/plain"
            )
            response = await client.post(
                "/api/jobs",
                data=form,
                headers={"Authorization": f"Bearer {token_for(provider.issuer)}"},
            )
            return response.status, await response.json()


@pytest.fixture
def upload(
    gateway_settings: GatewaySettings, broker_settings: BrokerSettings, cleanup_namespace: None
) -> Callable[..., Any]:
    """``_upload_status`` on this test's gateway settings and broker namespace."""

    async def run(**kwargs: Any) -> tuple[int, dict[str, Any]]:
        return await _upload_status(gateway_settings, broker_settings, **kwargs)

    return run


async def test_keycloak_token_uploads_with_keycloak_settings(
    upload: Callable[..., Any], rsa_key: SigningKey
) -> None:
    """typ JWT, azp, realm_access.roles, a JWKS without alg (RS256 inference configured)."""

    def token(iss: str) -> str:
        return sign(rsa_key, keycloak_claims(iss, AUDIENCE, int(time.time())))

    status, body = await upload(
        jwks=foreign_jwks(rsa_key, with_alg=False),
        trailing_slash=False,
        settings=KEYCLOAK_SETTINGS,
        token_for=token,
    )
    assert status == 202, body
    assert body["jobs"][0]["state"] == "queued"


async def test_keycloak_token_is_refused_with_default_settings(
    upload: Callable[..., Any], rsa_key: SigningKey
) -> None:
    """The defaults keep RFC 9068 typ only and do not guess RS256 for an RSA key."""

    def token(iss: str) -> str:
        return sign(rsa_key, keycloak_claims(iss, AUDIENCE, int(time.time())))

    for jwks in (foreign_jwks(rsa_key, with_alg=False), foreign_jwks(rsa_key)):
        status, body = await upload(jwks=jwks, trailing_slash=False, settings={}, token_for=token)
        assert status == 401, body


async def test_auth0_token_uploads_with_auth0_settings(
    upload: Callable[..., Any], rsa_key: SigningKey
) -> None:
    """An Auth0 tenant: issuer with a trailing slash, aud list, namespaced roles, 24 h tokens."""

    def token(iss: str) -> str:
        return sign(rsa_key, auth0_claims(iss, AUDIENCE, int(time.time())))

    status, body = await upload(
        jwks=foreign_jwks(rsa_key), trailing_slash=True, settings=AUTH0_SETTINGS, token_for=token
    )
    assert status == 202, body
    refused, _ = await upload(
        jwks=foreign_jwks(rsa_key),
        trailing_slash=True,
        settings={**AUTH0_SETTINGS, "access_token_max_lifetime": 900},
        token_for=token,
    )
    assert refused == 401


async def test_roles_from_the_configured_path_decide_admin_routes(
    gateway_settings: GatewaySettings,
    broker_settings: BrokerSettings,
    cleanup_namespace: None,
    rsa_key: SigningKey,
) -> None:
    """``realm_access.roles`` holding ``admin`` opens an admin route; a top-level ``roles``
    claim is then not read at all."""
    async with serve_foreign_issuer(foreign_jwks(rsa_key)) as provider:
        configured = gateway_settings.model_copy(
            update={"issuer": provider.url, **KEYCLOAK_SETTINGS}
        )
        app = create_app(configured, broker_settings=broker_settings)
        now = int(time.time())
        admin = keycloak_claims(provider.issuer, AUDIENCE, now, roles=["admin"])
        admin["scope"] += " jobs:admin"
        pretender = keycloak_claims(provider.issuer, AUDIENCE, now, roles=["user"])
        pretender["scope"] += " jobs:admin"
        pretender["roles"] = ["admin"]
        async with TestClient(TestServer(app)) as client:
            for claims, expected in ((admin, 200), (pretender, 403)):
                response = await client.get(
                    "/api/dlq",
                    headers={"Authorization": f"Bearer {sign(rsa_key, claims)}"},
                )
                assert response.status == expected, await response.text()
