"""Sign-in rate limits: per user and per address, sliding, bounded in memory, answered 429."""

from __future__ import annotations

import pytest
from identity_testing import FakeClock, Provider, csrf_of, new_pkce

from identity import LoginLimiter, SlidingWindow


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
