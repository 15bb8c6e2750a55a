"""The minimal end-session endpoint (OIDC RP-Initiated Logout): the ID token hint's sign-in is
revoked, and the browser goes back only to the client's own origin."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from identity_testing import WEB, Provider


async def test_discovery_names_the_end_session_endpoint(provider: Provider) -> None:
    document = await (await provider.http.get("/.well-known/openid-configuration")).json()
    assert document["end_session_endpoint"] == f"{provider.settings.issuer_url}/end_session"


async def test_the_id_token_carries_the_sign_in_as_sid(provider: Provider) -> None:
    tokens = await provider.tokens()
    refreshed = await (await provider.refresh(tokens["refresh_token"])).json()
    from keys import KeyRing, verify_id_token

    keys = KeyRing.load(provider.settings.keys_dir, "identity").verification_keys()
    first = verify_id_token(
        tokens["id_token"], keys, issuer=provider.settings.issuer_url, client_id=WEB, nonce="n-1"
    )
    second = verify_id_token(
        refreshed["id_token"], keys, issuer=provider.settings.issuer_url, client_id=WEB, nonce=None
    )
    assert first["sid"] == second["sid"]


async def test_end_session_revokes_the_sign_in_and_returns_to_the_client(
    provider: Provider,
) -> None:
    tokens = await provider.tokens()
    response = await provider.http.get(
        "/end_session",
        params={
            "id_token_hint": tokens["id_token"],
            "client_id": WEB,
            "post_logout_redirect_uri": "https://app.example/signed-out",
            "state": "bye",
        },
        allow_redirects=False,
    )
    assert response.status == 302
    location = urlsplit(response.headers["Location"])
    assert (location.netloc, location.path) == ("app.example", "/signed-out")
    assert parse_qs(location.query) == {"state": ["bye"]}
    refused = await provider.refresh(tokens["refresh_token"])
    assert refused.status == 400
    userinfo = await provider.http.get(
        "/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert userinfo.status == 401
    ended = (await provider.audit()).of_type("session.ended")
    assert [(e.outcome, e.subject) for e in ended] == [("success", "alice")]


async def test_end_session_after_the_hint_expired_still_revokes(provider: Provider) -> None:
    tokens = await provider.tokens()
    provider.clock.advance(provider.settings.id_token_lifetime + 60)
    response = await provider.http.get(
        "/end_session", params={"id_token_hint": tokens["id_token"], "client_id": WEB}
    )
    assert response.status == 200
    assert "You are signed out" in await response.text()
    assert (await provider.refresh(tokens["refresh_token"])).status == 400


async def test_end_session_never_redirects_elsewhere(provider: Provider) -> None:
    tokens = await provider.tokens()
    for target in ("https://evil.example/", "//evil.example/", "https://app.example.evil/"):
        response = await provider.http.get(
            "/end_session",
            params={
                "id_token_hint": tokens["id_token"],
                "client_id": WEB,
                "post_logout_redirect_uri": target,
            },
            allow_redirects=False,
        )
        assert response.status == 200, target
        assert "Location" not in response.headers


async def test_end_session_without_a_valid_hint_revokes_nothing(provider: Provider) -> None:
    tokens = await provider.tokens()
    for hint in (None, "not.a.token", tokens["access_token"]):
        params = {"client_id": WEB, "post_logout_redirect_uri": "https://app.example/signed-out"}
        if hint is not None:
            params["id_token_hint"] = hint
        response = await provider.http.get("/end_session", params=params, allow_redirects=False)
        assert response.status == 200
        assert "Location" not in response.headers
    assert (await provider.refresh(tokens["refresh_token"])).status == 200
    ended = (await provider.audit()).of_type("session.ended")
    assert {e.outcome for e in ended} == {"failure"}
