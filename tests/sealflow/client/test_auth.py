"""Silent refresh, client credentials and logout, against the OAuth test peer."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest

from sealflow.client import (
    Authenticator,
    ClientError,
    ClientSettings,
    LoginRequired,
    TokenCache,
    TransportError,
)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def _auth(settings: ClientSettings, http: aiohttp.ClientSession) -> Authenticator:
    return Authenticator(settings, http)


async def test_a_fresh_token_is_used_as_it_is(identity_peer, settings, cache, http) -> None:
    tokens = identity_peer.token_set(expires_at=time.time() + 600)
    cache.save(tokens)
    assert await _auth(settings, http).access_token() == tokens.access_token
    assert identity_peer.refreshes == 0


async def test_a_token_near_expiry_is_refreshed_and_the_rotated_token_saved(
    identity_peer, settings, cache, http
) -> None:
    old = identity_peer.token_set(expires_at=time.time() + 30)
    cache.save(old)
    token = await _auth(settings, http).access_token()
    assert token != old.access_token
    assert identity_peer.refreshes == 1
    saved = cache.load()
    assert saved is not None
    assert saved.access_token == token
    assert saved.refresh_token not in (None, old.refresh_token)
    assert saved.refresh_token in identity_peer.live_refresh
    assert saved.subject == "alice"
    assert saved.expires_at > time.time() + 800
    refresh_form = next(form for path, form in identity_peer.requests if path == "/token")
    assert refresh_form == {
        "grant_type": "refresh_token",
        "refresh_token": old.refresh_token,
        "client_id": "sealflow-cli",
    }


async def test_renewing_after_a_rejection_refreshes_once(
    identity_peer, settings, cache, http
) -> None:
    tokens = identity_peer.token_set(expires_at=time.time() + 600)
    cache.save(tokens)
    auth = _auth(settings, http)
    renewed = await auth.renew(tokens.access_token)
    assert renewed != tokens.access_token
    # a second process that was refused the same old token takes the renewed one, no refresh
    assert await _auth(settings, http).renew(tokens.access_token) == renewed
    assert identity_peer.refreshes == 1


async def test_a_refused_refresh_says_run_login(identity_peer, settings, cache, http) -> None:
    cache.save(identity_peer.token_set(expires_at=time.time() - 5))
    identity_peer.refresh_fails_with = "invalid_grant"
    with pytest.raises(LoginRequired, match=r"invalid_grant.*run sealflow login"):
        await _auth(settings, http).access_token()


async def test_an_expired_token_without_refresh_token(identity_peer, settings, cache, http) -> None:
    tokens = identity_peer.token_set(expires_at=time.time() - 5).model_copy(
        update={"refresh_token": None}
    )
    cache.save(tokens)
    with pytest.raises(LoginRequired, match=r"expired.*run sealflow login"):
        await _auth(settings, http).access_token()


async def test_an_unreachable_provider_keeps_a_still_valid_token(
    identity_peer, settings, cache, http
) -> None:
    tokens = identity_peer.token_set(expires_at=time.time() + 30)
    cache.save(tokens)
    offline = settings.model_copy(update={"issuer": "http://127.0.0.1:9"})
    cache.save(tokens.model_copy(update={"issuer": offline.issuer}))
    assert await _auth(offline, http).access_token() == tokens.access_token


async def test_not_signed_in(settings, http) -> None:
    with pytest.raises(LoginRequired, match="not signed in; run sealflow login"):
        await _auth(settings, http).access_token()


async def test_a_cache_for_another_issuer_is_not_used(identity_peer, settings, cache, http) -> None:
    cache.save(
        identity_peer.token_set(expires_at=time.time() + 600).model_copy(
            update={"issuer": "https://other.example"}
        )
    )
    with pytest.raises(LoginRequired, match=r"https://other\.example.*run sealflow login"):
        await _auth(settings, http).access_token()


async def test_client_credentials_instead_of_the_cache(
    identity_peer, script_settings, cache, http
) -> None:
    script = script_settings
    auth = _auth(script, http)
    token = await auth.access_token()
    assert token in identity_peer.live_access
    assert await auth.access_token() == token  # kept in memory while fresh
    assert await auth.renew(token) != token
    assert cache.load() is None
    assert not script.config_dir.exists()
    grants = [form["grant_type"] for path, form in identity_peer.requests if path == "/token"]
    assert grants == ["client_credentials", "client_credentials"]


async def test_wrong_client_credentials(identity_peer, script_settings, http) -> None:
    script = ClientSettings.model_validate(
        script_settings.model_dump() | {"client_secret": "wrong"}
    )
    with pytest.raises(LoginRequired, match="SEALFLOW_CLIENT_SECRET"):
        await _auth(script, http).access_token()


async def test_logout_revokes_the_refresh_token_then_deletes_the_cache(
    identity_peer, settings, cache, http
) -> None:
    tokens = identity_peer.token_set(expires_at=time.time() + 600)
    cache.save(tokens)
    assert await _auth(settings, http).logout() is True
    assert identity_peer.revoked == [tokens.refresh_token]
    revoke = next(form for path, form in identity_peer.requests if path == "/revoke")
    assert revoke["token_type_hint"] == "refresh_token"
    assert revoke["client_id"] == "sealflow-cli"
    assert cache.load() is None
    assert await _auth(settings, http).logout() is False


async def test_a_failed_revocation_keeps_the_cache(identity_peer, settings, cache, http) -> None:
    tokens = identity_peer.token_set(expires_at=time.time() + 600)
    cache.save(tokens)
    identity_peer.revoke_status = 503
    with pytest.raises(ClientError):
        await _auth(settings, http).logout()
    assert cache.load() == tokens
    assert _auth(settings, http).forget() is True
    assert cache.load() is None


async def test_an_unreachable_provider_is_one_line(settings, http, cache: TokenCache) -> None:
    offline = settings.model_copy(update={"issuer": "http://127.0.0.1:9"})
    with pytest.raises(
        TransportError, match=r"cannot reach the identity provider at http://127.0.0.1:9"
    ):
        await _auth(offline, http).oidc.metadata()


async def test_concurrent_refreshes_spend_the_refresh_token_once(
    identity_peer, settings, cache, http
) -> None:
    """Two processes near expiry at once: the lock makes the second take the first's tokens."""
    cache.save(identity_peer.token_set(expires_at=time.time() + 10))
    first = Authenticator(settings, http, cache=TokenCache(settings.token_file))
    second = Authenticator(settings, http, cache=TokenCache(settings.token_file))
    tokens = await asyncio.gather(first.access_token(), second.access_token())
    assert tokens[0] == tokens[1]
    assert identity_peer.refreshes == 1
    assert identity_peer.spent_refresh  # spent once, never presented again
