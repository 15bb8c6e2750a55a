"""The live-event hub: every open stream counted, in all and per user; wakes; revocations."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import pytest

from gateway import Principal
from gateway.errors import TooManyRequests
from gateway.hub import EventHub, JobNotice
from schemas import Revocation


def _principal(subject: str = "alice", *, jti: str | None = None, kid: str = "k1") -> Principal:
    return Principal(
        subject=subject,
        client_id="sealflow-cli",
        scopes=("jobs:read",),
        roles=("user",),
        token_jti=jti or secrets.token_hex(16),
        expires_at=2**31,
        kid=kid,
    )


def _revocation(kind: str, value: str, *, until: datetime | None = None) -> Revocation:
    return Revocation(
        revocation_id=secrets.token_hex(16),
        kind=kind,  # type: ignore[arg-type]
        value=value,
        reason="test",
        issued_at=datetime.now(UTC) - timedelta(hours=1),
        until=until,
    )


async def test_a_notice_wakes_the_streams_following_the_job_only() -> None:
    hub = EventHub()
    with hub.stream(_principal()) as a, hub.stream(_principal()) as b:
        hub.follow(a, "job-a")
        hub.follow(b, "job-b")
        assert hub.publish(JobNotice("job-a", "done")) == 1
        assert await a.wait(1.0)
        assert not await b.wait(0.01)
    assert len(hub) == 0
    assert hub.publish(JobNotice("job-a", "done")) == 0


async def test_a_burst_of_notices_is_one_wake_and_nothing_queues() -> None:
    hub = EventHub()
    with hub.stream(_principal()) as stream:
        hub.follow(stream, "job")
        for _ in range(10_000):
            hub.publish(JobNotice("job", "processing"))
        assert await stream.wait(1.0)
        assert not await stream.wait(0.01)


def test_the_number_of_streams_is_capped_in_all() -> None:
    hub = EventHub(max_streams=2)
    first, second = hub.open(_principal("alice")), hub.open(_principal("bob"))
    with pytest.raises(TooManyRequests) as refused:
        hub.open(_principal("carol"))
    assert refused.value.headers["Retry-After"]
    hub.close(first)
    hub.close(first)  # idempotent
    hub.open(_principal("carol"))
    hub.close(second)
    assert len(hub) == 1


def test_one_user_cannot_take_every_stream() -> None:
    """The review filled the gateway's 1,000 streams as one user; now a user has a share."""
    hub = EventHub(max_streams=100, max_streams_per_owner=3)
    mallory = [hub.open(_principal("mallory")) for _ in range(3)]
    with pytest.raises(TooManyRequests, match="per user"):
        hub.open(_principal("mallory"))
    hub.open(_principal("alice"))  # others still get theirs
    hub.close(mallory[0])
    hub.open(_principal("mallory"))
    assert hub.streams_of("mallory") == 3


def test_a_stream_that_follows_no_job_still_counts() -> None:
    """``/web/api/events`` of a user whose jobs are all finished follows nothing; it was not
    counted, so such streams were unbounded."""
    hub = EventHub(max_streams=100, max_streams_per_owner=2)
    idle = [hub.open(_principal()), hub.open(_principal())]
    assert all(not stream.jobs for stream in idle)
    assert len(hub) == 2
    with pytest.raises(TooManyRequests):
        hub.open(_principal())


@pytest.mark.parametrize("kind", ["sub", "jti", "kid"])
async def test_a_revocation_closes_the_streams_it_names(kind: str) -> None:
    hub = EventHub()
    target = _principal("mallory", kid="mallory-kid")
    value = {"sub": "mallory", "jti": target.token_jti, "kid": "mallory-kid"}[kind]
    revoked, spared = hub.open(target), hub.open(_principal("alice"))
    hub.follow(revoked, "job")
    assert hub.revoke(_revocation(kind, value)) == 1
    assert revoked.closed_because == f"{kind} revoked"
    assert await revoked.wait(1.0)  # a waiting stream is woken to end at once
    assert spared.closed_because is None
    assert len(hub) == 1
    assert hub.publish(JobNotice("job", "done")) == 0


def test_a_lapsed_revocation_closes_nothing() -> None:
    hub = EventHub()
    hub.open(_principal("mallory"))
    lapsed = _revocation("sub", "mallory", until=datetime.now(UTC) - timedelta(minutes=1))
    assert hub.revoke(lapsed) == 0
    assert len(hub) == 1
