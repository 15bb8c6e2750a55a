"""Flooding ``/device_authorization`` (issue 11.4): the public CLI client needs no secret, so
requests are limited per address, and one address holds only a few pending requests, far
below the per-client cap, which keeps one client's flood from blocking other clients."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from identity_testing import CLI, Provider
from pydantic import ValidationError

from identity import IdentitySettings
from keys import KeyRing

OTHER_CLI = "other-device-client"


@pytest.fixture
def identity_settings(tmp_path: Path) -> IdentitySettings:
    """Small device limits: 6 requests and 3 pending per address, 5 pending per client."""
    keys_dir = tmp_path / "keys"
    KeyRing.create(keys_dir, "identity")
    return IdentitySettings(
        data_dir=tmp_path / "data",
        keys_dir=keys_dir,
        device_requests_per_address=6,
        device_request_window_seconds=600,
        device_max_pending_per_address=3,
        device_max_pending_per_client=5,
    )


@pytest.fixture
async def addresses(provider: Provider) -> AsyncIterator[dict[str, aiohttp.ClientSession]]:
    """HTTP sessions to the provider from three loopback addresses."""
    sessions = {
        address: aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(local_addr=(address, 0), force_close=True)
        )
        for address in ("127.0.0.1", "127.0.0.2", "127.0.0.3")
    }
    await provider.store.add_client(
        OTHER_CLI, grant_types=["urn:ietf:params:oauth:grant-type:device_code"]
    )
    try:
        yield sessions
    finally:
        for session in sessions.values():
            await session.close()


async def _ask(
    provider: Provider, session: aiohttp.ClientSession, client_id: str = CLI
) -> tuple[int, dict[str, str], dict[str, str]]:
    """One device authorization request: status, JSON body and headers."""
    async with session.post(
        provider.http.make_url("/device_authorization"),
        data={"client_id": client_id, "scope": "openid jobs:read"},
    ) as response:
        return response.status, await response.json(), dict(response.headers)


async def test_one_address_holds_only_a_few_pending_requests(
    provider: Provider, addresses: dict[str, aiohttp.ClientSession]
) -> None:
    """The attack: one address asks again and again. Its fourth pending request is refused
    with 429 and Retry-After; another address still starts a sign-in."""
    first = addresses["127.0.0.1"]
    assert [(await _ask(provider, first))[0] for _ in range(3)] == [200, 200, 200]
    status, body, headers = await _ask(provider, first)
    assert status == 429
    assert body["error"] == "rate_limited"
    assert "pending device requests from this address" in body["error_description"]
    assert int(headers["Retry-After"]) > 0
    assert (await _ask(provider, addresses["127.0.0.2"]))[0] == 200


async def test_a_full_client_does_not_block_other_clients(
    provider: Provider, addresses: dict[str, aiohttp.ClientSession]
) -> None:
    """Five pending for the CLI client from two addresses fill its cap (503 for a third
    address); another client is not affected."""
    for address, count in (("127.0.0.1", 3), ("127.0.0.2", 2)):
        for _ in range(count):
            assert (await _ask(provider, addresses[address]))[0] == 200
    status, body, _ = await _ask(provider, addresses["127.0.0.3"])
    assert (status, body["error"]) == (503, "temporarily_unavailable")
    assert (await _ask(provider, addresses["127.0.0.3"], OTHER_CLI))[0] == 200


async def test_device_requests_are_limited_per_address_and_the_window_slides(
    provider: Provider, addresses: dict[str, aiohttp.ClientSession]
) -> None:
    """Every request counts against the address, refused ones too: the seventh within the
    window is refused before any work; once the window has passed, requests go through."""
    first = addresses["127.0.0.1"]
    statuses = [(await _ask(provider, first))[0] for _ in range(6)]
    assert statuses == [200, 200, 200, 429, 429, 429]
    status, body, headers = await _ask(provider, first)
    assert status == 429
    assert "too many device requests from this address" in body["error_description"]
    assert 0 < int(headers["Retry-After"]) <= 600
    provider.clock.advance(601)
    assert (await _ask(provider, first))[0] == 200


def test_the_per_address_cap_must_stay_below_the_per_client_cap() -> None:
    """A setting that would let one address fill a client's cap is refused at start."""
    with pytest.raises(ValidationError, match="must be below"):
        IdentitySettings(device_max_pending_per_address=10, device_max_pending_per_client=10)
