"""``DocumentParser``: ``parse_bytes`` in sandbox processes, under a wall-time limit.

Why hand-rolled sandbox processes and not a pool: ``concurrent.futures.ProcessPoolExecutor`` cannot
kill the one process running a timed-out task (it breaks the whole pool), and
``multiprocessing.Pool`` hides which process holds which task. Here each slot owns one
``spawn``-started process and a pipe; a parse sends the bytes, waits for the answer in a
thread while asyncio keeps the clock, and on timeout, cancellation or a dead sandbox the
process is SIGKILLed, reaped in the background, and a fresh one is started at once.
"""

from __future__ import annotations

import asyncio
import functools
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import Final

import structlog

from parser.document import ParsedDocument
from parser.errors import ParseError
from parser.limits import ParseLimits
from parser.protocol import decode_response, encode_request
from parser.sandbox import SandboxProcess

__all__ = ["DocumentParser"]

STARTUP_TIMEOUT_SECONDS: Final = 30.0
"""How long a new sandbox may take to import and report ready (not part of a parse's time)."""

_DEFAULT_LIMITS = ParseLimits()
SANDBOX_USER: Final = "nobody"
"""Whom a sandbox started by root runs as, unless told otherwise."""

_log = structlog.get_logger("sealflow.parser")


class _Slot:
    """One sandbox place: the task that starts (or started) its process, or none yet."""

    __slots__ = ("task",)

    def __init__(self) -> None:
        self.task: asyncio.Task[SandboxProcess] | None = None


class DocumentParser:
    """Parses documents in isolated sandbox processes, each parse bounded in time and memory.

    ``processes`` sandboxes run parses in parallel; more callers wait for a free one. Sandboxes
    start on first use. Use as ``async with DocumentParser(...) as parser:`` or call
    ``aclose()``, which waits for running parses and reaps every sandbox.
    """

    def __init__(
        self,
        limits: ParseLimits = _DEFAULT_LIMITS,
        *,
        processes: int = 1,
        sandbox_user: str = SANDBOX_USER,
    ) -> None:
        if processes < 1:
            raise ValueError("DocumentParser needs at least one process")
        self._limits = limits
        self._sandbox_user = sandbox_user
        self._processes = processes
        self._idle: asyncio.Queue[_Slot] = asyncio.Queue()
        for _ in range(processes):
            self._idle.put_nowait(_Slot())
        # Each slot needs at most one thread for its exchange plus one to start or reap.
        self._threads = ThreadPoolExecutor(2 * processes, thread_name_prefix="sealflow-parser")
        self._sandboxes: set[SandboxProcess] = set()
        self._reaping: set[asyncio.Task[None]] = set()
        self._closing: asyncio.Task[None] | None = None

    @property
    def sandbox_pids(self) -> tuple[int, ...]:
        """Process ids of the running sandboxes, for monitoring."""
        return tuple(sorted(w.pid for w in self._sandboxes if w.pid is not None))

    async def parse(self, data: bytes, content_type: str, filename: str) -> ParsedDocument:
        """Parse one document in a sandbox; raises ``ParseError`` (``timeout`` past the limit)."""
        if self._closing is not None:
            raise RuntimeError("DocumentParser is closed")
        if len(data) > self._limits.max_input_bytes:
            raise ParseError(
                "too_large",
                f"document is {len(data)} bytes, more than {self._limits.max_input_bytes}",
            )
        header = encode_request(content_type, filename)
        slot = await self._idle.get()
        try:
            sandbox = await self._live_sandbox(slot)
            return await self._exchange(slot, sandbox, header, data)
        finally:
            self._idle.put_nowait(slot)

    async def aclose(self) -> None:
        """Wait for running parses, stop every sandbox and reap it; idempotent."""
        if self._closing is None:
            self._closing = asyncio.create_task(self._shut_down())
        await asyncio.shield(self._closing)

    async def __aenter__(self) -> DocumentParser:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _live_sandbox(self, slot: _Slot) -> SandboxProcess:
        """The slot's sandbox, started (or replaced, if it died while idle) as needed."""
        if slot.task is None:
            slot.task = self._start()
        sandbox = await self._started(slot)
        if sandbox.is_alive():
            return sandbox
        self._retire(slot, sandbox, None)
        return await self._started(slot)

    async def _started(self, slot: _Slot) -> SandboxProcess:
        assert slot.task is not None
        try:
            # Shielded: a cancelled caller must not orphan a process that is being spawned.
            return await asyncio.shield(slot.task)
        except ParseError:
            slot.task = None
            raise

    def _start(self) -> asyncio.Task[SandboxProcess]:
        async def start() -> SandboxProcess:
            loop = asyncio.get_running_loop()
            start = functools.partial(
                SandboxProcess.start,
                self._limits,
                STARTUP_TIMEOUT_SECONDS,
                user=self._sandbox_user,
            )
            sandbox = await loop.run_in_executor(self._threads, start)
            self._sandboxes.add(sandbox)
            _log_started(sandbox)
            return sandbox

        return asyncio.create_task(start(), name="sealflow-parser-start")

    async def _exchange(
        self, slot: _Slot, sandbox: SandboxProcess, header: bytes, data: bytes
    ) -> ParsedDocument:
        answer = asyncio.wrap_future(self._threads.submit(sandbox.exchange, header, data))
        try:
            done, _ = await asyncio.wait({answer}, timeout=self._limits.timeout_seconds)
        except asyncio.CancelledError:
            self._retire(slot, sandbox, answer)
            raise
        if not done:
            self._retire(slot, sandbox, answer)
            raise ParseError("timeout", f"parse took longer than {self._limits.timeout_seconds} s")
        try:
            payload = answer.result()
        except (EOFError, OSError) as exc:
            self._retire(slot, sandbox, None)
            raise ParseError(
                "internal", f"parser process died mid-parse (exit code {sandbox.exit_code()})"
            ) from exc
        try:
            answer_read = decode_response(payload)
        except ParseError:
            self._retire(slot, sandbox, None)
            raise
        if answer_read.exiting:
            self._retire(slot, sandbox, None)
        if isinstance(answer_read.outcome, ParseError):
            raise answer_read.outcome
        return answer_read.outcome

    def _retire(
        self, slot: _Slot, sandbox: SandboxProcess, exchange: asyncio.Future[bytes] | None
    ) -> None:
        """Kill ``sandbox`` now, reap it in the background, and start its replacement."""
        sandbox.kill()
        self._sandboxes.discard(sandbox)
        reaping = asyncio.create_task(self._reap(sandbox, exchange), name="sealflow-parser-reap")
        self._reaping.add(reaping)
        reaping.add_done_callback(self._reaping.discard)
        slot.task = self._start() if self._closing is None else None

    async def _reap(self, sandbox: SandboxProcess, exchange: asyncio.Future[bytes] | None) -> None:
        if exchange is not None:
            # The killed sandbox's pipe is closed, so the exchange thread ends promptly; its
            # EOFError/OSError is the expected outcome of the kill and carries no news.
            await asyncio.wait({exchange})
            if not exchange.cancelled():
                exchange.exception()
        await asyncio.get_running_loop().run_in_executor(self._threads, sandbox.close)

    async def _shut_down(self) -> None:
        loop = asyncio.get_running_loop()
        for _ in range(self._processes):
            slot = await self._idle.get()
            if slot.task is None:
                continue
            try:
                sandbox = await slot.task
            except ParseError:
                continue
            self._sandboxes.discard(sandbox)
            await loop.run_in_executor(self._threads, sandbox.close)
        while self._reaping:
            await asyncio.gather(*self._reaping)
        self._threads.shutdown(wait=True)


def _log_started(sandbox: SandboxProcess) -> None:
    """Say how a new sandbox is confined; a warning names what is left open."""
    ready = sandbox.ready
    assert ready is not None
    confinement = ready.confinement
    log = _log.info if confinement.complete else _log.warning
    log(
        "parser.sandbox_started",
        pid=sandbox.pid,
        user=confinement.user,
        files=confinement.files,
        network=confinement.network,
        confined=confinement.complete,
        skipped_modules=list(ready.skipped_modules),
    )
