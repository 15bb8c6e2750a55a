"""Live event streams over HTTP: a share per user, and revocations that end them at once."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer
from gateway_testing import Gateway, error_body, next_event

from broker import BrokerSettings, Publisher, Sealer, publish_control
from gateway import RUNTIME_KEY, GatewaySettings, create_app
from keys import KeyRing
from schemas import Revocation

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

WITHIN = 1.0
"""DESIGN §6: a revocation takes effect within a second."""


@pytest.fixture
async def capped(
    gateway_settings: GatewaySettings, broker_settings: BrokerSettings, gateway: Gateway
) -> AsyncIterator[Gateway]:
    """The gateway with a share of two live streams per user."""
    settings = gateway_settings.model_copy(update={"sse_max_streams_per_user": 2})
    app = create_app(settings, broker_settings=broker_settings)
    async with TestClient(TestServer(app)) as client:
        yield Gateway(client=client, settings=settings, issuer=gateway.issuer)


async def _queued_job(gateway: Gateway, who: str) -> str:
    """A job that stays queued (no worker runs here), so its stream stays open."""
    response = await gateway.upload([(f"{who}.txt", "text/plain", b"hello\n")], who=who)
    assert response.status == 202, await response.text()
    return str((await response.json())["jobs"][0]["job_id"])


async def _open_stream(gateway: Gateway, job_id: str, who: str) -> ClientResponse:
    response = await gateway.client.get(f"/api/jobs/{job_id}/events", headers=gateway.auth(who))
    if response.status == 200:
        assert await next_event(response) is not None  # the stream is live and counted
    return response


async def test_one_user_cannot_hold_more_than_their_share_of_streams(capped: Gateway) -> None:
    """The review opened the gateway's 1,000 streams as one user; others then got 429."""
    job_id = await _queued_job(capped, "bob")
    held = [await _open_stream(capped, job_id, "bob") for _ in range(2)]
    assert [response.status for response in held] == [200, 200]
    refused = await _open_stream(capped, job_id, "bob")
    body = await error_body(refused, 429, "too_many_requests")
    assert "per user" in body["detail"]
    assert refused.headers["Retry-After"]
    alice_job = await _queued_job(capped, "alice")
    assert (await _open_stream(capped, alice_job, "alice")).status == 200
    held[0].close()
    async with asyncio.timeout(10):  # the server notices the closed stream, then frees its slot
        while (again := await _open_stream(capped, job_id, "bob")).status == 429:
            await asyncio.sleep(0.05)
    assert again.status == 200


def _identity_publisher(gateway: Gateway) -> Publisher:
    runtime = gateway.app[RUNTIME_KEY]
    assert runtime.publish_channel is not None
    sealer = Sealer(KeyRing.load(gateway.issuer.keys_dir, "identity").signing_key())
    return Publisher(runtime.publish_channel, runtime.topology, sealer)


async def _revoke(gateway: Gateway, kind: str, value: str) -> float:
    """Publish a revocation as the identity; the time it was sent."""
    revocation = Revocation(
        revocation_id=secrets.token_hex(16),
        kind=kind,  # type: ignore[arg-type]
        value=value,
        reason=f"test: {kind} revoked",
        issued_at=datetime.now(UTC),
    )
    sent_at = time.monotonic()
    await publish_control(
        _identity_publisher(gateway), revocation, typ="control.revocation", sub="root"
    )
    return sent_at


async def test_a_revoked_users_open_streams_close_and_their_token_is_refused(
    gateway: Gateway,
) -> None:
    job_id = await _queued_job(gateway, "bob")
    stream = await _open_stream(gateway, job_id, "bob")
    assert stream.status == 200
    alice_stream = await _open_stream(gateway, await _queued_job(gateway, "alice"), "alice")
    sent_at = await _revoke(gateway, "sub", "bob")
    async with asyncio.timeout(10):
        assert await next_event(stream) is None  # the server ended it
    assert time.monotonic() - sent_at < WITHIN
    refused = await gateway.client.get("/api/jobs", headers=gateway.auth("bob"))
    body = await error_body(refused, 401, "unauthorized")
    assert "revoked" in body["detail"]
    assert not alice_stream.content.at_eof()
    assert (await gateway.client.get("/api/jobs", headers=gateway.auth("alice"))).status == 200


async def test_a_revoked_signing_key_refuses_its_cached_tokens_and_ends_their_streams(
    gateway: Gateway,
) -> None:
    """The principal cache ignored ``kid`` revocations: a token signed by a revoked issuer
    key was served until it expired."""
    job_id = await _queued_job(gateway, "alice")  # alice's principal is now cached
    stream = await _open_stream(gateway, job_id, "alice")
    kid = KeyRing.load(gateway.issuer.keys_dir, "identity").signing_key().kid
    sent_at = await _revoke(gateway, "kid", kid)
    async with asyncio.timeout(10):
        assert await next_event(stream) is None
    assert time.monotonic() - sent_at < WITHIN
    refused = await gateway.client.get("/api/jobs", headers=gateway.auth("alice"))
    body = await error_body(refused, 401, "unauthorized")
    assert "kid" in body["detail"]
