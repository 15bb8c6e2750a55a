"""Attacks on sign-in not covered in test_app.py: open redirects and disabled users."""

from __future__ import annotations

import pytest
from identity_testing import REDIRECT, Provider, new_pkce

OPEN_REDIRECTS = {
    "other host": "https://evil.example/callback",
    "extra path": REDIRECT + "/../evil",
    "longer path": REDIRECT + "/more",
    "query added": REDIRECT + "?next=https://evil.example",
    "fragment added": REDIRECT + "#https://evil.example",
    "userinfo trick": "https://app.example@evil.example/callback",
    "host suffix": "https://app.example.evil.example/callback",
    "other scheme": "http://app.example/callback",
    "other port": "https://app.example:8443/callback",
    "upper-case host": "https://APP.example/callback",
    "trailing slash": REDIRECT + "/",
    "encoded slash": "https://app.example%2F@evil.example/callback",
    "backslash": "https://app.example\\@evil.example/callback",
    "javascript": "javascript:alert(1)//app.example/callback",
}


@pytest.mark.parametrize("uri", OPEN_REDIRECTS.values(), ids=OPEN_REDIRECTS.keys())
async def test_open_redirect_attempts_are_refused_without_redirecting(
    provider: Provider, uri: str
) -> None:
    params = provider.authorize_params(new_pkce(), redirect_uri=uri)
    page = await provider.http.get("/authorize", params=params, allow_redirects=False)
    assert page.status == 400
    assert "Location" not in page.headers
    assert "redirect_uri is not registered" in await page.text()
    # the form's POST is held to the same rule, even with valid credentials
    form = params | {"csrf_token": "x", "username": "alice", "password": "correct horse"}
    posted = await provider.http.post("/authorize", data=form, allow_redirects=False)
    assert posted.status == 400
    assert "Location" not in posted.headers


async def test_a_disabled_user_cannot_sign_in(provider: Provider) -> None:
    await provider.store.set_user_disabled("alice", True)
    response = await provider.login(new_pkce())
    assert response.status == 401
    assert "Location" not in response.headers
    assert "invalid username or password" in await response.text()


async def test_a_disabled_user_cannot_refresh(provider: Provider) -> None:
    tokens = await provider.tokens()
    await provider.store.set_user_disabled("alice", True)
    response = await provider.refresh(tokens["refresh_token"])
    assert response.status == 400
    assert (await response.json())["error"] == "invalid_grant"
    # enabling the user again does not bring the revoked session back
    await provider.store.set_user_disabled("alice", False)
    again = await provider.refresh(tokens["refresh_token"])
    assert again.status == 400


async def test_a_disabled_user_gets_no_tokens_from_a_device_approved_before(
    provider: Provider,
) -> None:
    started = await provider.device_authorization()
    assert (await provider.device_decide(started["user_code"])).status == 200
    await provider.store.set_user_disabled("alice", True)
    provider.clock.advance(5)
    response = await provider.poll(started["device_code"])
    assert response.status == 400
    assert (await response.json())["error"] == "invalid_grant"


async def test_a_viewer_role_change_applies_at_the_next_refresh(provider: Provider) -> None:
    tokens = await provider.tokens()
    assert "jobs:write" in tokens["scope"].split()
    await provider.store.set_user_role("alice", "viewer")
    refreshed = await (await provider.refresh(tokens["refresh_token"])).json()
    assert "jobs:write" not in refreshed["scope"].split()
