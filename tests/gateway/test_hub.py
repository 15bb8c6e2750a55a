"""The live-event hub is bounded: subscriber count, queue size, slow subscribers dropped."""

from __future__ import annotations

import pytest

from gateway import EventHub, JobNotice, TooManyRequests


async def test_a_notice_reaches_the_jobs_subscribers_only() -> None:
    hub = EventHub()
    with hub.subscription("a") as a, hub.subscription("b") as b:
        assert hub.publish(JobNotice("a", "done")) == 1
        assert await a.next(1.0) == JobNotice("a", "done")
        assert await b.next(0.01) is None
    assert len(hub) == 0
    assert hub.publish(JobNotice("a", "done")) == 0


async def test_a_slow_subscriber_is_dropped() -> None:
    hub = EventHub(queue_size=2)
    with hub.subscription("a") as slow:
        for _ in range(2):
            hub.publish(JobNotice("a", "processing"))
        assert not slow.dropped
        hub.publish(JobNotice("a", "done"))
        assert slow.dropped
        assert len(hub) == 0
    assert len(hub) == 0


def test_the_number_of_subscribers_is_capped() -> None:
    hub = EventHub(max_subscribers=2)
    first, second = hub.subscribe("a"), hub.subscribe("b")
    with pytest.raises(TooManyRequests):
        hub.subscribe("c")
    hub.unsubscribe(first)
    hub.unsubscribe(first)  # idempotent
    hub.subscribe("c")
    hub.unsubscribe(second)
    assert len(hub) == 1
