"""Two identity instances on one PostgreSQL database (issue 10 item 1): what one spends, the
other cannot spend again, and they share one set of sign-in and device-request limits."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from identity_testing import (
    PASSWORDS,
    REDIRECT,
    WEB,
    FakeClock,
    Provider,
    RecordingRevocations,
    RecordingSink,
    new_pkce,
)
from store_testing import reset_identity

from identity import (
    AnyIdentityStore,
    IdentitySettings,
    InvalidGrant,
    InvalidRequest,
    PgIdentityStore,
    TokenReuse,
    create_app,
    upgrade_identity_schema,
)
from identity.devices import PendingLimits
from identity.errors import AuthorizationPending
from identity.postgres import IDENTITY_SCHEMA, PgRequestLimit, PgSignInLimits
from identity.ratelimit import Blocked, Reservation

_LIMITS = PendingLimits(overall=100, per_client=50, per_address=5)


@pytest.fixture
async def instances(postgres_url: str) -> AsyncIterator[tuple[PgIdentityStore, PgIdentityStore]]:
    """Two identity stores (two identity instances) on one emptied database."""
    reset_identity(postgres_url)
    first = await PgIdentityStore.open(postgres_url)
    second = await PgIdentityStore.open(postgres_url)
    yield first, second
    await first.close()
    await second.close()


@pytest.fixture
async def two_providers(
    identity_settings: IdentitySettings, postgres_url: str
) -> AsyncIterator[tuple[Provider, Provider]]:
    """Two identity providers (two instances, each its own data directory) configured with one
    PostgreSQL database, on one clock."""
    reset_identity(postgres_url)
    clock = FakeClock()
    providers: list[Provider] = []
    clients: list[TestClient[web.Request, web.Application]] = []
    for n in range(2):
        settings = identity_settings.model_copy(
            update={"database_url": postgres_url, "data_dir": identity_settings.data_dir / str(n)}
        )
        sink = RecordingSink()
        app = create_app(settings, audit=sink, revocations=RecordingRevocations(), clock=clock)
        http = TestClient(TestServer(app))
        await http.start_server()
        clients.append(http)
        providers.append(Provider(http=http, sink=sink, clock=clock, settings=settings))
    store = providers[0].store
    await store.add_user("alice", PASSWORDS["alice"], "user")
    await store.add_client(WEB, redirect_uris=[REDIRECT])
    try:
        yield providers[0], providers[1]
    finally:
        for http in clients:
            await http.close()


async def test_guesses_spread_over_two_identity_instances_share_one_limit(
    two_providers: tuple[Provider, Provider],
) -> None:
    """The attack (issue 10): with the limits in each process's memory, two instances allowed
    twice the guesses. Five wrong passwords for alice, alternating between the instances, lock
    her out on both; the user and the code signed in on one are known to the other."""
    first, second = two_providers
    for n in range(5):
        provider = first if n % 2 else second
        assert (await provider.login(new_pkce(), password="wrong")).status == 401
    for provider in (first, second):
        blocked = await provider.login(new_pkce())
        assert blocked.status == 429
    first.clock.advance(61)
    assert (await second.login(new_pkce())).status == 302


async def test_a_code_issued_by_one_instance_is_redeemed_once_on_any(
    two_providers: tuple[Provider, Provider],
) -> None:
    """Signed in on one instance, the code is redeemed on the other; replayed to the first,
    it is refused and the refresh token it gave is revoked with its sign-in."""
    first, second = two_providers
    form = await first.code_form()
    issued = await second.http.post("/token", data=form)
    assert issued.status == 200, await issued.text()
    refresh_token = (await issued.json())["refresh_token"]
    replayed = await first.http.post("/token", data=form)
    assert replayed.status == 400
    assert (await replayed.json())["error"] == "invalid_grant"
    refreshed = await first.refresh(refresh_token)
    assert refreshed.status == 400


async def _code(store: AnyIdentityStore) -> str:
    return await store.issue_code(
        client_id="web",
        redirect_uri="https://a.example/cb",
        username="alice",
        scope=["openid"],
        code_challenge=None,
        nonce=None,
        auth_time=1,
        lifetime=60,
    )


async def test_a_code_redeemed_on_two_instances_at_once_is_spent_once(
    instances: tuple[PgIdentityStore, PgIdentityStore],
) -> None:
    """The attack: a stolen code replayed to a second identity instance while the first
    redeems it. One redemption wins; the others revoke the sign-in it started."""
    first, second = instances
    for _ in range(5):
        code = await _code(first)
        results = await asyncio.gather(
            *(store.redeem_code(code, "web") for store in (first, second, first, second)),
            return_exceptions=True,
        )
        winners = [r for r in results if not isinstance(r, BaseException)]
        assert len(winners) == 1
        losers = [r for r in results if isinstance(r, BaseException)]
        assert all(isinstance(r, TokenReuse) for r in losers), losers
        assert await second.is_family_revoked(winners[0].family_id)


async def test_a_refresh_token_rotated_on_two_instances_at_once_revokes_its_family(
    instances: tuple[PgIdentityStore, PgIdentityStore],
) -> None:
    """One rotation wins; the concurrent one on the other instance is reuse."""
    first, second = instances
    await first.add_user("alice", "pw pw pw", "user")
    token = await first.issue_refresh_token(
        family_id="fam",
        client_id="web",
        username="alice",
        scope=["openid"],
        auth_time=1,
        lifetime=3600,
    )
    results = await asyncio.gather(
        first.rotate_refresh_token(token, "web", lifetime=3600),
        second.rotate_refresh_token(token, "web", lifetime=3600),
        return_exceptions=True,
    )
    winners = [r for r in results if not isinstance(r, BaseException)]
    assert len(winners) == 1
    assert any(isinstance(r, TokenReuse) for r in results)
    with pytest.raises(InvalidGrant):
        await second.rotate_refresh_token(winners[0].new_token, "web", lifetime=3600)


async def test_one_name_claimed_on_two_instances_at_once_is_given_once(
    instances: tuple[PgIdentityStore, PgIdentityStore],
) -> None:
    """``Carol`` as a user on one instance and ``carol`` as a client on the other: one wins."""
    first, second = instances
    results = await asyncio.gather(
        first.add_user("Carol", "long password", "user"),
        second.add_client("carol", redirect_uris=["https://a.example/cb"]),
        return_exceptions=True,
    )
    assert len([r for r in results if isinstance(r, InvalidRequest)]) == 1
    assert len(await first.list_users()) + len(await second.list_clients()) == 1


async def test_an_approved_device_code_polled_on_two_instances_is_spent_once(
    instances: tuple[PgIdentityStore, PgIdentityStore],
) -> None:
    """The device flow's state is shared: pending on both, approved on one, spent once."""
    first, second = instances
    issued = await first.devices.issue(
        client_id="cli",
        scope=["openid"],
        lifetime=600,
        interval=0,
        limits=_LIMITS,
        address="10.0.0.1",
    )
    with pytest.raises(AuthorizationPending):
        await second.devices.poll(issued.device_code, "cli")
    await second.devices.decide(issued.user_code, approve=True, username="alice", auth_time=1)
    results = await asyncio.gather(
        first.devices.poll(issued.device_code, "cli"),
        second.devices.poll(issued.device_code, "cli"),
        return_exceptions=True,
    )
    assert len([r for r in results if not isinstance(r, BaseException)]) == 1
    assert any(isinstance(r, InvalidGrant) for r in results)


async def test_the_identity_schema_is_versioned_and_upgraded_once(
    instances: tuple[PgIdentityStore, PgIdentityStore], postgres_url: str
) -> None:
    """Opening migrated it already: ``sealflow db upgrade`` finds nothing left to do."""
    done = await upgrade_identity_schema(postgres_url)
    assert done is not None
    assert (done.found, done.now) == (IDENTITY_SCHEMA.version, IDENTITY_SCHEMA.version)
    assert await upgrade_identity_schema(None) is None


async def test_two_instances_share_the_sign_in_limits_under_concurrent_guesses(
    instances: tuple[PgIdentityStore, PgIdentityStore],
) -> None:
    """The attack: N identity instances allowing N x the guesses. Forty concurrent guesses
    for one user, spread over two instances, get exactly ``per_user`` reservations."""
    clock = FakeClock()
    limits = [
        PgSignInLimits(store.pool, per_user=3, per_address=100, window=60, clock=clock)
        for store in instances
    ]
    results = await asyncio.gather(
        *(
            limits[n % 2].reserve(username="Alice" if n % 3 else "alice", address=f"10.0.0.{n}")
            for n in range(40)
        )
    )
    reserved = [r for r in results if isinstance(r, Reservation)]
    assert len(reserved) == 3
    blocked = [r for r in results if isinstance(r, Blocked)]
    assert {b.scope for b in blocked} == {"user"}
    assert all(1 <= b.retry_after <= 60 for b in blocked)
    # a refund on one instance frees a slot on the other; a success clears the user
    await limits[0].refund(reserved[0])
    assert isinstance(await limits[1].reserve(username="alice", address="10.0.0.99"), Reservation)
    assert isinstance(await limits[0].reserve(username="alice", address="10.0.0.99"), Blocked)
    await limits[1].success(username="ALICE")
    assert isinstance(await limits[0].reserve(username="alice", address="10.0.0.99"), Reservation)


async def test_the_shared_windows_slide(
    instances: tuple[PgIdentityStore, PgIdentityStore],
) -> None:
    """Per-address failures expire with the window; device requests are limited per address
    across instances."""
    clock = FakeClock()
    first, second = (
        PgSignInLimits(store.pool, per_user=10, per_address=2, window=60, clock=clock)
        for store in instances
    )
    assert isinstance(await first.reserve(username=None, address="2001:db8::1"), Reservation)
    assert isinstance(await second.reserve(username=None, address="2001:db8::2"), Reservation)
    blocked = await first.reserve(username="bob", address="2001:db8::3")
    assert isinstance(blocked, Blocked)
    assert blocked.scope == "address"
    clock.advance(61)
    assert isinstance(await second.reserve(username="bob", address="2001:db8::3"), Reservation)
    requests = [
        PgRequestLimit(store.pool, scope="device_request", limit=2, window=60, clock=clock)
        for store in instances
    ]
    waits = await asyncio.gather(*(requests[n % 2].take("10.0.0.1") for n in range(6)))
    assert sorted(waits)[:2] == [0, 0]
    assert all(w > 0 for w in sorted(waits)[2:])
    clock.advance(61)
    assert await requests[1].take("10.0.0.1") == 0
