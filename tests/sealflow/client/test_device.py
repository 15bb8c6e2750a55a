"""The device-flow state machine against an RFC 8628 test peer over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import pytest

from sealflow.client import (
    DEVICE_CODE_GRANT,
    ClientSettings,
    DeviceFlow,
    DeviceFlowError,
    OidcClient,
    TransportError,
)


@dataclass
class FakeTime:
    """The flow's clock and sleep: sleeping moves the clock, so no test waits for real."""

    now: float = 1_000.0
    slept: list[float] = field(default_factory=list)

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
async def oidc(settings: ClientSettings) -> AsyncIterator[OidcClient]:
    async with aiohttp.ClientSession() as http:
        yield OidcClient(settings, http)


@pytest.fixture
def time_() -> FakeTime:
    return FakeTime()


def _flow(oidc: OidcClient, time_: FakeTime) -> DeviceFlow:
    return DeviceFlow(oidc, sleep=time_.sleep, clock=time_.clock)


async def test_pending_then_approved(identity_peer, oidc, time_) -> None:
    identity_peer.polls = ["authorization_pending", "authorization_pending", "approve"]
    flow = _flow(oidc, time_)
    authorization = await flow.start("openid jobs:read")
    assert authorization.user_code == "WDJB-MJHT"
    assert authorization.verification_uri == f"{identity_peer.url}/device"
    tokens = await flow.poll(authorization)
    assert tokens.access_token in identity_peer.live_access
    assert tokens.refresh_token in identity_peer.live_refresh
    assert time_.slept == [5, 5, 5]
    polls = [form for path, form in identity_peer.requests if path == "/token"]
    assert all(form["grant_type"] == DEVICE_CODE_GRANT for form in polls)
    assert all(form["device_code"] == "device-code-1" for form in polls)
    assert all(form["client_id"] == "sealflow-cli" for form in polls)
    start = identity_peer.requests[0]
    assert start == (
        "/device_authorization",
        {"client_id": "sealflow-cli", "scope": "openid jobs:read"},
    )


async def test_slow_down_adds_five_seconds_for_good(identity_peer, oidc, time_) -> None:
    identity_peer.polls = [
        "authorization_pending",
        "slow_down",
        "authorization_pending",
        "slow_down",
        "approve",
    ]
    flow = _flow(oidc, time_)
    await flow.poll(await flow.start("openid"))
    assert time_.slept == [5, 5, 10, 10, 15]


async def test_the_servers_interval_is_honoured(identity_peer, oidc, time_) -> None:
    identity_peer.interval = 2
    identity_peer.polls = ["authorization_pending", "approve"]
    flow = _flow(oidc, time_)
    await flow.poll(await flow.start("openid"))
    assert time_.slept == [2, 2]


async def test_expired_token_ends_the_flow(identity_peer, oidc, time_) -> None:
    identity_peer.polls = ["authorization_pending", "expired_token"]
    flow = _flow(oidc, time_)
    with pytest.raises(DeviceFlowError, match="expired before it was approved") as caught:
        await flow.poll(await flow.start("openid"))
    assert caught.value.reason == "expired_token"


async def test_access_denied_ends_the_flow(identity_peer, oidc, time_) -> None:
    identity_peer.polls = ["access_denied"]
    flow = _flow(oidc, time_)
    with pytest.raises(DeviceFlowError, match="denied") as caught:
        await flow.poll(await flow.start("openid"))
    assert caught.value.reason == "access_denied"
    assert identity_peer.poll_log == ["access_denied"]


async def test_the_client_stops_polling_when_the_code_has_expired(
    identity_peer, oidc, time_
) -> None:
    identity_peer.device_expires_in = 12
    identity_peer.polls = ["authorization_pending"] * 10
    flow = _flow(oidc, time_)
    with pytest.raises(DeviceFlowError) as caught:
        await flow.poll(await flow.start("openid"))
    assert caught.value.reason == "expired_token"
    assert identity_peer.poll_log == ["authorization_pending", "authorization_pending"]


async def test_an_unexpected_oauth_error_is_reported(identity_peer, oidc, time_) -> None:
    identity_peer.polls = ["invalid_client"]
    flow = _flow(oidc, time_)
    with pytest.raises(DeviceFlowError, match="invalid_client") as caught:
        await flow.poll(await flow.start("openid"))
    assert caught.value.reason == "invalid_client"


async def test_unreadable_answers_back_off_exponentially(identity_peer, oidc, time_) -> None:
    identity_peer.polls = ["garbage", "garbage", "authorization_pending", "approve"]
    flow = _flow(oidc, time_)
    await flow.poll(await flow.start("openid"))
    assert time_.slept == [5, 10, 20, 20]


async def test_unreadable_answers_eventually_fail(identity_peer, oidc, time_) -> None:
    identity_peer.polls = ["garbage"] * 10
    flow = _flow(oidc, time_)
    with pytest.raises(TransportError, match="answered HTTP 502"):
        await flow.poll(await flow.start("openid"))
    assert len(identity_peer.poll_log) == 6


async def test_a_provider_without_the_device_endpoint(identity_peer, oidc) -> None:
    identity_peer.with_device_endpoint = False
    with pytest.raises(TransportError, match="does not offer the device flow"):
        await DeviceFlow(oidc).start("openid")


async def test_discovery_must_name_the_configured_issuer(identity_peer, settings) -> None:
    other = settings.model_copy(
        update={"issuer": identity_peer.url.replace("127.0.0.1", "localhost")}
    )
    async with aiohttp.ClientSession() as http:
        with pytest.raises(TransportError, match="calls itself"):
            await OidcClient(other, http).metadata()
