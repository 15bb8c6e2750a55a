"""Discovery (``/.well-known/openid-configuration``) and the public keys (``/jwks.json``)."""

from __future__ import annotations

from aiohttp import web

from identity.clients import DEVICE_CODE_GRANT
from identity.context import KEYS_KEY, SETTINGS_KEY
from identity.roles import ROLE_SCOPES

__all__ = ["add_discovery_routes", "discovery", "jwks"]


async def discovery(request: web.Request) -> web.Response:
    """OpenID Connect Discovery 1.0: where everything is and what is supported."""
    settings = request.app[SETTINGS_KEY]
    issuer = settings.issuer_url
    alg = request.app[KEYS_KEY].signing_key().alg
    scopes = ["openid", "profile", "offline_access", *ROLE_SCOPES["admin"]]
    return web.json_response(
        {
            "issuer": issuer,
            "authorization_endpoint": f"{issuer}/authorize",
            "token_endpoint": f"{issuer}/token",
            "userinfo_endpoint": f"{issuer}/userinfo",
            "revocation_endpoint": f"{issuer}/revoke",
            "end_session_endpoint": f"{issuer}/end_session",
            "jwks_uri": f"{issuer}/jwks.json",
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "device_authorization_endpoint": f"{issuer}/device_authorization",
            "grant_types_supported": [
                "authorization_code",
                "refresh_token",
                "client_credentials",
                DEVICE_CODE_GRANT,
            ],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [alg],
            "token_endpoint_auth_methods_supported": [
                "client_secret_basic",
                "client_secret_post",
                "none",
            ],
            "revocation_endpoint_auth_methods_supported": [
                "client_secret_basic",
                "client_secret_post",
                "none",
            ],
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": scopes,
            "claims_supported": [
                "sub",
                "iss",
                "aud",
                "exp",
                "iat",
                "auth_time",
                "nonce",
                "preferred_username",
                "roles",
            ],
            "authorization_response_iss_parameter_supported": True,
        },
        headers={"Cache-Control": "public, max-age=300"},
    )


async def jwks(request: web.Request) -> web.Response:
    """The public keys ID and access tokens are signed with."""
    return web.json_response(
        request.app[KEYS_KEY].jwks(), headers={"Cache-Control": "public, max-age=60"}
    )


def add_discovery_routes(app: web.Application) -> None:
    """Register the discovery document and the JWKS."""
    app.router.add_get("/.well-known/openid-configuration", discovery)
    app.router.add_get("/jwks.json", jwks)
