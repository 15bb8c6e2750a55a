"""``DocumentParser``: parses in sandbox processes, survives timeouts and dead sandboxes."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from parser import DocumentParser, ParseError, ParseLimits

pytestmark = pytest.mark.timeout(60)


def _cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def _is_running_or_zombie(pid: int) -> bool:
    try:
        Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return True


async def _until_busy(pid: int, baseline: int) -> None:
    """Wait (bounded) until the sandbox has burnt CPU since ``baseline``: it is parsing."""
    deadline = time.monotonic() + 20
    while _cpu_ticks(pid) < baseline + 5:
        assert time.monotonic() < deadline, "sandbox never started parsing"
        await asyncio.sleep(0.01)


async def test_parse_in_a_sandbox_returns_the_document(make_pdf: Callable[..., bytes]) -> None:
    async with DocumentParser() as parser:
        doc = await parser.parse(make_pdf(["page one", "page two"]), "application/pdf", "a.pdf")
        assert doc.text == "page one\n\npage two"
        assert doc.pages == 2
        assert [c.page for c in doc.chunks] == [1, 2]
        assert doc.metadata["pages"] == 2
        assert len(parser.sandbox_pids) == 1
        assert parser.sandbox_pids[0] != os.getpid()


async def test_sandbox_parse_errors_come_back_as_parse_errors() -> None:
    async with DocumentParser() as parser:
        with pytest.raises(ParseError) as caught:
            await parser.parse(b"{not json", "application/json", "a.json")
        assert caught.value.reason == "malformed"
        assert caught.value.permanent
        pid = parser.sandbox_pids
        assert (await parser.parse(b"[1]", "application/json", "a.json")).text == "[0]: 1"
        assert parser.sandbox_pids == pid


async def test_oversize_input_is_refused_without_a_sandbox() -> None:
    async with DocumentParser(ParseLimits(max_input_bytes=4)) as parser:
        with pytest.raises(ParseError) as caught:
            await parser.parse(b"12345", "text/plain", "a.txt")
        assert caught.value.reason == "too_large"
        assert parser.sandbox_pids == ()


async def test_slow_parse_times_out_and_the_next_parse_works(slow_pdf: bytes) -> None:
    async with DocumentParser(ParseLimits(timeout_seconds=1.0)) as parser:
        started = time.monotonic()
        with pytest.raises(ParseError) as caught:
            await parser.parse(slow_pdf, "application/pdf", "slow.pdf")
        assert caught.value.reason == "timeout"
        assert caught.value.permanent
        assert time.monotonic() - started < 5
        doc = await parser.parse(b"still alive", "text/plain", "a.txt")
        assert doc.text == "still alive"


async def test_sandbox_killed_mid_parse_is_internal_and_replaced(slow_pdf: bytes) -> None:
    parser = DocumentParser(ParseLimits(timeout_seconds=50))
    try:
        await parser.parse(b"warm up", "text/plain", "a.txt")
        (pid,) = parser.sandbox_pids
        baseline = _cpu_ticks(pid)
        task = asyncio.create_task(parser.parse(slow_pdf, "application/pdf", "slow.pdf"))
        await _until_busy(pid, baseline)
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(ParseError) as caught:
            await task
        assert caught.value.reason == "internal"
        assert not caught.value.permanent
        doc = await parser.parse(b"next one", "text/plain", "a.txt")
        assert doc.text == "next one"
        assert parser.sandbox_pids != (pid,)
    finally:
        await parser.aclose()
    assert not _is_running_or_zombie(pid)


async def test_cancelled_parse_kills_the_sandbox_and_the_next_parse_works(
    slow_pdf: bytes,
) -> None:
    async with DocumentParser(ParseLimits(timeout_seconds=50)) as parser:
        await parser.parse(b"warm up", "text/plain", "a.txt")
        (pid,) = parser.sandbox_pids
        baseline = _cpu_ticks(pid)
        task = asyncio.create_task(parser.parse(slow_pdf, "application/pdf", "slow.pdf"))
        await _until_busy(pid, baseline)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert (await parser.parse(b"after", "text/plain", "a.txt")).text == "after"
        assert pid not in parser.sandbox_pids


async def test_running_out_of_memory_is_too_large_and_the_next_parse_works() -> None:
    # ~12 MB of JSON that needs several hundred MB of Python lists.
    data = b"[" + b"[]," * 4_000_000 + b"[]]"
    limits = ParseLimits(memory_bytes=200 * 1024 * 1024, timeout_seconds=20)
    async with DocumentParser(limits) as parser:
        with pytest.raises(ParseError) as caught:
            await parser.parse(data, "application/json", "big.json")
        assert caught.value.reason == "too_large"
        assert (await parser.parse(b'{"a": 1}', "application/json", "a.json")).text == "a: 1"


async def test_several_processes_parse_in_parallel() -> None:
    async with DocumentParser(processes=2) as parser:
        docs = await asyncio.gather(
            *(
                parser.parse(json.dumps([n]).encode(), "application/json", "a.json")
                for n in range(6)
            )
        )
        assert [doc.text for doc in docs] == [f"[0]: {n}" for n in range(6)]
        assert len(parser.sandbox_pids) == 2


async def test_aclose_reaps_every_sandbox_and_refuses_new_parses() -> None:
    parser = DocumentParser(processes=2)
    await asyncio.gather(*(parser.parse(b"x", "text/plain", "a.txt") for _ in range(2)))
    pids = parser.sandbox_pids
    assert len(pids) == 2
    await parser.aclose()
    await parser.aclose()
    assert parser.sandbox_pids == ()
    assert not any(_is_running_or_zombie(pid) for pid in pids)
    with pytest.raises(RuntimeError):
        await parser.parse(b"x", "text/plain", "a.txt")
