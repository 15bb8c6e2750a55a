"""What the identity revokes reaches the other services (issue 11.6): a token revoked at
``/revoke``, a sign-in ended or revoked on reuse, each broadcast as ``jti`` revocations; and a
revoked refresh token presented again is refused without a false reuse alarm (issue 11.13)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from identity_testing import WEB, FakeClock, Provider, RecordingRevocations

from identity import (
    REVOCATIONS_KEY,
    AccessClaims,
    IdentityStore,
    KeySource,
    verify_access_token,
)
from schemas import Revocation


async def _sent(provider: Provider) -> RecordingRevocations:
    """The recording sink, once every queued revocation has reached it."""
    outbox = provider.http.app[REVOCATIONS_KEY]
    await asyncio.wait_for(outbox.drain(), 10)
    sink = outbox.sink
    assert isinstance(sink, RecordingRevocations)
    return sink


def _claims(provider: Provider, access_token: str) -> AccessClaims:
    """The verified claims of one of the provider's access tokens."""
    keys = KeySource(provider.settings.keys_dir).verification_keys()
    return verify_access_token(
        access_token,
        keys,
        issuer=provider.settings.issuer_url,
        audience=provider.settings.api_audience,
        now=provider.clock.now,
    )


def _lapses_after_the_token(revocation: Revocation, claims: AccessClaims) -> None:
    """The revocation outlives the token, by at most two minutes."""
    assert revocation.until is not None
    assert claims.expires_at < revocation.until.timestamp() <= claims.expires_at + 120


async def test_revoking_an_access_token_broadcasts_its_jti(provider: Provider) -> None:
    """The gateway checks access tokens on its own; /revoke used to only write the database."""
    tokens = await provider.tokens()
    claims = _claims(provider, tokens["access_token"])
    revoked = await provider.http.post(
        "/revoke", data={"token": tokens["access_token"], "client_id": WEB}
    )
    assert revoked.status == 200
    (revocation,) = (await _sent(provider)).sent
    assert (revocation.kind, revocation.value) == ("jti", claims.jti)
    assert revocation.reason == "access token revoked"
    _lapses_after_the_token(revocation, claims)


async def test_revoking_a_refresh_token_broadcasts_the_sign_ins_access_tokens(
    provider: Provider,
) -> None:
    """Revoking a refresh token revokes its sign-in: each live access token is broadcast."""
    tokens = await provider.tokens()
    refreshed = await (await provider.refresh(tokens["refresh_token"])).json()
    revoked = await provider.http.post(
        "/revoke", data={"token": refreshed["refresh_token"], "client_id": WEB}
    )
    assert revoked.status == 200
    jtis = {_claims(provider, t["access_token"]).jti for t in (tokens, refreshed)}
    assert set((await _sent(provider)).values("jti")) == jtis


async def test_refresh_token_reuse_broadcasts_the_family_s_access_tokens(
    provider: Provider,
) -> None:
    """A stolen refresh token used after its owner refreshed revokes the sign-in; its access
    tokens must stop working everywhere too, not only at /userinfo."""
    tokens = await provider.tokens()
    refreshed = await (await provider.refresh(tokens["refresh_token"])).json()
    assert (await provider.refresh(tokens["refresh_token"])).status == 400
    jtis = {_claims(provider, t["access_token"]).jti for t in (tokens, refreshed)}
    sent = await _sent(provider)
    assert set(sent.values("jti")) == jtis
    assert all(revocation.reason == "refresh_token reused" for revocation in sent.sent)
    (reuse,) = (await provider.audit()).of_type("token.reuse_detected")
    assert "2 live access token(s) revoked" in (reuse.detail or "")


async def test_only_live_access_tokens_of_a_sign_in_are_named(tmp_path: Path) -> None:
    """Expired access tokens need no revocation: the store names only the live ones."""
    clock = FakeClock(now=1000.0)
    store = await IdentityStore.open(tmp_path / "identity.sqlite3", clock=clock)
    try:
        await store.record_access_token(family_id="f1", jti="a" * 32, expires_at=1100.0)
        await store.record_access_token(family_id="f1", jti="b" * 32, expires_at=1900.0)
        await store.record_access_token(family_id="f2", jti="c" * 32, expires_at=1900.0)
        clock.advance(200)
        assert [token.jti for token in await store.live_access_tokens("f1")] == ["b" * 32]
    finally:
        await store.close()


async def test_code_reuse_broadcasts_the_access_tokens_the_code_gave(provider: Provider) -> None:
    """A reused code revokes the sign-in it started, and its access token everywhere."""
    form = await provider.code_form()
    issued = await (await provider.http.post("/token", data=form)).json()
    assert (await provider.http.post("/token", data=form)).status == 400
    assert (await _sent(provider)).values("jti") == [_claims(provider, issued["access_token"]).jti]


async def test_signing_out_broadcasts_the_sign_ins_access_tokens(provider: Provider) -> None:
    """Sign-out revokes the sign-in the ID token names, and its access tokens everywhere."""
    tokens = await provider.tokens()
    ended = await provider.http.get(
        "/end_session", params={"id_token_hint": tokens["id_token"], "client_id": WEB}
    )
    assert ended.status == 200
    assert (await _sent(provider)).values("jti") == [_claims(provider, tokens["access_token"]).jti]


async def test_a_revoked_refresh_token_presented_again_is_no_reuse_alarm(
    provider: Provider,
) -> None:
    """Issue 11.13: a refresh token revoked at /revoke (or by sign-out) and presented again was
    audited as token.reuse_detected, a false alarm. It is refused and audited as what it is."""
    tokens = await provider.tokens()
    revoked = await provider.http.post(
        "/revoke", data={"token": tokens["refresh_token"], "client_id": WEB}
    )
    assert revoked.status == 200
    again = await provider.refresh(tokens["refresh_token"])
    assert again.status == 400
    assert (await again.json())["error"] == "invalid_grant"
    events = await provider.audit()
    assert events.of_type("token.reuse_detected") == []
    (rejected,) = events.of_type("token.rejected")
    assert (rejected.action, rejected.outcome, rejected.reason, rejected.actor) == (
        "refresh_token",
        "denied",
        "refresh_token_revoked",
        WEB,
    )


async def test_a_reuse_raises_one_alarm_not_one_per_later_presentation(
    provider: Provider,
) -> None:
    """One reuse is one alarm; later presentations of the family's tokens are rejections."""
    tokens = await provider.tokens()
    refreshed = await (await provider.refresh(tokens["refresh_token"])).json()
    assert (await provider.refresh(tokens["refresh_token"])).status == 400  # the reuse
    assert (await provider.refresh(tokens["refresh_token"])).status == 400
    assert (await provider.refresh(refreshed["refresh_token"])).status == 400
    events = await provider.audit()
    assert len(events.of_type("token.reuse_detected")) == 1
    assert [event.reason for event in events.of_type("token.rejected")] == [
        "refresh_token_revoked"
    ] * 2
