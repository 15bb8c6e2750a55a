"""Sign-in rate limits: per user and per address, sliding, bounded in memory, answered 429."""

from __future__ import annotations

import asyncio

import pytest
from identity_testing import PASSWORDS, FakeClock, Provider, csrf_of, new_pkce

from identity import LoginLimiter, SlidingWindow
from identity.ratelimit import Blocked, Reservation, address_key


def test_a_window_blocks_at_its_limit_and_slides() -> None:
    clock = FakeClock(now=1000.0)
    window = SlidingWindow(3, 60, clock=clock)
    for _ in range(2):
        window.record("alice")
    assert window.retry_after("alice") == 0
    window.record("alice")
    assert window.retry_after("alice") == pytest.approx(60)
    clock.advance(30)
    assert window.retry_after("alice") == pytest.approx(30)
    clock.advance(30)
    assert window.retry_after("alice") == 0
    assert len(window) == 0  # expired entries are forgotten, not kept


def test_a_window_keeps_at_most_max_keys() -> None:
    window = SlidingWindow(1, 60, max_keys=3, clock=FakeClock())
    for number in range(1000):
        window.record(f"user-{number}")
    assert len(window) == 3
    assert window.retry_after("user-999") > 0
    assert window.retry_after("user-0") == 0


def test_success_clears_the_user_but_not_the_address() -> None:
    limiter = LoginLimiter(per_user=2, per_address=3, window=60, max_keys=100, clock=FakeClock())
    limiter.failure(username="Alice", address="10.0.0.1")
    limiter.success(username="alice")
    limiter.failure(username="alice", address="10.0.0.1")
    assert limiter.check(username="alice", address="10.0.0.2") is None
    limiter.failure(username="bob", address="10.0.0.1")
    blocked = limiter.check(username="carol", address="10.0.0.1")
    assert blocked is not None
    assert blocked.scope == "address"


async def test_five_failures_for_a_user_lock_the_login_page_with_429(provider: Provider) -> None:
    for _ in range(5):
        assert (await provider.login(new_pkce(), password="wrong")).status == 401
    # even the right password is refused now, without checking it
    blocked = await provider.login(new_pkce())
    assert blocked.status == 429
    assert int(blocked.headers["Retry-After"]) == 60
    assert "too many failed sign-ins" in await blocked.text()
    assert "Location" not in blocked.headers
    # another user from the same address is not locked out by alice's failures
    assert (await provider.login(new_pkce(), "root")).status == 302

    events = await provider.audit()
    limited = events.of_type("signin.rate_limited")
    assert [(event.actor, event.reason, event.outcome) for event in limited] == [
        ("alice", "too_many_user_failures", "denied")
    ]
    assert len(events.of_type("signin.failed")) == 5

    provider.clock.advance(61)
    assert (await provider.login(new_pkce())).status == 302


async def test_twenty_failures_from_one_address_lock_every_name(provider: Provider) -> None:
    for number in range(20):
        assert (await provider.login(new_pkce(), f"guess-{number}", "pw")).status == 401
    blocked = await provider.login(new_pkce(), "root")
    assert blocked.status == 429
    assert "too many failed sign-ins" in await blocked.text()
    limited = (await provider.audit()).of_type("signin.rate_limited")
    assert limited[-1].reason == "too_many_address_failures"


async def test_the_device_page_is_rate_limited_too(provider: Provider) -> None:
    started = await provider.device_authorization()
    for _ in range(5):
        wrong = await provider.device_decide(started["user_code"], password="wrong")
        assert wrong.status == 401
    blocked = await provider.device_decide(started["user_code"])
    assert blocked.status == 429
    assert blocked.headers["Retry-After"]
    assert "too many failed sign-ins" in await blocked.text()
    poll = await provider.poll(started["device_code"])
    assert (await poll.json())["error"] == "authorization_pending"


async def _guess(provider: Provider, user_code: str) -> int:
    page = await provider.http.get("/device")
    form = {
        "csrf_token": csrf_of(await page.text()),
        "user_code": user_code,
        "username": "alice",
        "password": "correct horse",
        "action": "approve",
    }
    return (await provider.http.post("/device", data=form)).status


async def test_guessing_user_codes_is_rate_limited_per_address(provider: Provider) -> None:
    for _ in range(20):
        assert await _guess(provider, "BCDF-GHJK") == 400
    assert await _guess(provider, "BCDF-GHJK") == 429


async def test_looking_up_user_codes_is_rate_limited_per_address(provider: Provider) -> None:
    for _ in range(20):
        page = await provider.http.get("/device", params={"user_code": "BCDF-GHJK"})
        assert page.status == 400
    blocked = await provider.http.get("/device", params={"user_code": "BCDF-GHJK"})
    assert blocked.status == 429
    assert "too many failed sign-ins" in await blocked.text()


def test_a_reservation_counts_at_once_and_a_refund_takes_it_back() -> None:
    """Reserving checks and counts in one step; refunding leaves no trace of the attempt."""
    limiter = LoginLimiter(per_user=2, per_address=5, window=60, max_keys=100, clock=FakeClock())
    first = limiter.reserve(username="Alice", address="10.0.0.1")
    second = limiter.reserve(username="alice", address="10.0.0.1")
    assert isinstance(first, Reservation)
    assert isinstance(second, Reservation)
    blocked = limiter.reserve(username="ALICE", address="10.0.0.1")
    assert isinstance(blocked, Blocked)
    assert blocked.scope == "user"
    limiter.refund(first)
    assert isinstance(limiter.reserve(username="alice", address="10.0.0.1"), Reservation)
    limiter.refund(second)
    assert len(limiter.addresses) == 1  # the third reservation is still counted
    assert limiter.addresses.retry_after("10.0.0.1") == 0


async def _concurrent_logins(provider: Provider, attempts: list[tuple[str, str]]) -> list[int]:
    """Post every (username, password) sign-in at once; the statuses, in order."""
    responses = await asyncio.gather(
        *(provider.login(new_pkce(), username, password) for username, password in attempts)
    )
    return [response.status for response in responses]


async def test_concurrent_guesses_for_one_user_are_held_to_its_limit(provider: Provider) -> None:
    """The attack (issue 11.3): 40 guesses at once, the right password last. The limit was
    checked, Argon2 awaited, and only then the failure counted, so all 40 were verified and the
    right password got a code. Now at most 5 are verified; the rest are refused unchecked."""
    attempts = [("alice", f"guess {number}") for number in range(39)]
    attempts.append(("alice", PASSWORDS["alice"]))
    statuses = await _concurrent_logins(provider, attempts)
    checked = [status for status in statuses if status in (302, 401)]
    assert len(checked) <= 5, statuses
    assert statuses.count(429) >= 35
    events = await provider.audit()
    verified = events.of_type("signin.failed") + events.of_type("signin.succeeded")
    assert len(verified) == len(checked)


async def test_concurrent_guesses_from_one_address_are_held_to_its_limit(
    provider: Provider,
) -> None:
    """40 guesses at once for 40 different names from one address: at most 20 are verified."""
    statuses = await _concurrent_logins(provider, [(f"guess-{n}", "pw") for n in range(40)])
    assert len([status for status in statuses if status == 401]) <= 20, statuses
    assert statuses.count(429) >= 20


async def test_concurrent_user_code_lookups_are_held_to_the_address_limit(
    provider: Provider,
) -> None:
    """40 lookups of unknown user codes at once: at most 20 reach the database."""
    responses = await asyncio.gather(
        *(
            provider.http.get("/device", params={"user_code": f"BCDF-GHJ{letter}"})
            for letter in "BCDFGHJKLMNPQRSTVWXZ" * 2
        )
    )
    statuses = [response.status for response in responses]
    assert statuses.count(400) <= 20, statuses
    assert statuses.count(429) >= 20


async def test_a_found_user_code_and_a_right_password_cost_the_address_nothing(
    provider: Provider,
) -> None:
    """Refunds: 30 successful look-ups and sign-ins leave the address below its limit."""
    started = await provider.device_authorization()
    for _ in range(30):
        page = await provider.http.get("/device", params={"user_code": started["user_code"]})
        assert page.status == 200
    for _ in range(30):
        assert (await provider.login(new_pkce())).status == 302


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("192.0.2.7", "192.0.2.7"),
        ("2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::/64"),
        ("2001:db8:1:2::1", "2001:db8:1:2::/64"),
        ("::ffff:192.0.2.7", "192.0.2.7"),
        ("unknown", "unknown"),
    ],
)
def test_an_ipv6_peer_is_limited_by_its_64(address: str, key: str) -> None:
    """One IPv6 host usually holds a whole /64: its addresses share one limit."""
    assert address_key(address) == key


def test_walking_through_a_64_does_not_reset_the_address_limit() -> None:
    """20 failures from 20 addresses of one /64 block the 21st address of it."""
    limiter = LoginLimiter(per_user=5, per_address=20, window=60, max_keys=100, clock=FakeClock())
    for host in range(20):
        limiter.failure(username=None, address=f"2001:db8::{host + 1:x}")
    blocked = limiter.reserve(username="alice", address="2001:db8::ffff")
    assert isinstance(blocked, Blocked)
    assert blocked.scope == "address"
    assert isinstance(limiter.reserve(username="alice", address="2001:db8:0:1::1"), Reservation)
