"""Parse slots are shared fairly: one owner's backlog delays another's job by one slot at most."""

from __future__ import annotations

import asyncio

import pytest

from parser.fairness import FairSlots

pytestmark = pytest.mark.timeout(30)


class _Jobs:
    """Jobs that take a slot, say so, and hold it until the test lets them finish."""

    def __init__(self, fair: FairSlots) -> None:
        self.fair = fair
        self.started: list[str] = []
        self._entered: dict[str, asyncio.Event] = {}
        self._finish: dict[str, asyncio.Event] = {}
        self.tasks: dict[str, asyncio.Task[None]] = {}

    async def submit(self, name: str) -> None:
        """Start job ``name`` (owner: its first letter) and let it queue up."""
        self._entered[name] = asyncio.Event()
        self._finish[name] = asyncio.Event()
        self.tasks[name] = asyncio.create_task(self._run(name))
        await asyncio.sleep(0)  # one turn of the loop: it holds a slot or waits for one

    async def _run(self, name: str) -> None:
        async with self.fair.slot(name[0]):
            self.started.append(name)
            self._entered[name].set()
            await self._finish[name].wait()

    async def finish_all(self) -> None:
        """Let every job finish and wait (bounded) until all have."""
        for finish in self._finish.values():
            finish.set()
        await asyncio.wait_for(asyncio.gather(*self.tasks.values()), timeout=5)

    async def finish(self, name: str, then: str) -> None:
        """Let ``name`` finish and wait (bounded) until ``then`` holds the freed slot."""
        self._finish[name].set()
        await asyncio.wait_for(self._entered[then].wait(), timeout=5)


async def test_a_newcomer_starts_right_after_the_running_job_despite_a_backlog() -> None:
    jobs = _Jobs(FairSlots(1))
    for name in ("a1", "a2", "a3", "a4", "a5", "b1"):
        await jobs.submit(name)
    assert jobs.started == ["a1"]
    assert jobs.fair.waiting == 5
    await jobs.finish("a1", then="b1")
    for done, following in (("b1", "a2"), ("a2", "a3"), ("a3", "a4"), ("a4", "a5")):
        await jobs.finish(done, then=following)
    assert jobs.started == ["a1", "b1", "a2", "a3", "a4", "a5"]
    await jobs.finish_all()


async def test_two_backlogs_take_turns_and_a_late_third_owner_waits_one_slot() -> None:
    jobs = _Jobs(FairSlots(2))
    for name in ("a1", "a2", "a3", "a4", "a5", "b1", "b2", "b3"):
        await jobs.submit(name)
    assert jobs.started == ["a1", "a2"]  # both slots were free when A came
    await jobs.finish("a1", then="b1")
    await jobs.finish("a2", then="a3")
    await jobs.finish("b1", then="b2")
    await jobs.submit("c1")  # arrives while A and B both have a backlog
    await jobs.finish("a3", then="c1")
    await jobs.finish("b2", then="a4")
    await jobs.finish("c1", then="b3")
    await jobs.finish("a4", then="a5")
    assert jobs.started == ["a1", "a2", "b1", "a3", "b2", "c1", "a4", "b3", "a5"]
    await jobs.finish_all()


async def test_a_waiter_that_gives_up_leaves_no_slot_lost() -> None:
    jobs = _Jobs(FairSlots(1))
    for name in ("a1", "b1", "c1"):
        await jobs.submit(name)
    jobs.tasks["b1"].cancel()
    with pytest.raises(asyncio.CancelledError):
        await jobs.tasks["b1"]
    assert jobs.fair.waiting == 1
    await jobs.finish("a1", then="c1")
    await jobs.finish("c1", then="c1")
    await asyncio.wait_for(jobs.tasks["c1"], timeout=5)
    await jobs.submit("d1")
    assert jobs.started == ["a1", "c1", "d1"]  # the freed slot was not lost to b1
    del jobs.tasks["b1"]
    await jobs.finish_all()
