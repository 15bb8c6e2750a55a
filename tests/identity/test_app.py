"""The identity provider end to end over HTTP, on a test server with fresh keys."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import pytest
from aiohttp import ClientResponse, encode_basic_auth
from aiohttp.test_utils import TestClient, TestServer
from jwcrypto import jwk, jwt

from identity import (
    STORE_KEY,
    IdentitySettings,
    InvalidToken,
    create_app,
    verify_access_token,
    verify_id_token,
)
from keys import KeyRing

REDIRECT = "https://app.example/callback"
PUBLIC = "sealflow-web"
CONFIDENTIAL = "sealflow-bff"
CONFIDENTIAL_SECRET = "bff-secret-value"
SERVICE = "sealflow-worker"
SERVICE_SECRET = "worker-secret-value"


@dataclass
class Pkce:
    verifier: str
    challenge: str


def basic(client_id: str, secret: str) -> dict[str, str]:
    return {"Authorization": encode_basic_auth(client_id, secret)}


def new_pkce() -> Pkce:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return Pkce(verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode())


@pytest.fixture
def settings(identity_settings: IdentitySettings) -> IdentitySettings:
    """The provider's settings (``identity_settings`` of the conftest)."""
    return identity_settings


@pytest.fixture
async def client(settings: IdentitySettings) -> AsyncIterator[TestClient]:
    app = create_app(settings)
    async with TestClient(TestServer(app)) as test_client:
        store = app[STORE_KEY]
        await store.add_user("alice", "correct horse", "user")
        await store.add_user("root", "admin password", "admin")
        await store.add_client(PUBLIC, redirect_uris=[REDIRECT])
        await store.add_client(CONFIDENTIAL, secret=CONFIDENTIAL_SECRET, redirect_uris=[REDIRECT])
        await store.add_client(
            SERVICE, secret=SERVICE_SECRET, grant_types=["client_credentials"], role="user"
        )
        yield test_client


def authorize_params(pkce: Pkce | None, **extra: str) -> dict[str, str]:
    params = {
        "response_type": "code",
        "client_id": PUBLIC,
        "redirect_uri": REDIRECT,
        "scope": "openid jobs:read jobs:write",
        "state": "st-123",
        "nonce": "n-456",
    }
    if pkce is not None:
        params |= {"code_challenge": pkce.challenge, "code_challenge_method": "S256"}
    params.update(extra)
    return params


async def login(
    client: TestClient,
    params: dict[str, str],
    username: str = "alice",
    password: str = "correct horse",
) -> ClientResponse:
    page = await client.get("/authorize", params=params)
    assert page.status == 200, await page.text()
    html = await page.text()
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert csrf is not None
    form = dict(params) | {"csrf_token": csrf.group(1), "username": username, "password": password}
    return await client.post("/authorize", data=form, allow_redirects=False)


def redirect_query(response: ClientResponse) -> dict[str, str]:
    assert response.status == 302
    location = response.headers["Location"]
    assert location.startswith(REDIRECT + "?")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


async def get_code(client: TestClient, pkce: Pkce | None, **extra: str) -> str:
    response = await login(client, authorize_params(pkce, **extra))
    query = redirect_query(response)
    assert query["state"] == "st-123"
    return query["code"]


async def exchange(
    client: TestClient, code: str, verifier: str | None, **extra: str
) -> ClientResponse:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "client_id": PUBLIC,
    }
    if verifier is not None:
        form["code_verifier"] = verifier
    form.update(extra)
    return await client.post("/token", data=form)


async def test_discovery_and_jwks(client: TestClient, settings: IdentitySettings) -> None:
    response = await client.get("/.well-known/openid-configuration")
    assert response.status == 200
    doc = await response.json()
    assert doc["issuer"] == "http://localhost:8081"
    assert doc["jwks_uri"] == "http://localhost:8081/jwks.json"
    assert doc["token_endpoint"] == "http://localhost:8081/token"
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert "authorization_code" in doc["grant_types_supported"]
    jwks = await (await client.get("/jwks.json")).json()
    ring = KeyRing.load(settings.keys_dir, "identity")
    assert [key["kid"] for key in jwks["keys"]] == [ring.signing_key().kid]
    assert all("d" not in key for key in jwks["keys"])


async def test_code_flow_with_pkce_verified_by_jwcrypto(client: TestClient) -> None:
    pkce = new_pkce()
    code = await get_code(client, pkce)
    response = await exchange(client, code, pkce.verifier)
    assert response.status == 200, await response.text()
    assert response.headers["Cache-Control"] == "no-store"
    body = await response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] <= 900
    assert set(body["scope"].split()) == {"openid", "jobs:read", "jobs:write"}
    assert body["refresh_token"]

    keyset = jwk.JWKSet.from_json(await (await client.get("/jwks.json")).text())
    access = jwt.JWT(jwt=body["access_token"], key=keyset, algs=["ES256"], expected_type="JWS")
    header = json.loads(access.header)
    assert header["typ"] == "at+jwt"
    assert keyset.get_key(header["kid"]) is not None
    claims = json.loads(access.claims)
    assert claims["iss"] == "http://localhost:8081"
    assert claims["aud"] == "sealflow-gateway"
    assert claims["sub"] == "alice"
    assert claims["client_id"] == PUBLIC
    assert claims["roles"] == ["user"]
    assert claims["exp"] - claims["iat"] <= 900
    assert claims["jti"]

    id_token = jwt.JWT(jwt=body["id_token"], key=keyset, algs=["ES256"], expected_type="JWS")
    id_claims = json.loads(id_token.claims)
    assert id_claims["aud"] == PUBLIC
    assert id_claims["nonce"] == "n-456"
    assert isinstance(id_claims["auth_time"], int)

    info = await client.get(
        "/userinfo", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert info.status == 200
    assert (await info.json())["sub"] == "alice"


async def test_tokens_verify_with_own_verifier(
    client: TestClient, settings: IdentitySettings
) -> None:
    pkce = new_pkce()
    body = await (await exchange(client, await get_code(client, pkce), pkce.verifier)).json()
    keys = KeyRing.load(settings.keys_dir, "identity").verification_keys()
    claims = verify_access_token(
        body["access_token"], keys, issuer="http://localhost:8081", audience="sealflow-gateway"
    )
    assert claims.has_scope("jobs:write")
    assert (
        verify_id_token(
            body["id_token"], keys, issuer="http://localhost:8081", client_id=PUBLIC, nonce="n-456"
        )["sub"]
        == "alice"
    )
    with pytest.raises(InvalidToken):
        verify_access_token(
            body["id_token"], keys, issuer="http://localhost:8081", audience="sealflow-gateway"
        )
    with pytest.raises(InvalidToken):
        verify_access_token(
            body["access_token"], keys, issuer="http://localhost:8081", audience="other"
        )


async def test_viewer_cannot_get_write_scope(client: TestClient) -> None:
    await client.app[STORE_KEY].add_user("vic", "viewer password", "viewer")
    pkce = new_pkce()
    response = await login(client, authorize_params(pkce), "vic", "viewer password")
    code = redirect_query(response)["code"]
    body = await (await exchange(client, code, pkce.verifier)).json()
    assert body["scope"].split() == ["openid", "jobs:read"]


async def test_wrong_password_shows_form_again(client: TestClient) -> None:
    response = await login(client, authorize_params(new_pkce()), password="wrong")
    assert response.status == 401
    text = await response.text()
    assert "invalid username or password" in text
    assert "Location" not in response.headers
    response = await login(client, authorize_params(new_pkce()), username="nobody")
    assert response.status == 401


async def test_login_without_csrf_is_refused(client: TestClient) -> None:
    form = authorize_params(new_pkce()) | {"username": "alice", "password": "correct horse"}
    response = await client.post("/authorize", data=form, allow_redirects=False)
    assert response.status == 400


async def test_form_values_are_escaped(client: TestClient) -> None:
    response = await client.get(
        "/authorize", params=authorize_params(new_pkce(), state='"><script>')
    )
    text = await response.text()
    assert "<script>" not in text
    assert "&quot;&gt;&lt;script&gt;" in text


async def test_public_client_needs_pkce(client: TestClient) -> None:
    response = await client.get("/authorize", params=authorize_params(None), allow_redirects=False)
    query = redirect_query(response)
    assert query["error"] == "invalid_request"
    assert query["state"] == "st-123"


async def test_unregistered_redirect_uri_is_not_followed(client: TestClient) -> None:
    params = authorize_params(new_pkce(), redirect_uri="https://evil.example/cb")
    response = await client.get("/authorize", params=params, allow_redirects=False)
    assert response.status == 400
    assert "Location" not in response.headers


async def test_code_reuse_fails_and_revokes_refresh(client: TestClient) -> None:
    pkce = new_pkce()
    code = await get_code(client, pkce)
    first = await (await exchange(client, code, pkce.verifier)).json()
    again = await exchange(client, code, pkce.verifier)
    assert again.status == 400
    assert (await again.json())["error"] == "invalid_grant"
    refreshed = await client.post(
        "/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": first["refresh_token"],
            "client_id": PUBLIC,
        },
    )
    assert refreshed.status == 400


async def test_wrong_verifier(client: TestClient) -> None:
    pkce = new_pkce()
    code = await get_code(client, pkce)
    response = await exchange(client, code, new_pkce().verifier)
    assert response.status == 400
    body = await response.json()
    assert body["error"] == "invalid_grant"
    assert body["error_description"]
    # the code is spent even though the verifier was wrong
    assert (await exchange(client, code, pkce.verifier)).status == 400


async def test_missing_verifier(client: TestClient) -> None:
    pkce = new_pkce()
    response = await exchange(client, await get_code(client, pkce), None)
    assert (await response.json())["error"] == "invalid_grant"


async def test_redirect_uri_mismatch_at_token(client: TestClient) -> None:
    pkce = new_pkce()
    code = await get_code(client, pkce)
    response = await exchange(client, code, pkce.verifier, redirect_uri=REDIRECT + "/other")
    assert response.status == 400
    assert (await response.json())["error"] == "invalid_grant"


async def test_code_bound_to_client(client: TestClient) -> None:
    pkce = new_pkce()
    code = await get_code(client, pkce)
    response = await client.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "code_verifier": pkce.verifier,
        },
        headers=basic(CONFIDENTIAL, CONFIDENTIAL_SECRET),
    )
    assert (await response.json())["error"] == "invalid_grant"


async def test_expired_code(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    pkce = new_pkce()
    code = await get_code(client, pkce)
    store = client.app[STORE_KEY]
    real = time.time
    monkeypatch.setattr(store, "_clock", lambda: real() + 61)
    response = await exchange(client, code, pkce.verifier)
    assert (await response.json())["error"] == "invalid_grant"


async def test_refresh_rotation_and_reuse_revokes_family(client: TestClient) -> None:
    pkce = new_pkce()
    first = await (await exchange(client, await get_code(client, pkce), pkce.verifier)).json()

    async def refresh(token: str) -> ClientResponse:
        return await client.post(
            "/token",
            data={"grant_type": "refresh_token", "refresh_token": token, "client_id": PUBLIC},
        )

    second_response = await refresh(first["refresh_token"])
    assert second_response.status == 200, await second_response.text()
    second = await second_response.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]

    reuse = await refresh(first["refresh_token"])
    assert reuse.status == 400
    assert (await reuse.json())["error"] == "invalid_grant"
    # the whole family is gone: the newest token no longer works either
    latest = await refresh(second["refresh_token"])
    assert latest.status == 400
    # and access tokens of the family are refused by userinfo
    info = await client.get(
        "/userinfo", headers={"Authorization": f"Bearer {second['access_token']}"}
    )
    assert info.status == 401


async def test_refresh_bound_to_client(client: TestClient) -> None:
    pkce = new_pkce()
    first = await (await exchange(client, await get_code(client, pkce), pkce.verifier)).json()
    response = await client.post(
        "/token",
        data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
        headers=basic(CONFIDENTIAL, CONFIDENTIAL_SECRET),
    )
    assert (await response.json())["error"] == "invalid_grant"


async def test_confidential_client_code_flow(client: TestClient) -> None:
    pkce = new_pkce()
    code = await get_code(client, pkce, client_id=CONFIDENTIAL)
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "code_verifier": pkce.verifier,
    }
    wrong = await client.post("/token", data=data, headers=basic(CONFIDENTIAL, "nope"))
    assert wrong.status == 401
    assert (await wrong.json())["error"] == "invalid_client"
    assert "WWW-Authenticate" in wrong.headers
    ok = await client.post("/token", data=data, headers=basic(CONFIDENTIAL, CONFIDENTIAL_SECRET))
    # the wrong-secret attempt failed before the code was touched
    assert ok.status == 200, await ok.text()


async def test_client_credentials(client: TestClient, settings: IdentitySettings) -> None:
    response = await client.post(
        "/token",
        data={"grant_type": "client_credentials", "scope": "jobs:read jobs:admin"},
        headers=basic(SERVICE, SERVICE_SECRET),
    )
    assert response.status == 200, await response.text()
    body = await response.json()
    assert body["scope"] == "jobs:read"
    assert "refresh_token" not in body
    keys = KeyRing.load(settings.keys_dir, "identity").verification_keys()
    claims = verify_access_token(
        body["access_token"], keys, issuer="http://localhost:8081", audience="sealflow-gateway"
    )
    assert claims.subject == SERVICE
    assert claims.roles == ("user",)
    post = await client.post(
        "/token",
        data={
            "grant_type": "client_credentials",
            "client_id": SERVICE,
            "client_secret": SERVICE_SECRET,
        },
    )
    assert post.status == 200
    public = await client.post(
        "/token", data={"grant_type": "client_credentials", "client_id": PUBLIC}
    )
    assert (await public.json())["error"] == "unauthorized_client"
    wrong = await client.post(
        "/token", data={"grant_type": "client_credentials"}, headers=basic(SERVICE, "bad")
    )
    assert wrong.status == 401


async def test_unsupported_grant_and_missing_params(client: TestClient) -> None:
    response = await client.post("/token", data={"grant_type": "password", "client_id": PUBLIC})
    assert response.status == 400
    assert (await response.json())["error"] == "unsupported_grant_type"
    response = await client.post("/token", data={"client_id": PUBLIC})
    assert (await response.json())["error"] == "invalid_request"


async def test_revoke_refresh_and_access(client: TestClient) -> None:
    pkce = new_pkce()
    body = await (await exchange(client, await get_code(client, pkce), pkce.verifier)).json()
    response = await client.post(
        "/revoke", data={"token": body["refresh_token"], "client_id": PUBLIC}
    )
    assert response.status == 200
    refreshed = await client.post(
        "/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": body["refresh_token"],
            "client_id": PUBLIC,
        },
    )
    assert refreshed.status == 400
    # unknown tokens are not an error (RFC 7009 §2.2)
    unknown = await client.post("/revoke", data={"token": "nothing", "client_id": PUBLIC})
    assert unknown.status == 200


async def test_revoke_access_token(client: TestClient) -> None:
    response = await client.post(
        "/token", data={"grant_type": "client_credentials"}, headers=basic(SERVICE, SERVICE_SECRET)
    )
    access = (await response.json())["access_token"]
    revoke = await client.post(
        "/revoke", data={"token": access}, headers=basic(SERVICE, SERVICE_SECRET)
    )
    assert revoke.status == 200
    assert await client.app[STORE_KEY].is_jti_revoked(
        json.loads(base64.urlsafe_b64decode(access.split(".")[1] + "==").decode())["jti"]
    )


async def test_userinfo_requires_bearer(client: TestClient) -> None:
    response = await client.get("/userinfo")
    assert response.status == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    response = await client.get("/userinfo", headers={"Authorization": "Bearer x.y.z"})
    assert response.status == 401


@pytest.mark.parametrize("attack", ["nested_header", "non_ascii_payload"])
async def test_userinfo_answers_a_malformed_token_401_not_500(
    client: TestClient, attack: str
) -> None:
    """A deeply nested JOSE header (RecursionError) or a non-ASCII payload behind a genuine
    header (UnicodeEncodeError) was a 500 with a traceback."""
    response = await client.post(
        "/token", data={"grant_type": "client_credentials"}, headers=basic(SERVICE, SERVICE_SECRET)
    )
    header, _, signature = (await response.json())["access_token"].split(".")
    token = {
        "nested_header": base64.urlsafe_b64encode(b"[" * 5000).rstrip(b"=").decode() + ".e30.c2ln",
        "non_ascii_payload": f"{header}.\u00e9t\u00e9.{signature}",
    }[attack]
    response = await client.get("/userinfo", headers={"Authorization": f"Bearer {token}"})
    assert response.status == 401
