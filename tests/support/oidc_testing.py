"""Other OpenID providers' access tokens, as they really lay out their claims, for relying-party
tests: Keycloak's (JOSE ``typ`` ``JWT``, ``azp``, ``realm_access.roles``) and Auth0's (``azp``,
an ``aud`` list, ``permissions`` and namespaced roles), and a small issuer serving a JWKS.

Claim layouts follow tokens as Keycloak 24 and Auth0 issue them (values are made up).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

from keys import SigningKey, generate_private_key, public_jwk
from keys.jose import encode_token

AUTH0_ROLES_CLAIM = "https://sealflow.example/roles"


def foreign_key(alg: str = "RS256", kid: str = "provider-key-1") -> SigningKey:
    """A provider's signing key, named freely (not by thumbprint) as providers do."""
    return SigningKey(
        service="identity",
        kid=kid,
        alg=alg,  # type: ignore[arg-type]
        private_key=generate_private_key(alg),  # type: ignore[arg-type]
    )


def foreign_jwks(key: SigningKey, *, with_alg: bool = True) -> dict[str, list[dict[str, str]]]:
    """The provider's JWKS of ``key``; ``with_alg=False`` drops ``alg`` (Keycloak may)."""
    jwk = public_jwk(key.private_key.public_key(), kid=key.kid)
    if not with_alg:
        del jwk["alg"]
    return {"keys": [jwk]}


def keycloak_claims(
    issuer: str, audience: str, now: int, *, roles: Sequence[str] = ("user",), lifetime: int = 300
) -> dict[str, Any]:
    """A Keycloak access token's claims (an audience mapper adds ``audience``)."""
    return {
        "exp": now + lifetime,
        "iat": now,
        "auth_time": now - 5,
        "jti": str(uuid.uuid4()),
        "iss": issuer,
        "aud": [audience, "account"],
        "sub": "0f4c2a3e-5b1d-4e07-9d84-3c2b1a0e9f11",
        "typ": "Bearer",
        "azp": "sealflow-web",
        "sid": str(uuid.uuid4()),
        "acr": "1",
        "allowed-origins": ["http://127.0.0.1"],
        "realm_access": {"roles": [*roles, "offline_access", "default-roles-sealflow"]},
        "resource_access": {"account": {"roles": ["manage-account", "view-profile"]}},
        "scope": "openid profile email jobs:read jobs:write",
        "email_verified": True,
        "preferred_username": "alice",
    }


def auth0_claims(
    issuer: str, audience: str, now: int, *, roles: Sequence[str] = ("user",), lifetime: int = 86400
) -> dict[str, Any]:
    """An Auth0 access token's claims (RBAC on: ``permissions``; roles by a namespaced rule)."""
    return {
        AUTH0_ROLES_CLAIM: list(roles),
        "iss": issuer,
        "sub": "auth0|65a1b2c3d4e5f6a7b8c9d0e1",
        "aud": [audience, issuer + "userinfo"],
        "iat": now,
        "exp": now + lifetime,
        "azp": "Xk2mV9pQ7rT4sW1yZ3bN6cD8fG0hJ5lA",
        "scope": "openid profile email jobs:read jobs:write",
        "permissions": ["jobs:read", "jobs:write"],
        "jti": uuid.uuid4().hex,
    }


def sign(key: SigningKey, claims: Mapping[str, Any], typ: str = "JWT") -> str:
    """``claims`` signed by the provider's ``key`` with JOSE header ``typ``."""
    return encode_token(key, claims, typ)


@dataclass
class ForeignIssuer:
    """A provider's discovery document and JWKS served on localhost."""

    url: str
    """The base URL the issuer is served at (no trailing slash)."""
    issuer: str
    """The ``issuer`` the discovery document names (Auth0's ends with ``/``)."""


@asynccontextmanager
async def serve_foreign_issuer(
    jwks: Mapping[str, Any], *, trailing_slash: bool = False
) -> AsyncIterator[ForeignIssuer]:
    """Serve discovery + ``jwks`` on a free localhost port until the block ends."""
    state: dict[str, str] = {}

    async def discovery(request: web.Request) -> web.Response:
        return web.json_response(
            {"issuer": state["issuer"], "jwks_uri": state["url"] + "/jwks.json"}
        )

    async def keys(request: web.Request) -> web.Response:
        return web.json_response(dict(jwks))

    app = web.Application()
    app.router.add_get("/.well-known/openid-configuration", discovery)
    app.router.add_get("/jwks.json", keys)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    state["url"] = str(server.make_url("")).rstrip("/")
    state["issuer"] = state["url"] + ("/" if trailing_slash else "")
    try:
        yield ForeignIssuer(url=state["url"], issuer=state["issuer"])
    finally:
        await server.close()
