"""An independent client against our provider on a real localhost port: authlib's OAuth2
client does discovery, the code flow with PKCE S256 (driving the login form over HTTP),
refresh and revocation; joserfc verifies our ID and access tokens against our JWKS."""

from __future__ import annotations

import secrets
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx2
import pytest
from aiohttp import web
from authlib.common.security import generate_token
from authlib.integrations.base_client import OAuthError
from authlib.integrations.httpx_client import AsyncOAuth2Client
from identity_testing import PASSWORDS, REDIRECT, WEB, RecordingSink
from joserfc import jwt
from joserfc.jwk import KeySet

from identity import STORE_KEY, IdentitySettings, create_app
from keys import KeyRing

SCOPE = "openid offline_access jobs:read jobs:write"


class _FormReader(HTMLParser):
    """The action and fields of the page's form, read as a browser would."""

    def __init__(self) -> None:
        super().__init__()
        self.action = ""
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "form":
            self.action = values.get("action", "")
        elif tag == "input" and values.get("type") == "hidden":
            self.fields[values["name"]] = values.get("value", "")


@dataclass
class Served:
    issuer: str
    settings: IdentitySettings
    sink: RecordingSink


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    issuer = f"http://127.0.0.1:{sock.getsockname()[1]}"
    keys_dir = tmp_path / "keys"
    KeyRing.create(keys_dir, "identity")
    settings = IdentitySettings(issuer=issuer, data_dir=tmp_path / "data", keys_dir=keys_dir)
    sink = RecordingSink()
    app = create_app(settings, audit=sink)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    try:
        store = app[STORE_KEY]
        await store.add_user("alice", PASSWORDS["alice"], "user")
        await store.add_client(WEB, redirect_uris=[REDIRECT])
        yield Served(issuer, settings, sink)
    finally:
        await runner.cleanup()


async def _sign_in(browser: httpx2.AsyncClient, authorize_url: str) -> str:
    """GET the login page, fill in the form, POST it; the redirect's Location."""
    page = await browser.get(authorize_url)
    assert page.status_code == 200, page.text
    form = _FormReader()
    form.feed(page.text)
    assert "csrf_token" in form.fields
    data = form.fields | {"username": "alice", "password": PASSWORDS["alice"]}
    posted = await browser.post(urljoin(authorize_url, form.action), data=data)
    assert posted.status_code == 302, posted.text
    return posted.headers["location"]


def _verify(token: str, keys: KeySet, **claims: Any) -> jwt.Token:
    decoded = jwt.decode(token, keys, algorithms=["ES256", "EdDSA", "RS256"])
    registry = jwt.JWTClaimsRegistry(
        **{name: {"essential": True, "value": value} for name, value in claims.items()},
        exp={"essential": True},
        iat={"essential": True},
    )
    registry.validate(decoded.claims)
    return decoded


async def test_authlib_code_flow_refresh_and_revoke(served: Served) -> None:
    nonce = secrets.token_urlsafe(16)
    async with (
        AsyncOAuth2Client(
            client_id=WEB,
            redirect_uri=REDIRECT,
            scope=SCOPE,
            code_challenge_method="S256",
            token_endpoint_auth_method="none",
        ) as oauth,
        httpx2.AsyncClient(follow_redirects=False) as browser,
    ):
        meta = (
            await oauth.request(
                "GET", f"{served.issuer}/.well-known/openid-configuration", withhold_token=True
            )
        ).json()
        assert meta["issuer"] == served.issuer
        assert "S256" in meta["code_challenge_methods_supported"]

        verifier = generate_token(64)
        url, state = oauth.create_authorization_url(
            meta["authorization_endpoint"], code_verifier=verifier, nonce=nonce
        )
        assert "code_challenge=" in url
        location = await _sign_in(browser, url)
        query = parse_qs(urlsplit(location).query)
        assert query["state"] == [state]
        assert query["iss"] == [served.issuer]

        token = await oauth.fetch_token(
            meta["token_endpoint"], authorization_response=location, code_verifier=verifier
        )
        assert token["token_type"] == "Bearer"
        assert set(token["scope"].split()) == set(SCOPE.split())

        keys = KeySet.import_key_set(
            (await oauth.request("GET", meta["jwks_uri"], withhold_token=True)).json()
        )
        id_token = _verify(
            token["id_token"], keys, iss=served.issuer, aud=WEB, sub="alice", nonce=nonce
        )
        assert isinstance(id_token.claims["auth_time"], int)
        access = _verify(
            token["access_token"], keys, iss=served.issuer, aud="sealflow-gateway", sub="alice"
        )
        assert access.header["typ"] == "at+jwt"
        assert access.claims["client_id"] == WEB
        assert access.claims["exp"] - access.claims["iat"] <= 900

        info = await oauth.get(meta["userinfo_endpoint"])
        assert info.status_code == 200
        assert info.json()["sub"] == "alice"

        refreshed = await oauth.refresh_token(
            meta["token_endpoint"], refresh_token=token["refresh_token"]
        )
        assert refreshed["refresh_token"] != token["refresh_token"]
        _verify(refreshed["access_token"], keys, iss=served.issuer, aud="sealflow-gateway")

        revoked = await oauth.revoke_token(
            meta["revocation_endpoint"],
            token=refreshed["refresh_token"],
            token_type_hint="refresh_token",
        )
        assert revoked.status_code == 200
        with pytest.raises(OAuthError) as caught:
            await oauth.refresh_token(
                meta["token_endpoint"], refresh_token=refreshed["refresh_token"]
            )
        assert caught.value.error == "invalid_grant"


async def test_authlib_sees_a_wrong_verifier_refused(served: Served) -> None:
    async with (
        AsyncOAuth2Client(
            client_id=WEB,
            redirect_uri=REDIRECT,
            scope=SCOPE,
            code_challenge_method="S256",
            token_endpoint_auth_method="none",
        ) as oauth,
        httpx2.AsyncClient(follow_redirects=False) as browser,
    ):
        url, _ = oauth.create_authorization_url(
            f"{served.issuer}/authorize", code_verifier=generate_token(64)
        )
        location = await _sign_in(browser, url)
        with pytest.raises(OAuthError) as caught:
            await oauth.fetch_token(
                f"{served.issuer}/token",
                authorization_response=location,
                code_verifier=generate_token(64),
            )
        assert caught.value.error == "invalid_grant"
