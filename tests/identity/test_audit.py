"""Every sign-in, failure, token issue, refresh, reuse detection and revocation is audited,
and a sink that fails (the broker is down) never stops a sign-in."""

from __future__ import annotations

import re

from aiohttp import encode_basic_auth
from identity_testing import WEB, Provider, new_pkce
from prometheus_client import REGISTRY

from identity import verify_access_token
from keys import KeyRing

HEX32 = re.compile(r"^[0-9a-f]{32}$")


def _failures(reason: str) -> float:
    value = REGISTRY.get_sample_value("sealflow_identity_audit_failures_total", {"reason": reason})
    return value or 0.0


async def test_a_sign_in_and_its_tokens_leave_a_trail(provider: Provider) -> None:
    tokens = await provider.tokens()
    refreshed = await (await provider.refresh(tokens["refresh_token"])).json()
    revoke = await provider.http.post(
        "/revoke", data={"token": refreshed["refresh_token"], "client_id": WEB}
    )
    assert revoke.status == 200

    events = (await provider.audit()).events
    assert all(event.source == "identity" for event in events)
    types = [event.type for event in events]
    assert types == ["signin.succeeded", "token.issued", "token.refreshed", "token.revoked"]
    signin, issued, refresh, revoked = events
    assert (signin.actor, signin.subject, signin.outcome, signin.action) == (
        "alice",
        "alice",
        "success",
        "authorize",
    )
    keys = KeyRing.load(provider.settings.keys_dir, "identity").verification_keys()
    claims = verify_access_token(
        tokens["access_token"], keys, issuer="http://localhost:8081", audience="sealflow-gateway"
    )
    assert issued.jti == claims.jti
    assert (issued.actor, issued.subject, issued.action) == (WEB, "alice", "authorization_code")
    assert refresh.jti is not None
    assert HEX32.match(refresh.jti)
    assert refresh.action == "refresh_token"
    assert (revoked.actor, revoked.outcome) == (WEB, "success")


async def test_a_failed_sign_in_is_audited_with_the_name_tried(provider: Provider) -> None:
    assert (await provider.login(new_pkce(), password="wrong")).status == 401
    (failed,) = (await provider.audit()).events
    assert (failed.type, failed.outcome, failed.actor, failed.reason) == (
        "signin.failed",
        "failure",
        "alice",
        "invalid_credentials",
    )


async def test_an_unprintable_username_is_audited_without_it(provider: Provider) -> None:
    assert (await provider.login(new_pkce(), "evil\x1b[2J", "pw")).status == 401
    (failed,) = (await provider.audit()).events
    assert failed.type == "signin.failed"
    assert failed.actor is None


async def test_refresh_token_reuse_is_audited(provider: Provider) -> None:
    tokens = await provider.tokens()
    assert (await provider.refresh(tokens["refresh_token"])).status == 200
    assert (await provider.refresh(tokens["refresh_token"])).status == 400
    (reuse,) = (await provider.audit()).of_type("token.reuse_detected")
    assert (reuse.outcome, reuse.reason, reuse.actor) == ("denied", "refresh_token_reused", WEB)


async def test_code_reuse_is_audited(provider: Provider) -> None:
    """A second use of a code is audited as a reuse."""
    form = await provider.code_form()
    assert (await provider.http.post("/token", data=form)).status == 200
    assert (await provider.http.post("/token", data=form)).status == 400
    (reuse,) = (await provider.audit()).of_type("token.reuse_detected")
    assert reuse.reason == "authorization_code_reused"


async def test_client_credentials_and_device_tokens_are_audited(provider: Provider) -> None:
    await provider.store.add_client(
        "svc", secret="svc secret", grant_types=["client_credentials"], role="user"
    )
    response = await provider.http.post(
        "/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": encode_basic_auth("svc", "svc secret")},
    )
    assert response.status == 200
    started = await provider.device_authorization()
    await provider.device_decide(started["user_code"])
    provider.clock.advance(5)
    assert (await provider.poll(started["device_code"])).status == 200

    sink = await provider.audit()
    assert [event.action for event in sink.of_type("token.issued")] == [
        "client_credentials",
        "device_code",
    ]
    assert [event.action for event in sink.of_type("signin.succeeded")] == ["device"]
    assert [event.subject for event in sink.of_type("device.approved")] == ["alice"]


async def test_sign_ins_work_while_the_sink_fails_and_failures_are_counted(
    provider: Provider,
) -> None:
    provider.sink.fail = True
    before = _failures("publish_failed")
    tokens = await provider.tokens()
    assert tokens["access_token"]
    await provider.audit()
    assert _failures("publish_failed") - before == 2  # signin.succeeded + token.issued
    assert provider.sink.events == []
