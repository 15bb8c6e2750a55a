"""Reading the issuer's discovery document and JWKS: bounded, cached, and refused when odd."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from broker import RevocationList
from gateway import Authenticator, IssuerError, IssuerKeys
from gateway.errors import Unauthorized, Unavailable
from keys import KeyRing, SigningKey, TokenSigner, generate_private_key, public_jwk
from schemas import Revocation


@dataclass
class FakeClock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Provider:
    """A small OIDC-shaped server whose answers a test can change."""

    jwks: dict[str, Any]
    issuer_override: str | None = None
    jwks_uri_override: str | None = None
    discovery_extra: dict[str, str] = field(default_factory=dict)
    status: int = 200
    hang: asyncio.Event = field(default_factory=asyncio.Event)
    hanging: bool = False
    server: TestServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("")).rstrip("/")


@pytest.fixture
async def provider(tmp_path: Path) -> AsyncIterator[Provider]:
    ring = KeyRing.create(tmp_path / "keys", "identity")
    state = Provider(jwks=ring.jwks())

    async def discovery(request: web.Request) -> web.Response:
        return web.json_response(
            {
                "issuer": state.issuer_override or state.url,
                "jwks_uri": state.jwks_uri_override or f"{state.url}/jwks.json",
                **state.discovery_extra,
            }
        )

    async def jwks(request: web.Request) -> web.StreamResponse:
        if state.hanging:
            await state.hang.wait()
        if state.status != 200:
            return web.Response(status=state.status)
        return web.json_response(state.jwks)

    app = web.Application()
    app.router.add_get("/.well-known/openid-configuration", discovery)
    app.router.add_get("/jwks.json", jwks)
    state.server = TestServer(app)
    await state.server.start_server()
    try:
        yield state
    finally:
        state.hang.set()
        await state.server.close()


async def test_keys_are_fetched_once_and_cached(provider: Provider) -> None:
    clock = FakeClock()
    keys = IssuerKeys(provider.url, cache_seconds=60, clock=clock)
    try:
        first = await keys.keys()
        assert len(first) == 1
        assert await keys.keys() is first
        assert keys.fetches == 1
        clock.now += 61
        await keys.keys()
        assert keys.fetches == 2
    finally:
        await keys.close()


async def test_a_failed_periodic_refresh_keeps_the_keys_held(provider: Provider) -> None:
    clock = FakeClock()
    keys = IssuerKeys(provider.url, cache_seconds=60, clock=clock)
    try:
        held = await keys.keys()
        provider.status = 500
        clock.now += 61
        assert await keys.keys() == held
    finally:
        await keys.close()


async def test_unknown_kid_refetch_is_rate_limited(provider: Provider) -> None:
    clock = FakeClock()
    keys = IssuerKeys(provider.url, refetch_interval=30, clock=clock)
    try:
        seen = await keys.keys()
        assert await keys.refresh_for_unknown_kid(seen) is True
        assert keys.fetches == 2
        assert await keys.refresh_for_unknown_kid(keys.current()) is False
        assert keys.fetches == 2
        # a request that checked against older keys just retries with the new ones
        assert await keys.refresh_for_unknown_kid(seen) is True
        assert keys.fetches == 2
        clock.now += 31
        assert await keys.refresh_for_unknown_kid(keys.current()) is True
        assert keys.fetches == 3
    finally:
        await keys.close()


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"issuer_override": "http://evil.example"}, "issuer_mismatch"),
        ({"jwks_uri_override": "file:///etc/passwd"}, "bad_document"),
        ({"status": 404}, "http_status"),
        ({"jwks": {"keys": "nope"}}, "bad_document"),
        ({"jwks": {"keys": [{"kty": "oct", "k": "c2VjcmV0"}] * 65}}, "bad_document"),
    ],
)
async def test_odd_documents_are_refused(
    provider: Provider, change: dict[str, Any], reason: str
) -> None:
    for name, value in change.items():
        setattr(provider, name, value)
    keys = IssuerKeys(provider.url)
    try:
        with pytest.raises(IssuerError) as caught:
            await keys.keys()
        assert caught.value.reason == reason
    finally:
        await keys.close()


async def test_private_or_symmetric_jwks_entries_are_skipped(provider: Provider) -> None:
    good = provider.jwks["keys"][0]
    provider.jwks = {
        "keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"}, {**good, "d": "x"}, good]
    }
    keys = IssuerKeys(provider.url)
    try:
        assert [key.kid for key in await keys.keys()] == [good["kid"]]
    finally:
        await keys.close()


async def test_an_oversized_jwks_is_refused(provider: Provider) -> None:
    provider.jwks = {"keys": [], "padding": "x" * 10_000}
    keys = IssuerKeys(provider.url, max_bytes=4096)
    try:
        with pytest.raises(IssuerError) as caught:
            await keys.keys()
        assert caught.value.reason == "too_large"
    finally:
        await keys.close()


async def test_a_hanging_issuer_times_out_and_the_gateway_answers_503(provider: Provider) -> None:
    provider.hanging = True
    keys = IssuerKeys(provider.url, timeout=0.2)
    try:
        with pytest.raises(IssuerError) as caught:
            await keys.keys()
        assert caught.value.reason == "unreachable"
        with pytest.raises(Unavailable):
            await Authenticator(keys, audience="api").authenticate("a.b.c")
    finally:
        await keys.close()


def _token(
    provider: Provider, ring_dir: Path, subject: str = "alice", now: float | None = None
) -> str:
    key = KeyRing.load(ring_dir, "identity").signing_key()
    token, _ = TokenSigner(provider.url, "api", access_lifetime=60).access_token(
        key, subject=subject, client_id="c", scope=["jobs:read"], roles=["user"], now=now
    )
    return token


async def test_the_principal_cache_is_bounded_and_ends_at_exp(
    provider: Provider, tmp_path: Path
) -> None:
    keys = IssuerKeys(provider.url)
    authenticator = Authenticator(keys, audience="api", max_entries=2, leeway=0)
    try:
        tokens = [_token(provider, tmp_path / "keys", f"user{n}") for n in range(3)]
        for token in tokens:
            assert (await authenticator.authenticate(token)).subject in {"user0", "user1", "user2"}
        assert len(authenticator._cache) == 2
        later = time.time() + 120  # past exp: the cached principal is not used any more
        with pytest.raises(Unauthorized):
            await authenticator.authenticate(tokens[-1], now=later)
    finally:
        await keys.close()


async def test_a_revoked_subject_is_refused_even_when_cached(
    provider: Provider, tmp_path: Path
) -> None:
    keys = IssuerKeys(provider.url)
    revocations = RevocationList()
    authenticator = Authenticator(keys, audience="api", revocations=revocations)
    try:
        token = _token(provider, tmp_path / "keys")
        await authenticator.authenticate(token)
        revocations.add(
            Revocation(
                revocation_id="e" * 32,
                kind="sub",
                value="alice",
                reason="left the company",
                issued_at=datetime.now(UTC),
            )
        )
        with pytest.raises(Unauthorized):
            await authenticator.authenticate(token)
    finally:
        await keys.close()


async def test_another_providers_freely_named_key_is_accepted(
    provider: Provider,
) -> None:
    """Keycloak or Auth0 name their keys as they like: the gateway takes the JWKS as published."""
    private = generate_private_key("RS256")
    provider.jwks = {"keys": [{**public_jwk(private.public_key(), kid="kc-rsa-2026"), "x5t": "x"}]}
    signing = SigningKey(service="identity", kid="kc-rsa-2026", alg="RS256", private_key=private)
    token, _ = TokenSigner(provider.url, "api", access_lifetime=60).access_token(
        signing, subject="carol", client_id="c", scope=["jobs:read"], roles=["user"]
    )
    keys = IssuerKeys(provider.url)
    try:
        principal = await Authenticator(keys, audience="api").authenticate(token)
        assert principal.subject == "carol"
        assert [key.kid for key in keys.current()] == ["kc-rsa-2026"]
    finally:
        await keys.close()


PUBLIC_ISSUER = "https://sso.example.test"
"""A public issuer URL nothing here can reach: only the internal URL is ever fetched."""


def _public_token(ring_dir: Path, issuer: str) -> str:
    key = KeyRing.load(ring_dir, "identity").signing_key()
    token, _ = TokenSigner(issuer, "api", access_lifetime=60).access_token(
        key, subject="dave", client_id="c", scope=["jobs:read"], roles=["user"]
    )
    return token


async def test_keys_are_fetched_from_the_internal_url_while_iss_is_the_public_issuer(
    provider: Provider, tmp_path: Path
) -> None:
    """Discovery names the public issuer and a jwks_uri under it: both come from the internal
    URL (the jwks_uri rewritten), and tokens are accepted with ``iss`` = the public issuer."""
    provider.issuer_override = PUBLIC_ISSUER
    provider.jwks_uri_override = f"{PUBLIC_ISSUER}/jwks.json"
    keys = IssuerKeys(PUBLIC_ISSUER, internal_url=provider.url + "/", timeout=2.0)
    try:
        token = _public_token(tmp_path / "keys", PUBLIC_ISSUER)
        principal = await Authenticator(keys, audience="api").authenticate(token)
        assert principal.subject == "dave"
        assert keys.fetches == 1
    finally:
        await keys.close()


async def test_a_token_issued_under_the_internal_url_is_refused(
    provider: Provider, tmp_path: Path
) -> None:
    """``iss`` is checked against the public issuer, never against the internal address."""
    provider.issuer_override = PUBLIC_ISSUER
    keys = IssuerKeys(PUBLIC_ISSUER, internal_url=provider.url, timeout=2.0)
    try:
        token = _public_token(tmp_path / "keys", provider.url)
        with pytest.raises(Unauthorized):
            await Authenticator(keys, audience="api").authenticate(token)
    finally:
        await keys.close()


async def test_discovery_naming_the_internal_url_as_issuer_is_refused(provider: Provider) -> None:
    """The internal URL only says where to fetch: the document must still name the public
    issuer (OIDC Discovery §4.3)."""
    keys = IssuerKeys(PUBLIC_ISSUER, internal_url=provider.url, timeout=2.0)
    try:
        with pytest.raises(IssuerError) as caught:
            await keys.keys()
        assert caught.value.reason == "issuer_mismatch"
    finally:
        await keys.close()


def test_the_gateway_setting_defaults_to_the_public_issuer() -> None:
    """``SEALFLOW_ISSUER_INTERNAL_URL`` unset: discovery is fetched from ``SEALFLOW_ISSUER``."""
    from gateway.settings import GatewaySettings

    settings = GatewaySettings(issuer=PUBLIC_ISSUER + "/")
    assert (
        IssuerKeys(settings.issuer_url, internal_url=settings.issuer_internal_url).internal_url
        == PUBLIC_ISSUER
    )
    internal = GatewaySettings(issuer=PUBLIC_ISSUER, issuer_internal_url="http://identity:8081")
    assert (
        IssuerKeys(internal.issuer_url, internal_url=internal.issuer_internal_url).internal_url
        == "http://identity:8081"
    )


async def test_the_browser_client_uses_the_internal_url_for_back_channel_calls_only(
    provider: Provider,
) -> None:
    """The sign-in pages' relying party reads discovery and redeems codes via the internal URL;
    the endpoints a browser is sent to (authorize, end session) stay on the public issuer."""
    from gateway.web.oidc import OidcClient
    from gateway.web.settings import WebSettings

    provider.issuer_override = PUBLIC_ISSUER
    provider.discovery_extra = {
        "authorization_endpoint": f"{PUBLIC_ISSUER}/authorize",
        "token_endpoint": f"{PUBLIC_ISSUER}/token",
        "revocation_endpoint": f"{PUBLIC_ISSUER}/revoke",
        "end_session_endpoint": f"{PUBLIC_ISSUER}/end_session",
    }
    keys = IssuerKeys(PUBLIC_ISSUER, internal_url=provider.url, timeout=2.0)
    client = OidcClient(PUBLIC_ISSUER, keys, WebSettings(url="http://localhost:8080"))
    try:
        found = await client.discovery()
        assert found.authorization_endpoint == f"{PUBLIC_ISSUER}/authorize"
        assert found.end_session_endpoint == f"{PUBLIC_ISSUER}/end_session"
        assert found.token_endpoint == f"{provider.url}/token"
        assert found.revocation_endpoint == f"{provider.url}/revoke"
    finally:
        await client.close()
        await keys.close()


async def test_auth0_style_issuer_with_trailing_slash(provider: Provider, tmp_path: Path) -> None:
    """Auth0's discovery names ``https://tenant/``: accepted for the setting without the
    slash, and tokens must then carry ``iss`` exactly as discovery names it."""
    provider.issuer_override = provider.url + "/"
    keys = IssuerKeys(provider.url, timeout=2.0)
    try:
        with_slash = _public_token(tmp_path / "keys", provider.url + "/")
        principal = await Authenticator(keys, audience="api").authenticate(with_slash)
        assert principal.subject == "dave"
        assert keys.token_issuer == provider.url + "/"
        with pytest.raises(Unauthorized, match="another issuer"):
            await Authenticator(keys, audience="api").authenticate(
                _public_token(tmp_path / "keys", provider.url)
            )
    finally:
        await keys.close()


async def test_the_browser_client_accepts_an_issuer_with_a_trailing_slash(
    provider: Provider, tmp_path: Path
) -> None:
    """The sign-in's relying party takes Auth0's ``https://tenant/`` for the setting without the
    slash (it refused it as ``issuer_mismatch`` before), then wants that exact ``iss`` in the
    callback and in ID tokens."""
    from gateway.web.oidc import OidcClient, OidcError
    from gateway.web.settings import WebSettings

    provider.issuer_override = provider.url + "/"
    provider.discovery_extra = {
        "authorization_endpoint": f"{provider.url}/authorize",
        "token_endpoint": f"{provider.url}/token",
    }
    keys = IssuerKeys(provider.url, timeout=2.0)
    settings = WebSettings(url="http://localhost:8080")
    client = OidcClient(provider.url, keys, settings)
    key = KeyRing.load(tmp_path / "keys", "identity").signing_key()

    def id_token(issuer: str) -> str:
        return TokenSigner(issuer, "api").id_token(
            key,
            subject="dave",
            client_id=settings.client_id,
            nonce="n",
            auth_time=int(time.time()),
            lifetime=60,
        )

    try:
        assert (await client.discovery()).issuer == provider.url + "/"
        assert await client.is_issuer(provider.url + "/")
        assert not await client.is_issuer(provider.url)
        claims = await client.verify_id_token(id_token(provider.url + "/"), nonce="n")
        assert claims["sub"] == "dave"
        with pytest.raises(OidcError):
            await client.verify_id_token(id_token(provider.url), nonce="n")
    finally:
        await client.close()
        await keys.close()


async def test_jwk_without_alg_is_inferred_or_skipped(provider: Provider, tmp_path: Path) -> None:
    """A JWKS whose keys lack ``alg``: an EC key is taken as ES256, an RSA key only when RS256
    inference is configured, and keys outside the allow-list are skipped."""
    ec_jwk = dict(provider.jwks["keys"][0])
    del ec_jwk["alg"]
    rsa_private = generate_private_key("RS256")
    rsa_jwk = public_jwk(rsa_private.public_key(), kid="rsa-no-alg")
    del rsa_jwk["alg"]
    provider.jwks = {"keys": [ec_jwk, rsa_jwk]}
    default = IssuerKeys(provider.url, timeout=2.0)
    with_rsa = IssuerKeys(provider.url, timeout=2.0, inferred_algorithms=("ES256", "RS256"))
    only_rsa = IssuerKeys(
        provider.url, timeout=2.0, algorithms=("RS256",), inferred_algorithms=("ES256", "RS256")
    )
    try:
        assert [(k.kid, k.alg) for k in await default.keys()] == [(ec_jwk["kid"], "ES256")]
        assert [k.alg for k in await with_rsa.keys()] == ["ES256", "RS256"]
        assert [k.kid for k in await only_rsa.keys()] == ["rsa-no-alg"]
        token = _public_token(tmp_path / "keys", provider.url)
        assert (await Authenticator(default, audience="api").authenticate(token)).subject == "dave"
        with pytest.raises(Unauthorized, match="unknown signing key"):
            await Authenticator(only_rsa, audience="api").authenticate(token)
    finally:
        for keys in (default, with_rsa, only_rsa):
            await keys.close()


def test_gateway_settings_build_the_access_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    """The ``SEALFLOW_ACCESS_TOKEN_*`` variables become the authenticator's policy; the
    defaults are RFC 9068's, with ES256/EdDSA inference only."""
    from gateway import GatewaySettings

    default = GatewaySettings()
    assert default.access_policy.types == ("at+jwt", "application/at+jwt")
    assert default.access_policy.max_lifetime == 900
    assert default.issuer_inferred_algorithms == ("ES256", "EdDSA")
    monkeypatch.setenv("SEALFLOW_ACCESS_TOKEN_TYPES", '["at+jwt", "JWT"]')
    monkeypatch.setenv("SEALFLOW_ACCESS_TOKEN_ROLES_CLAIM", "realm_access.roles")
    monkeypatch.setenv("SEALFLOW_ACCESS_TOKEN_MAX_LIFETIME", "3600")
    monkeypatch.setenv("SEALFLOW_ACCESS_TOKEN_AZP_FALLBACK", "false")
    monkeypatch.setenv("SEALFLOW_ISSUER_INFERRED_ALGORITHMS", '["RS256"]')
    policy = GatewaySettings().access_policy
    assert policy.types == ("at+jwt", "JWT")
    assert policy.roles_path() == ("realm_access", "roles")
    assert policy.max_lifetime == 3600
    assert policy.azp_fallback is False
    assert GatewaySettings().issuer_inferred_algorithms == ("RS256",)
    for name, value in [
        ("SEALFLOW_ACCESS_TOKEN_TYPES", "[]"),
        ("SEALFLOW_ACCESS_TOKEN_MAX_LIFETIME", "0"),
        ("SEALFLOW_ISSUER_INFERRED_ALGORITHMS", '["HS256"]'),
    ]:
        monkeypatch.setenv(name, value)
        with pytest.raises(ValueError, match="validation error"):
            GatewaySettings()
        monkeypatch.delenv(name)
